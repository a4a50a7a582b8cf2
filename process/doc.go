// Package process owns the child processes vigil forks (the Cosmos node and
// short hooks): it starts each, reaps it exactly once, signals it or its
// process group, stops it gracefully and reports how it exited; as PID 1 it
// also reaps orphans without stealing its own children's statuses.
//
// # Concurrency contract
//
// Start launches one waiter goroutine per child. That goroutine is the only
// code that waits for the child (the orphan reaper never reaps it); it closes
// Done once the child has been reaped, and Exit returns the result after
// that. Pid, Done, Exit, Signal, Kill and Stop may be called from any
// goroutine, concurrently, any number of times. The waiter goroutine ends by
// itself when the child has been reaped; no method has to be called for it to
// go away, but the child must exit (Stop or Kill make it). Run and Output may
// be called from any goroutine; each returns only after its child is reaped
// and its reader goroutine has ended. At most one Reaper runs at a time; its
// goroutine ends when Stop, callable from any goroutine and more than once,
// returns.
//
// # Standard I/O
//
// Spec.Stdin, Stdout and Stderr are *os.File values handed to the child as
// file descriptors. There are no pipes and no copying goroutines: a stalled
// supervisor can never block the node's writes, and a grandchild that keeps
// the descriptors open cannot make the wait hang. A nil file means /dev/null,
// as in os/exec.
//
// # Signals and process groups
//
// With Spec.OwnGroup the child is started with Setpgid, so it leads a new
// process group whose id is its pid. Signal and Kill then send to the whole
// group with kill(-pgid, sig), which reaches helpers the node forked as long as
// they stayed in its group. The trade-off: the child is no longer in the
// terminal's foreground group, so a terminal Ctrl-C does not reach it directly
// (the supervisor forwards it instead, exactly once), and a child that reads a
// TTY gets SIGTTIN. Descendants that move to another group or session are not
// reached.
//
// If the group turns out to be empty (ESRCH) while the leader has not been
// reaped, the leader either is a zombie (fine, nothing to do) or has moved
// itself to another group; the signal is then sent to the leader's pid so that
// Stop cannot hang on a child that left its group.
//
// # Signalling by number without pid reuse (the WNOWAIT trick)
//
// A pid or pgid is only safe to signal by number while the leader has not been
// reaped: afterwards the kernel may hand the number to an unrelated process.
// os.Process uses a pidfd for its own Signal, but there is no pidfd for a
// process group. So on Linux the waiter first waits for the child to exit
// WITHOUT reaping it (waitid(P_PID, pid, WEXITED|WNOWAIT)); the child is then
// a zombie, which still holds its pid and pgid. The waiter takes the mutex,
// marks the child exited, releases the mutex and only then reaps it. Signal,
// Kill and Stop send under the same mutex and return ErrExited once the child
// is marked exited. Any signal that is sent therefore reaches either the
// running child or its zombie, never a recycled pid.
//
// On other Unix systems there is no WNOWAIT wait here; the waiter reaps first
// and marks exited afterwards, which leaves a short window in which a signal
// could reach a recycled pid. vigil targets Linux; the other build exists so
// the package compiles.
//
// If something else in the process reaps the child behind our back (a
// Wait4(-1) zombie reaper, or os/exec's Wait on a pid it does not own), the
// exit status is lost: Exit then reports Code -1 with no Signal. The Reaper
// below is built not to do that.
//
// # Short commands: Run and Output
//
// Run and Output start a child like Start, wait for it, and on cancellation
// of their context stop it like Stop (SIGTERM, SIGKILL after the grace).
// Output captures stdout and stderr through one pipe read by a goroutine (so a
// chatty child never blocks on a full pipe) and keeps the last MaxOutput bytes.
// It returns once the child is reaped: the pipe is then drained without
// waiting, so a descendant that inherited it cannot hold Output up. Every
// process vigil forks must go through Start, Run or Output, never os/exec,
// because of the reaper.
//
// # Orphans: PID 1 and child subreapers (Linux)
//
// As PID 1 of a PID namespace (a container entrypoint without --init), or
// after SetChildSubreaper, orphaned descendants are re-parented to this
// process and stay zombies until it reaps them. StartReaper starts one
// goroutine that, on every SIGCHLD, reaps the exited children that this
// package did not start, and only those.
//
// The package keeps a process-wide registry of its unreaped children. Its lock
// is held across fork+register, so a child that exits at once is never seen
// unregistered; across the waiter's reap+unregister, so a reaped pid is not
// handed to a new child before it leaves the registry; and by the reaper
// from its look at a zombie to its reap. The reaper looks with
// waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT), which leaves the zombie in place; if
// it is registered, its waiter is about to reap it and the reaper waits for
// that (the waiter wakes it) rather than spinning on the same zombie. No /proc
// is needed. A reaper must not run while anything in the process forks with
// os/exec: that child would be unregistered and its status stolen.
//
// vigil does not make itself a subreaper outside PID 1: under systemd the
// node's cgroup already contains every descendant and init reaps orphans; as
// a subreaper, daemons that double-fork to detach would stay tied to vigil,
// and there is nothing vigil could do with them but reap them.
//
// # Strays: children an earlier vigil left behind (Linux)
//
// When vigil is SIGKILLed, its children get the parent-death signal, but a
// node that ignores SIGTERM or takes long to flush lives on, re-parented.
// Child.Ident names a child by pid, start time (field 22 of /proc/<pid>/stat,
// which a recycled pid does not share), process group, session and boot id;
// Spec.Track is told when each child starts and is reaped, so the caller can
// keep that on disk. EndStray, given such a record, stops what is left:
// SIGTERM to the process and to each live member of its group (same group,
// same session, started no earlier), SIGKILL after the grace, and returns
// when all are gone, polling /proc because they are not our children. Each
// process is signalled through a pidfd opened before its start time is
// checked, so a stranger that got the pid is never signalled; a pid that
// runs another process now means nothing of the record is left (the kernel
// does not recycle a pid still in use as a group id).
//
// Run and Output, once an interrupted child's leader is reaped, end what is
// left of its group the same way: a hook's descendant that ignores SIGTERM
// does not outlive the hook.
//
// # Exit codes
//
// Exit.Code is the child's exit status when it exited on its own. When a
// signal killed it, os.ProcessState.ExitCode reports -1; Exit reports
// 128+signo instead, the shell and container convention, and sets Exit.Signal.
// A supervisor can therefore pass Code through as its own exit status.
//
// # Graceful stop
//
// Stop sends SIGTERM (to the group with OwnGroup), waits up to the grace
// period, then sends SIGKILL and waits until the child is reaped. Cancelling
// the context during the grace period escalates to SIGKILL at once, which is
// how a second SIGTERM/SIGINT from the operator should be wired. Concurrent or
// repeated Stop calls send SIGTERM only once; each still honours its own grace
// and context, and all of them return the same StopResult. os/exec's
// CommandContext is deliberately not used: its default cancellation is an
// immediate SIGKILL to the leader only, which can corrupt the node's database.
//
// # Parent-death signal (Linux)
//
// Spec.ParentDeathSignal sets PR_SET_PDEATHSIG: the kernel sends that signal
// to the child when its parent dies, for example when vigil is SIGKILLed and
// gets no chance to stop the node. The kernel ties it to the *thread* that
// forked the child, not to the process (see syscall.SysProcAttr and
// go.dev/issue/27505), and the Go runtime terminates threads that a goroutine
// locked and then exited on. So the waiter goroutine calls
// runtime.LockOSThread, forks the child from that thread, reports the start
// result back to Start over a channel, and stays blocked in the wait for the
// child's whole life. It never unlocks: when it returns after reaping, the
// runtime terminates the thread, which is harmless because the child is
// already dead. If the start fails, it unlocks, as there is no child to
// protect. This costs one OS thread per child. The signal is cleared if the
// child executes a setuid binary, so treat it as a second line of defence, not
// the main mechanism. It is ignored on non-Linux systems.
package process
