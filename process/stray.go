//go:build unix

package process

import "time"

// Ident names a process so that a later vigil can find it again after this
// one died without stopping it (SIGKILL, the OOM killer), and be sure that
// what it finds is that process and not a stranger that got the same pid.
// It is meant to be stored (see Tracker) and given to EndStray.
type Ident struct {
	Pid int `json:"pid"`
	// Start is field 22 of /proc/<pid>/stat, the start time in clock ticks
	// after boot. A recycled pid has a different one.
	Start uint64 `json:"start"`
	// Pgid is the process group the child leads (Spec.OwnGroup); 0 when it
	// shares its parent's group, which must then never be signalled: it is
	// (or was) vigil's own.
	Pgid int `json:"pgid,omitempty"`
	// Sid is the session the child was started in. A group member that has
	// it is one of the child's descendants, not a process that happens to
	// use the same group number.
	Sid int `json:"sid"`
	// Boot is the kernel's boot id: start times count from boot, so after a
	// reboot they mean nothing.
	Boot string `json:"boot"`
}

// Tracker is told when a child starts and when it has been reaped, so that
// it can keep a record a later vigil reads (see EndStray). Started runs on
// the waiter goroutine after the fork and before Start returns; Reaped runs
// on it after the reap and before Done is closed, so whoever sees Done also
// sees the record updated. Both must be quick (the node start is on the
// upgrade's hot path) and must not wait on the child.
type Tracker interface {
	Started(c *Child)
	Reaped(c *Child)
}

// Ident returns what identifies the child for a later vigil. ok is false
// when it could not be read (no /proc, or the child was gone already).
func (c *Child) Ident() (Ident, bool) { return c.ident, c.ident.Pid != 0 }

// StrayResult is what EndStray found and did.
type StrayResult struct {
	Pids    []int // the processes found alive: the recorded one and its group
	Killed  bool  // SIGKILL was needed
	NotOurs bool  // the pid now belongs to another process; nothing was signalled
}

// strayPoll is how often EndStray looks whether what it stopped is gone. The
// stray is not our child, so there is no wait to block in for all of it.
const strayPoll = 20 * time.Millisecond
