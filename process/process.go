//go:build unix

package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// ErrExited is returned by Signal and Kill once the child has exited. It wraps
// os.ErrProcessDone.
var ErrExited error = fmt.Errorf("process: child has exited: %w", os.ErrProcessDone)

// Spec describes the child to start.
type Spec struct {
	Path string   // absolute path of the binary; argv[0] is Path
	Args []string // arguments after argv[0]
	Dir  string   // working directory; "" = inherit
	Env  []string // nil = inherit

	// Passed straight through as file descriptors; nil means /dev/null, as in
	// os/exec.
	Stdin, Stdout, Stderr *os.File

	// OwnGroup starts the child with Setpgid: it leads its own process group,
	// and Signal/Kill/Stop target the whole group.
	OwnGroup bool

	// ParentDeathSignal is sent to the child by the kernel when its parent
	// dies (Linux Pdeathsig); 0 means none. Ignored on other systems.
	ParentDeathSignal syscall.Signal

	// Track, if set, is told when the child starts and when it has been
	// reaped (see Tracker).
	Track Tracker
}

// Exit describes how the child ended.
type Exit struct {
	Code   int            // exit code; 128+signo when killed by a signal; -1 if unknown
	Signal syscall.Signal // the signal that killed it, 0 otherwise
}

// String returns "exit status 3" or "killed by signal terminated".
func (e Exit) String() string {
	switch {
	case e.Signal != 0:
		return "killed by signal " + e.Signal.String()
	case e.Code < 0:
		return "exit status unknown"
	default:
		return fmt.Sprintf("exit status %d", e.Code)
	}
}

// Success reports whether the child exited on its own with status 0.
func (e Exit) Success() bool { return e.Code == 0 && e.Signal == 0 }

// StopResult is what Stop reports.
type StopResult struct {
	Exit   Exit
	Killed bool          // SIGKILL was needed
	Took   time.Duration // from SIGTERM to reaped; 0 if Stop sent nothing
}

// Child is one started child process. See the package documentation for the
// concurrency contract.
type Child struct {
	pid      int
	ownGroup bool
	ident    Ident // read by the waiter before Start returns
	track    Tracker
	done     chan struct{}

	// Written by the waiter before done is closed, read only after.
	exit     Exit
	reapedAt time.Time

	// mu orders every signal sent by number against the moment the waiter
	// marks the child exited (before reaping it on Linux).
	mu         sync.Mutex
	exited     bool
	stopAt     time.Time // when Stop first signalled; zero if it never did
	stopKilled bool      // Stop had to send SIGKILL
}

// Start starts the child described by spec. The returned error wraps the
// exec error and names the path.
func Start(spec Spec) (*Child, error) {
	if !filepath.IsAbs(spec.Path) {
		return nil, fmt.Errorf("process: start %q: path is not absolute", spec.Path)
	}
	cmd := &exec.Cmd{
		Path:        spec.Path,
		Args:        append([]string{spec.Path}, spec.Args...),
		Dir:         spec.Dir,
		Env:         spec.Env,
		SysProcAttr: sysProcAttr(spec),
	}
	// Assign only non-nil files: a nil *os.File in the io.Reader/io.Writer
	// interface would not be nil to os/exec, and /dev/null would not be used.
	if spec.Stdin != nil {
		cmd.Stdin = spec.Stdin
	}
	if spec.Stdout != nil {
		cmd.Stdout = spec.Stdout
	}
	if spec.Stderr != nil {
		cmd.Stderr = spec.Stderr
	}

	c := &Child{ownGroup: spec.OwnGroup, track: spec.Track, done: make(chan struct{})}
	started := make(chan error, 1)
	go c.wait(cmd, started)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("process: start %s: %w", spec.Path, err)
	}
	return c, nil
}

