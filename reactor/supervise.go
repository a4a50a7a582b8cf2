package reactor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/process"
	"github.com/vigilhq/vigil/watcher"
)

// supervise owns the app. It returns the app's exit when the app ends without
// a pending upgrade or because the operator stopped it.
func (r *reactor) supervise(ctx context.Context, sigs <-chan os.Signal, queries chan<- query, readies <-chan ready, schedules <-chan watcher.Change) (process.Exit, error) {
	s := &supervision{r: r, queries: queries, crashes: newCrashPolicy(r.cfg)}
	defer s.crashes.stop()
	defer func() { s.setChild(nil) }()
	// Reconcile before the first start: never run the old binary while an
	// upgrade is pending (design invariant 2).
	pending, err := r.ask(ctx, queries, "start")
	if err != nil {
		return s.last, err
	}
	if pending != nil {
		r.log.Info("upgrade pending at start; applying it before starting the app", "plan", pending.plan)
	} else if err := s.launch(ctx); err != nil {
		return s.last, err
	}
	for {
		var done <-chan struct{}
		if s.child != nil {
			done = s.child.Done()
		}
		var end bool
		select {
		case <-ctx.Done():
			if s.child != nil {
				res := s.child.Stop(context.Background(), r.cfg.ShutdownGrace)
				s.last = res.Exit
				r.emit(event.Event{Kind: event.AppExited, Exit: s.last, Expected: true})
			}
			return s.last, context.Cause(ctx)
		case sig := <-sigs:
			end = s.signal(sig)
		case <-s.st.expired():
			s.st.expire()
		case <-done:
			end, err = s.exited(ctx)
		case <-s.restart:
			s.restart = nil
			err = s.restarted(ctx)
		case c, ok := <-schedules:
			if !ok {
				schedules = nil
				continue
			}
			s.rescheduled(c)
		case rd, ok := <-readies:
			if !ok {
				readies = nil
				continue
			}
			end, err = s.upgrade(ctx, rd, sigs)
		}
		if end || err != nil {
			return s.last, err
		}
	}
}

// supervision is supervise's state; it belongs to supervise's goroutine.
type supervision struct {
	r       *reactor
	queries chan<- query
	child   *process.Child // nil while the app is down
	st      *stopper       // the stop policy of child; nil with it
	last    process.Exit   // the app's last exit, returned if we stop while it is down
	crashes *crashPolicy
	restart <-chan time.Time // fires when a crashed app is due to start again
	// reschedule: vigil is stopping the node to start it again with the
	// halt height a changed schedule asks for.
	reschedule bool
}

func (s *supervision) setChild(c *process.Child) {
	if s.st != nil {
		s.st.close()
		s.st = nil
	}
	s.child = c
	if c != nil {
		s.st = s.r.newStopper(c)
	}
}

// signal handles one of the operator's signals; true means vigil ends now.
func (s *supervision) signal(sig os.Signal) bool {
	sg, _ := sig.(syscall.Signal)
	if isStop(sg) {
		s.r.shutdown()
	}
	if s.child == nil {
		if isStop(sg) {
			s.r.log.Info("stop requested while the app is down", "signal", sg.String())
			s.last = signalExit(sg)
			return true
		}
		return false
	}
	s.st.signal(sg)
	return false
}

// exited handles the end of the app; true means vigil ends with it.
func (s *supervision) exited(ctx context.Context) (bool, error) {
	r := s.r
	stopped := s.st.stopping()
	s.last = s.child.Exit()
	s.setChild(nil)
	r.log.Info("app exited", "exit", s.last.String())
	r.emit(event.Event{Kind: event.AppExited, Exit: s.last, Expected: stopped || s.reschedule})
	if stopped {
		return true, nil
	}
	if s.reschedule {
		s.reschedule = false
		return false, s.launch(ctx)
	}
	if operator, err := s.halted(); err != nil || operator {
		s.last = process.Exit{}
		return true, err
	}
	// A halting node may write upgrade-info.json and die at once.
	pending, err := r.ask(ctx, s.queries, "app exited")
	if err != nil {
		return true, err
	}
	if pending != nil {
		r.log.Info("app exited with an upgrade pending; waiting for it to be ready", "plan", pending.plan)
		return false, nil
	}
	if !r.cfg.RestartOnFailure || !isCrash(s.last) {
		return true, nil
	}
	wait, ok := s.crashes.next()
	if !ok {
		r.log.Error("app keeps crashing; giving up", "crashes", s.crashes.count, "max", r.cfg.RestartMax)
		return true, nil
	}
	r.log.Warn("app crashed; restarting", "exit", s.last.String(), "attempt", s.crashes.count, "in", wait)
	r.emit(event.Event{Kind: event.AppRestarting, Exit: s.last, Attempt: s.crashes.count, Wait: wait})
	s.restart = s.crashes.after(wait)
	return false, nil
}

