package home

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/vigilhq/vigil/plan"
)

// State is what upgrade-info.json means for the installed version.
type State string

const (
	NoPlan     State = "none"       // no upgrade-info.json
	Unreadable State = "unreadable" // the file exists but cannot be read
	Invalid    State = "invalid"    // unparsable, empty or half-written: waited on
	Refused    State = "refused"    // its name cannot be a directory under upgrades/
	Blocked    State = "blocked"    // current or its marker is unreadable: no decision
	Applied    State = "applied"    // current already points at its directory
	Older      State = "older"      // not above the installed upgrade's height: ignored
	Pending    State = "pending"    // to be applied
)

// Decision is the verdict on upgrade-info.json. detect acts on it; `vigil
// status` and `vigil doctor` report it, so all three share one set of rules.
type Decision struct {
	State     State
	Plan      plan.Plan // set from Refused on
	Dir       string    // directory under upgrades/, set from Blocked on
	Installed Installed // set for Blocked (marker), Applied, Older, Pending
	Err       error     // why, for Unreadable, Invalid, Refused, Blocked and Older
}

// Decide reads upgrade-info.json and compares it with what `current` has
// installed. It reads files only.
func Decide(l Layout) Decision {
	b, err := plan.Read(l.UpgradeInfoFile())
	if errors.Is(err, fs.ErrNotExist) {
		return Decision{State: NoPlan}
	}
	if err != nil {
		return Decision{State: Unreadable, Err: err}
	}
	p, err := plan.Parse(b)
	if err != nil {
		return Decision{State: Invalid, Err: err}
	}
	d := Decision{Plan: p}
	if d.Dir, err = l.DirName(p.Name); err != nil {
		d.State, d.Err = Refused, err
		return d
	}
	in, err := l.Installed()
	if err != nil {
		d.State, d.Err = Blocked, err
		return d
	}
	d.Installed = in
	switch {
	case in.Upgrade == d.Dir:
		d.State = Applied
	case in.MarkerErr != nil:
		// Without the installed height, an older plan would look new and
		// switch the node back: refuse to decide until an operator looks.
		d.State, d.Err = Blocked, fmt.Errorf("the marker of %s is unreadable: %w", in.Dir, in.MarkerErr)
	case in.Marker != nil && p.Height <= in.Marker.Height:
		d.State = Older
		d.Err = fmt.Errorf("height %d is not above the installed %s at height %d", p.Height, in.Marker.Name, in.Marker.Height)
	case in.Marker == nil && in.Upgrade != "":
		// `current` was pointed at an upgrade by hand: no marker says its
		// height. A plan written before that switch is one the operator
		// already dealt with (applying it now could switch the node back to
		// an older version); one written after it is a new halt.
		d.State, d.Err = unmarked(l, in)
	default:
		d.State = Pending
	}
	return d
}

// unmarked decides a plan against an installed upgrade directory that has no
// marker, by which came last: the plan file or the `current` link.
func unmarked(l Layout, in Installed) (State, error) {
	file, err := os.Stat(l.UpgradeInfoFile())
	if err != nil {
		return Blocked, fmt.Errorf("current points at upgrades/%s, which has no marker, and %w", in.Upgrade, err)
	}
	link, err := os.Lstat(l.Current())
	if err != nil {
		return Blocked, fmt.Errorf("current points at upgrades/%s, which has no marker, and %w", in.Upgrade, err)
	}
	// Not before, rather than after: file times tick coarsely (a jiffy), so a
	// halt written just after a switch can carry the switch's very time.
	if !file.ModTime().Before(link.ModTime()) {
		return Pending, nil
	}
	return Older, fmt.Errorf("current was pointed at upgrades/%s (by hand: it has no %s marker) after this plan was written, so the plan may be older than what runs; "+
		"not applying it. Delete %s if it is done, or write the marker of upgrades/%s to let vigil compare heights", in.Upgrade, plan.FileName, l.UpgradeInfoFile(), in.Upgrade)
}
