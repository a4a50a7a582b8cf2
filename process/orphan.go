//go:build unix

package process

// SupervisorEnv names the environment variable that marks a process as
// started by a vigil: "<pid>:<start>:<boot id>:<home>" of that vigil (start
// is field 22 of its /proc/self/stat, in clock ticks after boot; home is its
// absolute $DAEMON_HOME, last because it may itself contain ':'). A node that
// outlives a vigil killed before it could record the node (vigil.procs), and
// any descendant of vigil's children, even one that left their process group
// or session, still carries it (inherited): the next vigil of that home can
// tell them, whose supervisor is gone, from a node an operator started by
// hand (OrphanOf, MarkedOrphans), and a vigil of another home on the same
// machine never takes them for its own. The three-field form of older vigils
// names no home.
const SupervisorEnv = "VIGIL_SUPERVISOR"

// Holder is a process that has a file open.
type Holder struct {
	Pid int
	Exe string // the target of /proc/<pid>/exe; "" when unreadable
}

// Orphan is a process MarkedOrphans found, for EndStray.
type Orphan struct {
	Ident
	Exe  string // the target of /proc/<pid>/exe, for the log
	Mark string // its SupervisorEnv value
}