// restarted starts a crashed app again, unless an upgrade is pending.
func (s *supervision) restarted(ctx context.Context) error {
	pending, err := s.r.ask(ctx, s.queries, "restart")
	if err != nil {
		return err
	}
	if pending != nil {
		s.r.log.Info("upgrade pending; applying it instead of restarting", "plan", pending.plan)
		return nil
	}
	if err := s.launch(ctx); err != nil {
		return err
	}
	s.crashes.started()
	return nil
}

// upgrade hands the app to the swap; true means vigil ends.
func (s *supervision) upgrade(ctx context.Context, rd ready, sigs <-chan os.Signal) (bool, error) {
	s.restart = nil
	s.reschedule = false // the swap stops the node; the next start reads the schedule
	s.crashes.stop()
	child := s.child
	s.setChild(nil) // the swap applies the stop policy while it stops the node
	next, exit, err := s.r.upgrade(ctx, child, rd, sigs)
	if errors.Is(err, errDue) {
		// Applied, and the next scheduled upgrade is due at once.
		if pending, err := s.awaitDue(ctx); err != nil || pending {
			return err != nil, err
		}
		return false, s.launch(ctx)
	}
	if err != nil {
		s.r.log.Error("upgrade failed", "plan", rd.plan, "err", err)
		s.r.emit(event.Event{Kind: event.UpgradeFailed, Plan: rd.plan, Err: err})
		s.last = exit
		return true, err
	}
	if next == nil {
		s.last = exit
		return true, nil
	}
	if next != child {
		// A new version gets a fresh crash budget.
		s.crashes = newCrashPolicy(s.r.cfg)
	}
	s.setChild(next)
	return false, nil
}

// crashPolicy decides when a crashed app starts again: exponential backoff
// with jitter, a limit on crashes in a row, and a reset after a stable run.
// It belongs to supervise's goroutine.
type crashPolicy struct {
	max    int
	stable time.Duration
	bo     *backoff.ExponentialBackOff
	count  int
	since  time.Time // start of the current run
	timer  *time.Timer
}

func newCrashPolicy(cfg Config) *crashPolicy {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = cfg.RestartBackoff
	bo.MaxInterval = time.Minute
	bo.MaxElapsedTime = 0
	bo.Reset()
	return &crashPolicy{max: cfg.RestartMax, stable: cfg.RestartStable, bo: bo, since: time.Now()}
}

// next records a crash and returns how long to wait before the restart, or
// false when the limit is reached.
func (c *crashPolicy) next() (time.Duration, bool) {
	if time.Since(c.since) >= c.stable {
		c.count = 0
		c.bo.Reset()
	}
	c.count++
	if c.max > 0 && c.count > c.max {
		return 0, false
	}
	return c.bo.NextBackOff(), true
}

func (c *crashPolicy) after(d time.Duration) <-chan time.Time {
	c.stop()
	c.timer = time.NewTimer(d)
	return c.timer.C
}

func (c *crashPolicy) started() { c.since = time.Now() }

func (c *crashPolicy) stop() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

// isCrash applies systemd's Restart=on-failure rule.
func isCrash(e process.Exit) bool {
	switch e.Signal {
	case 0:
		return e.Code != 0
	case syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE:
		return false
	}
	return true
}

// ask queries detect for a pending upgrade.
func (r *reactor) ask(ctx context.Context, queries chan<- query, reason string) (*target, error) {
	q := query{reason: reason, reply: make(chan *target, 1)}
	select {
	case queries <- q:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	select {
	case t := <-q.reply:
		return t, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// start launches whatever `current` resolves to, by its real path so `ps`
// shows the version and a later switch cannot change what is starting.
func (r *reactor) start() (*process.Child, error) {
	in, err := r.l.Installed()
	if err != nil {
		return nil, err
	}
	bin := r.l.Bin(in.Dir)
	if _, err := home.CheckBinary(bin); err != nil {
		return nil, fmt.Errorf("current binary is invalid: %w", err)
	}
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		bin = real
	}
	child, err := process.Start(process.Spec{
		Path:   bin,
		Args:   r.nodeArgs(),
		Env:    r.childEnv(in.Dir),
		Stdin:  r.cfg.Stdin,
		Stdout: r.cfg.Stdout,
		Stderr: r.cfg.Stderr,
		// The app is never left running without us: if vigil is killed, the
		// app is asked to stop gracefully.
		ParentDeathSignal: syscall.SIGTERM,
		OwnGroup:          r.cfg.OwnGroup,
		// Recorded for the next vigil: the parent-death SIGTERM does not
		// end a node that ignores it or flushes for long (EndLeftovers).
		Track: r.procs.track("node"),
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("app started", "path", bin, "pid", child.Pid(), "args", r.nodeArgs())
	installed := in.Upgrade
	if installed == "" {
		installed = "genesis"
	}
	e := event.Event{Kind: event.AppStarted, Bin: bin, Pid: child.Pid(), Installed: installed, Halt: r.halt.height}
	if r.halt.plan != nil {
		e.HaltFor = r.halt.plan.Name
	}
	r.emit(e)
	return child, nil
}
