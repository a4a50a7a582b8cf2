package inspect

import (
	"fmt"
	"strings"

	"github.com/vigilhq/vigil/config"
)

// CheckPlan explains what vigil will do with data/upgrade-info.json, with
// the reactor's own decision (Report.Pending).
func CheckPlan(r Report, version func(string) (string, error)) []Finding {
	p := r.Pending
	if p == nil {
		return []Finding{finding(OK, "no %s: no upgrade pending", r.Layout.UpgradeInfoFile())}
	}
	switch p.State {
	case PlanInvalid:
		return []Finding{finding(Warn, "%s: %s: vigil waits for a valid file (the node may be writing it)", p.File, p.Reason)}
	case PlanUnreadable:
		return []Finding{finding(Fail, "%s cannot be read: %s: vigil cannot see the upgrade", p.File, p.Reason)}
	case PlanRefused:
		return []Finding{finding(Fail, "upgrade-info.json names %q: %s: vigil refuses it and the node stays halted", p.Name, p.Reason)}
	case PlanBlocked:
		return []Finding{finding(Fail, "upgrade %s at height %d cannot be decided: %s", p.Name, p.Height, p.Reason)}
	case PlanApplied:
		return []Finding{finding(OK, "upgrade %s at height %d is applied", p.Name, p.Height)}
	case PlanOlder:
		return []Finding{finding(Warn, "upgrade-info.json names %s: %s: vigil ignores it", p.Name, p.Reason)}
	case PlanPending:
		return []Finding{checkPending(r, version)}
	}
	return nil
}

// checkPending judges the binary of the plan vigil will apply at the halt.
func checkPending(r Report, version func(string) (string, error)) Finding {
	p := r.Pending
	what := fmt.Sprintf("pending upgrade %s at height %d", p.Name, p.Height)
	if p.BinaryOK {
		v, err := version(p.Binary)
		if err != nil {
			return finding(Fail, "%s: %v", what, err)
		}
		return finding(OK, "%s: %s is ready (%s)", what, p.Binary, v)
	}
	if p.BinaryExists {
		return finding(Fail, "%s: %s", what, p.BinaryError) // CheckStaged said what is wrong with it too
	}
	// A directory that differs only in case is the classic halt (cosmos-sdk#12915).
	for _, e := range r.UpgradeEntries {
		if e != p.Dir && strings.EqualFold(e, p.Dir) {
			rule := "names are lowercased"
			if !r.Layout.Recase {
				rule = config.EnvDisableRecase + " is on: the case is kept"
			}
			return finding(Fail, "%s: vigil looks for upgrades/%s (%s) but only upgrades/%s exists: at the halt it will not find the binary; rename the directory",
				what, p.Dir, rule, e)
		}
	}
	if r.Options.AllowDownload {
		return finding(Warn, "%s: %s is not staged; vigil will download it (%s): stage it now to not depend on the network at the halt", what, p.Binary, config.EnvAllowDownload)
	}
	return finding(Fail, "%s: %s is missing and downloads are off: at the halt the node stays down until it is put there", what, p.Binary)
}

// CheckScheduled judges data/upgrade-info.json.batch: vigil reads it at
// every start to choose the node's --halt-height, so a file it cannot read
// fails, and a scheduled upgrade whose binary is not installed warns (it
// can still be installed before the height; at the height the node would
// stay halted).
func CheckScheduled(r Report) []Finding {
	if r.ScheduledError != "" {
		return []Finding{finding(Fail, "%s: the scheduled upgrades cannot be read, so vigil cannot halt the node for them; fix or remove the file", r.ScheduledError)}
	}
	var out []Finding
	for _, s := range r.Scheduled {
		what := fmt.Sprintf("scheduled upgrade %s at height %d", s.Name, s.Height)
		switch {
		case s.Dir == "":
			out = append(out, finding(Fail, "%s: %s", what, s.BinaryError))
		case s.BinaryOK:
			out = append(out, finding(OK, "%s: %s is installed", what, s.Binary))
		case s.BinaryExists:
			out = append(out, finding(Fail, "%s: %s", what, s.BinaryError))
		default:
			out = append(out, finding(Warn, "%s: %s is not installed: install it before that height (vigil add-upgrade %s <path> --force), or the node stays halted there", what, s.Binary, s.Name))
		}
	}
	return out
}
