//go:build linux

package process

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

func sysProcAttr(spec Spec) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:   spec.OwnGroup,
		Pdeathsig: spec.ParentDeathSignal,
	}
}

// awaitExit blocks until the child has exited but leaves it a zombie, so its
// pid and pgid stay reserved until the caller has marked it exited. It
// reports false if it could not wait (the child was reaped by someone else,
// ECHILD), in which case the caller's reap reports what it can.
func awaitExit(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil
	}
}
