package inspect

import (
	"fmt"
	"io"
	"time"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/observe"
)

// WriteText renders r for a person, as `vigil status` prints it: one
// aligned line per fact. now is when "… ago" is counted from.
func WriteText(w io.Writer, r Report, now time.Time) {
	t := text{w, now}
	t.vigil(r.Vigil)
	t.line("home", "%s (%s)", r.Home, r.Name)
	t.current(r.Current)
	t.pending(r.Pending)
	t.scheduled(r)
	if u := r.Upgrading; u != nil {
		t.line("upgrading", "%s at height %d: %s (since %s)", u.Name, u.Height, u.Step, t.when(u.Since))
	}
	t.staged(r.Staged)
	t.app(r.App)
	t.last(r)
}

type text struct {
	w   io.Writer
	now time.Time
}

func (t text) line(label, format string, args ...any) {
	fmt.Fprintf(t.w, "%-14s %s\n", label, fmt.Sprintf(format, args...))
}

func (t text) when(at time.Time) string {
	if at.IsZero() {
		return "?"
	}
	return fmt.Sprintf("%s (%s ago)", at.Local().Format("2006-01-02 15:04:05 MST"), since(t.now, at))
}

func (t text) vigil(v Vigil) {
	switch {
	case v.Running && v.Pid != 0:
		t.line("vigil", "running, pid %d, %s, since %s", v.Pid, orQ(v.Version), t.when(v.Started))
	case v.Running:
		t.line("vigil", "running (the run lock is held; no status file yet)")
	case !v.Stopped.IsZero():
		t.line("vigil", "not running (pid %d stopped %s)", v.Pid, t.when(v.Stopped))
	case v.Pid != 0:
		t.line("vigil", "not running (pid %d gone without a clean stop: killed?)", v.Pid)
	default:
		t.line("vigil", "not running (no status file)")
	}
	if v.Failure != "" {
		t.line("failure", "%s", v.Failure)
	}
	if v.StatusError != "" {
		t.line("status file", "%s", v.StatusError)
	}
}

func (t text) current(c Current) {
	if c.Error != "" {
		t.line("current", "BROKEN: %s", c.Error)
		return
	}
	t.line("current", "%s -> %s", c.Link, c.Bin)
	if c.VersionError != "" {
		t.line("version", "unknown: %s", c.VersionError)
	} else {
		t.line("version", "%s", orQ(c.Version))
	}
	switch {
	case c.MarkerError != "":
		t.line("installed", "%s (marker unreadable: %s)", c.Installed, c.MarkerError)
	case c.Marker != nil:
		t.line("installed", "%s at height %d", c.Marker.Name, c.Marker.Height)
	default:
		t.line("installed", "%s", c.Installed)
	}
}

func (t text) pending(p *Pending) {
	switch {
	case p == nil:
		t.line("pending", "none")
	case p.State == PlanPending:
		bin := "binary ready"
		if !p.BinaryOK {
			bin = "binary NOT ready: " + p.BinaryError
		}
		t.line("pending", "%s at height %d -> upgrades/%s; %s", p.Name, p.Height, p.Dir, bin)
	case p.State == PlanApplied:
		t.line("pending", "none (%s at height %d is applied)", p.Name, p.Height)
	case p.Name != "":
		t.line("pending", "%s at height %d: %s: %s", p.Name, p.Height, p.State, p.Reason)
	default:
		t.line("pending", "%s: %s", p.State, p.Reason)
	}
}

func (t text) scheduled(r Report) {
	switch {
	case r.ScheduledError != "":
		t.line("scheduled", "UNREADABLE: %s", r.ScheduledError)
	case len(r.Scheduled) == 0:
		t.line("scheduled", "none")
	}
	for i, s := range r.Scheduled {
		label := firstOnly("scheduled", i)
		bin := "binary ready"
		if !s.BinaryOK {
			bin = "binary NOT ready: " + s.BinaryError
		}
		t.line(label, "%s at height %d -> upgrades/%s; %s", s.Name, s.Height, s.Dir, bin)
	}
}

func (t text) staged(staged []Staged) {
	if len(staged) == 0 {
		t.line("staged", "none")
	}
	for i, s := range staged {
		label := firstOnly("staged", i)
		state := "ok"
		if !s.OK {
			state = "BAD: " + s.Error
		}
		note := ""
		switch {
		case s.Current:
			note = " (current)"
		case s.Marker != nil:
			note = fmt.Sprintf(" (applied at height %d)", s.Marker.Height)
		}
		t.line(label, "%-12s %s%s", s.Dir, state, note)
	}
}

func (t text) app(a *observe.AppStatus) {
	if a == nil {
		return
	}
	if a.Running {
		t.line("app", "running, pid %d, %s, since %s", a.Pid, a.Installed, t.when(a.Started))
		switch {
		case a.HaltFor != "":
			t.line("halts at", "%d, for the scheduled upgrade %s", a.HaltHeight, a.HaltFor)
		case a.HaltHeight > 0:
			t.line("halts at", "%d (the operator's own halt-height)", a.HaltHeight)
		}
	} else {
		t.line("app", "not running")
	}
	t.line("restarts", "%d", a.Restarts)
	if x := a.LastExit; x != nil {
		how := fmt.Sprintf("code %d", x.Code)
		if x.Signal != "" {
			how += " (" + x.Signal + ")"
		}
		kind := "unexpected"
		if x.Expected {
			kind = "expected"
		}
		t.line("last exit", "%s, %s, %s", how, kind, t.when(x.At))
	}
}

// last renders the last upgrade, backup and download.
func (t text) last(r Report) {
	if u := r.LastUpgrade; u != nil {
		if u.Result == observe.UpgradeDone {
			t.line("last upgrade", "%s at height %d: done %s, pickup %s", u.Name, u.Height, t.when(u.At), secs(u.PickupSeconds))
		} else {
			t.line("last upgrade", "%s at height %d: FAILED %s: %s", u.Name, u.Height, t.when(u.At), u.Error)
		}
	}
	if b := r.LastBackup; b != nil {
		took := ""
		if b.TookSeconds > 0 {
			took = ", took " + secs(b.TookSeconds)
		}
		t.line("last backup", "%s (%s, %d files, %s%s) %s", b.Path, orQ(b.Strategy), b.Files, backup.HumanBytes(b.Bytes), took, t.when(b.Time))
	}
	if d := r.LastDownload; d != nil {
		if d.OK {
			t.line("last download", "%s: ok in %s, %s", d.Upgrade, secs(d.TookSeconds), t.when(d.At))
		} else {
			t.line("last download", "%s: FAILED after %s, %s: %s", d.Upgrade, secs(d.TookSeconds), t.when(d.At), d.Error)
		}
	}
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func since(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func secs(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Microsecond).String()
	case d < time.Minute:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// firstOnly labels the first line of a list; the others stand under it.
func firstOnly(label string, i int) string {
	if i == 0 {
		return label
	}
	return ""
}
