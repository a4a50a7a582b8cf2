//go:build linux

package process

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reaper reaps the zombies of orphans that the kernel re-parented to this
// process, which happens when it is PID 1 of a PID namespace (a container's
// entrypoint) or a child subreaper. It never reaps a child this package
// started: their exit status belongs to their waiter. See the package
// documentation.
type Reaper struct {
	log    *slog.Logger
	sigs   chan os.Signal
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	reaped atomic.Uint64
}

var reaperRunning atomic.Bool

// StartReaper starts the reaper goroutine; Stop ends it. Only one reaper may
// run at a time. It reaps at once whatever orphan zombies are already there,
// then again on every SIGCHLD.
func StartReaper(log *slog.Logger) (*Reaper, error) {
	if !reaperRunning.CompareAndSwap(false, true) {
		return nil, errors.New("process: a reaper is already running")
	}
	r := &Reaper{
		log:  log,
		sigs: make(chan os.Signal, 1), // SIGCHLDs coalesce anyway; each wake-up reaps all
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	// Subscribed before the first pass, so an exit in between is not missed.
	signal.Notify(r.sigs, syscall.SIGCHLD)
	go r.run()
	return r, nil
}

// Stop ends the reaper and waits for its goroutine. Safe to call more than
// once.
func (r *Reaper) Stop() {
	r.once.Do(func() {
		signal.Stop(r.sigs)
		close(r.stop)
		<-r.done
		reaperRunning.Store(false)
	})
}

// Reaped returns how many orphans the reaper has reaped.
func (r *Reaper) Reaped() uint64 { return r.reaped.Load() }

func (r *Reaper) run() {
	defer close(r.done)
	for {
		r.reapOrphans()
		select {
		case <-r.stop:
			return
		case <-r.sigs:
		case <-children.kick:
			// A registered child was reaped; an orphan may have been queued
			// behind its zombie.
		}
	}
}

// reapOrphans reaps exited orphans until none is left, or until the first
// exited child the kernel reports is one of ours: waitid(P_ALL, WNOWAIT) would
// keep returning it, so the reaper waits for its waiter to reap it (kick).
func (r *Reaper) reapOrphans() {
	for {
		children.mu.Lock()
		pid, err := peekExited()
		if err != nil || pid == 0 || children.ownsLocked(pid) {
			children.mu.Unlock()
			if err != nil && !errors.Is(err, unix.ECHILD) {
				r.log.Warn("orphan reaper: waitid failed", "err", err)
			}
			return
		}
		var ws unix.WaitStatus
		_, err = unix.Wait4(pid, &ws, unix.WNOHANG|unix.WALL, nil)
		children.mu.Unlock()
		if err != nil {
			r.log.Warn("orphan reaper: wait4 failed", "pid", pid, "err", err)
			return
		}
		r.reaped.Add(1)
		r.log.Debug("reaped orphan", "pid", pid, "exit", exitOfStatus(syscall.WaitStatus(ws)).String())
	}
}

// peekExited returns the pid of an exited child without reaping it, 0 if no
// child has exited, or ECHILD if there are no children.
func peekExited() (int, error) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT|unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return siginfoPid(&info), nil
	}
}

// siginfoPid reads si_pid, which x/sys/unix does not expose: the union that
// holds it follows three ints, aligned like a pointer (offset 16 on 64-bit
// systems, 12 on 32-bit ones). waitid with WNOHANG leaves it 0 when no child
// has exited.
func siginfoPid(info *unix.Siginfo) int {
	const off = (3*4 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(info), off)))
}

func exitOfStatus(ws syscall.WaitStatus) Exit {
	if ws.Signaled() {
		return Exit{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return Exit{Code: ws.ExitStatus()}
}

// SetChildSubreaper makes this process a child subreaper
// (PR_SET_CHILD_SUBREAPER): orphaned descendants are re-parented to it instead
// of to init, and a Reaper must then reap them.
func SetChildSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("process: PR_SET_CHILD_SUBREAPER: %w", err)
	}
	return nil
}