// wait forks the child and owns it until it is reaped. It runs on a locked OS
// thread for the child's whole life because Pdeathsig fires when the forking
// thread dies (see the package documentation).
func (c *Child) wait(cmd *exec.Cmd, started chan<- error) {
	runtime.LockOSThread()
	// Registered under the same lock as the fork: the orphan reaper must never
	// see this child's zombie before it is known to be ours.
	children.mu.Lock()
	err := cmd.Start()
	if err == nil {
		children.addLocked(cmd.Process.Pid)
	}
	children.mu.Unlock()
	if err != nil {
		// No child to protect, so the thread may go back to the pool.
		runtime.UnlockOSThread()
		started <- err
		return
	}
	c.pid = cmd.Process.Pid
	// Only this goroutine reaps the child, so its pid is still its own here.
	c.ident = identOf(c.pid, c.ownGroup)
	if c.track != nil {
		c.track.Started(c)
	}
	started <- nil

	// Not unlocking is deliberate: when this goroutine returns, the runtime
	// terminates the thread, and by then the child is dead.
	if awaitExit(c.pid) {
		c.markExited()
		// The child is a zombie, so Wait returns at once; doing it under the
		// registry lock means no new fork can get this pid before it leaves
		// the registry.
		children.mu.Lock()
		_ = cmd.Wait() // The status is in ProcessState; without one it is unknown.
		children.removeLocked(c.pid)
		children.mu.Unlock()
	} else {
		// Either this system cannot wait without reaping (Wait blocks for the
		// child's life, so not under the lock), or someone else reaped it.
		_ = cmd.Wait()
		children.remove(c.pid)
	}
	children.reaped()
	c.markExited() // For systems where awaitExit cannot wait without reaping.
	c.exit = exitOf(cmd.ProcessState)
	c.reapedAt = time.Now()
	if c.track != nil {
		c.track.Reaped(c)
	}
	close(c.done)
}

func (c *Child) markExited() {
	c.mu.Lock()
	c.exited = true
	c.mu.Unlock()
}

func exitOf(ps *os.ProcessState) Exit {
	if ps == nil {
		return Exit{Code: -1}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Exit{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return Exit{Code: ps.ExitCode()}
}

// Pid returns the child's process id.
func (c *Child) Pid() int { return c.pid }

// Done is closed once the child has been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Exit returns how the child exited. It is the zero value until Done is
// closed.
func (c *Child) Exit() Exit {
	select {
	case <-c.done:
		return c.exit
	default:
		return Exit{}
	}
}

// Signal sends sig to the child's process group if Spec.OwnGroup was set, and
// to the child otherwise. Once the child has exited it returns ErrExited.
func (c *Child) Signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signalLocked(sig)
}

// Kill sends SIGKILL like Signal does.
func (c *Child) Kill() error { return c.Signal(syscall.SIGKILL) }

// signalLocked sends sig; c.mu must be held, so the leader is not reaped
// while the signal is in flight and its pid and pgid cannot be recycled.
func (c *Child) signalLocked(sig syscall.Signal) error {
	if c.exited {
		return ErrExited
	}
	if c.ownGroup {
		err := syscall.Kill(-c.pid, sig)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("process: signal %v to group %d: %w", sig, c.pid, err)
		}
		// The group is empty although the leader is not reaped: it is a
		// zombie, or it moved to another group or session. Signal the leader
		// itself so that a child that left its group can still be stopped.
	}
	err := syscall.Kill(c.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		// Unreaped, so a zombie that the waiter is about to mark exited.
		return nil
	}
	if err != nil {
		return fmt.Errorf("process: signal %v to pid %d: %w", sig, c.pid, err)
	}
	return nil
}

// Stop sends SIGTERM, waits up to grace for the child to exit, then SIGKILLs
// it (group) and waits until it is reaped. Cancelling ctx during the grace
// escalates to SIGKILL at once. If the child has already exited, Stop returns
// its Exit immediately. Safe to call more than once and concurrently: SIGTERM
// is sent only once, and every call returns the same result. A grace <= 0
// sends SIGKILL right after SIGTERM. After SIGKILL, Stop waits for the reap
// without a bound: the kernel does not let a SIGKILLed process live on, short
// of uninterruptible sleep.
func (c *Child) Stop(ctx context.Context, grace time.Duration) StopResult {
	c.mu.Lock()
	if !c.exited && c.stopAt.IsZero() {
		c.stopAt = time.Now()
		if err := c.signalLocked(syscall.SIGTERM); err != nil {
			// SIGTERM cannot be delivered; waiting the grace out is pointless.
			grace = 0
		}
	}
	c.mu.Unlock()

	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		c.stopKill()
	case <-ctx.Done():
		c.stopKill()
	}
	<-c.done

	c.mu.Lock()
	defer c.mu.Unlock()
	res := StopResult{Exit: c.exit, Killed: c.stopKilled}
	if !c.stopAt.IsZero() {
		res.Took = c.reapedAt.Sub(c.stopAt)
	}
	return res
}

func (c *Child) stopKill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	// ErrExited means the child exited on its own in the meantime: SIGKILL was
	// not needed after all.
	if c.signalLocked(syscall.SIGKILL) == nil {
		c.stopKilled = true
	}
}
