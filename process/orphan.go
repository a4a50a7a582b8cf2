//go:build unix

package process

// SupervisorEnv names the environment variable that marks a process as
// started by a vigil: "<pid>:<start>:<boot id>" of that vigil (start is field
// 22 of its /proc/self/stat, in clock ticks after boot). A node that outlives
// a vigil killed before it could record the node (vigil.procs) still carries
// it, so the next vigil can tell that node, whose supervisor is gone, from a
// node an operator started by hand (OrphanOf).
const SupervisorEnv = "VIGIL_SUPERVISOR"

// Holder is a process that has a file open.
type Holder struct {
	Pid int
	Exe string // the target of /proc/<pid>/exe; "" when unreadable
}
