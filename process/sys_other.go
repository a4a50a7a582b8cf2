//go:build unix && !linux

package process

import "syscall"

// No Pdeathsig outside Linux; ParentDeathSignal is ignored.
func sysProcAttr(spec Spec) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: spec.OwnGroup}
}

// awaitExit cannot wait without reaping here, so the waiter reaps first and
// marks the child exited afterwards (see the package documentation).
func awaitExit(int) bool { return false }
