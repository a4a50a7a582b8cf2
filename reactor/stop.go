package reactor

import (
	"syscall"
	"time"

	"github.com/vigilhq/vigil/process"
)

// stopper is vigil's one stop policy for a running child, used while the
// node runs (an operator's stop) and while an upgrade stops it:
//
//   - a stop (vigil's own SIGTERM, or the operator's TERM or INT forwarded)
//     gives the child DAEMON_SHUTDOWN_GRACE, then SIGKILL;
//   - a stop signal the child already got is not sent again (a node that is
//     flushing has it), and a deliberate repeat of the operator's (at least
//     stopDebounce after the first) kills at once;
//   - every other signal is forwarded.
//
// It belongs to the goroutine that selects on its grace channel.
type stopper struct {
	r        *reactor
	child    *process.Child
	operator stopSignals             // the operator's stop signals, first arrival
	got      map[syscall.Signal]bool // stop signals the child has been sent
	grace    *time.Timer             // from the first stop; nil before
	killed   bool                    // SIGKILL was sent
}

func (r *reactor) newStopper(child *process.Child) *stopper {
	return &stopper{r: r, child: child, operator: stopSignals{}, got: map[syscall.Signal]bool{}}
}

// terminate is vigil's own stop: SIGTERM and the grace.
func (s *stopper) terminate() {
	s.send(syscall.SIGTERM)
}

// signal applies the policy to a signal from the operator and reports
// whether it was a stop signal.
func (s *stopper) signal(sig syscall.Signal) bool {
	if !isStop(sig) {
		s.r.log.Info("forwarding signal", "signal", sig.String(), "pid", s.child.Pid())
		s.deliver(sig)
		return false
	}
	if s.operator.repeat(sig, time.Now()) {
		s.kill("second stop signal: killing app", "signal", sig.String())
		return true
	}
	if !s.got[sig] {
		s.r.log.Info("forwarding signal", "signal", sig.String(), "pid", s.child.Pid())
		s.send(sig)
	}
	return true
}

// stopping reports whether the operator asked the child to stop.
func (s *stopper) stopping() bool { return s.operator.any() }

// expired is the grace's channel; nil (never ready) before the first stop,
// and for a nil stopper (no child).
func (s *stopper) expired() <-chan time.Time {
	if s == nil || s.grace == nil {
		return nil
	}
	return s.grace.C
}

// expire kills the child whose grace ran out.
func (s *stopper) expire() {
	s.kill("shutdown grace exceeded, killing app", "grace", s.r.cfg.ShutdownGrace, "pid", s.child.Pid())
}

// close releases the timer; the stopper is done with.
func (s *stopper) close() {
	if s.grace != nil {
		s.grace.Stop()
	}
}

// send delivers a stop signal and starts the grace at the first one.
func (s *stopper) send(sig syscall.Signal) {
	s.got[sig] = true
	if s.grace == nil {
		s.grace = time.NewTimer(s.r.cfg.ShutdownGrace)
	}
	s.deliver(sig)
}

func (s *stopper) deliver(sig syscall.Signal) {
	if err := s.child.Signal(sig); err != nil {
		s.r.log.Debug("signal not delivered", "signal", sig.String(), "err", err)
	}
}

func (s *stopper) kill(reason string, args ...any) {
	s.killed = true
	s.r.log.Warn(reason, args...)
	s.child.Kill()
}

// stopDebounce is how long after the first TERM (or INT) a repeat of it is
// still taken as the same request rather than a deliberate second one.
// Scripts and tools send a signal twice in a row (`kill $p; kill $p`,
// systemd's KillMode=control-group reaching the node and vigil, a
// `timeout` that re-sends): those arrive within milliseconds and must not
// turn a graceful stop into a SIGKILL that risks the database. A human who
// means "kill it now" presses Ctrl-C or runs kill again after more than a
// second.
const stopDebounce = time.Second

// stopSignals remembers when the operator first sent each stop signal. Only a
// repeat of the same one escalates to SIGKILL: a halted node ignores SIGINT,
// so SIGTERM after SIGINT is the gentle next step, not an emergency.
type stopSignals map[syscall.Signal]time.Time

// repeat records s, received at now, and reports whether it is a deliberate
// repeat: a stop signal first sent at least stopDebounce earlier. A repeat
// within the debounce is treated as the first one again.
func (st stopSignals) repeat(s syscall.Signal, now time.Time) bool {
	if !isStop(s) {
		return false
	}
	first, seen := st[s]
	if !seen {
		st[s] = now
		return false
	}
	return now.Sub(first) >= stopDebounce
}

func (st stopSignals) any() bool { return len(st) > 0 }

func isStop(s syscall.Signal) bool { return s == syscall.SIGTERM || s == syscall.SIGINT }

func signalExit(s syscall.Signal) process.Exit {
	return process.Exit{Code: 128 + int(s), Signal: s}
}
