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
)

// supervise owns the app. It returns the app's exit when the app ends without
// a pending upgrade or because the operator stopped it.
func (r *reactor) supervise(ctx context.Context, sigs <-chan os.Signal, queries chan<- query, readies <-chan ready) (process.Exit, error) {
	var (
		child   *process.Child
		last    process.Exit // the app's last exit, returned if we stop while it is down
		stopped = stopSignals{}
		crashes = newCrashPolicy(r.cfg)
		restart <-chan time.Time // fires when a crashed app is due to start again
		// escalate fires DAEMON_SHUTDOWN_GRACE after the operator's first
		// stop signal: a node that ignores it is killed then, as in an
		// upgrade's stop, rather than keep vigil up for ever.
		escalate <-chan time.Time
	)
	// Reconcile before the first start: never run the old binary while an
	// upgrade is pending (design invariant 2).
	pending, err := r.ask(ctx, queries, "start")
	if err != nil {
		return last, err
	}
	if pending == nil {
		if child, err = r.start(); err != nil {
			return last, err
		}
	} else {
		r.log.Info("upgrade pending at start; applying it before starting the app", "plan", pending.plan)
	}
	defer func() { crashes.stop() }()
	var graceTimer *time.Timer
	defer func() {
		if graceTimer != nil {
			graceTimer.Stop()
		}
	}()
	for {
		var done <-chan struct{}
		if child != nil {
			done = child.Done()
		}
		select {
		case <-ctx.Done():
			if child != nil {
				res := child.Stop(context.Background(), r.cfg.ShutdownGrace)
				last = res.Exit
				r.emit(event.Event{Kind: event.AppExited, Exit: last, Expected: true})
			}
			return last, context.Cause(ctx)

		case sig := <-sigs:
			s, _ := sig.(syscall.Signal)
			if isStop(s) {
				r.shutdown()
			}
			if child == nil {
				if isStop(s) {
					r.log.Info("stop requested while the app is down", "signal", s.String())
					return signalExit(s), nil
				}
				continue
			}
			first := isStop(s) && !stopped.any()
			if stopped.repeat(s, time.Now()) {
				r.log.Warn("second stop signal: killing app", "signal", s.String())
				child.Kill()
				continue
			}
			if first {
				graceTimer = time.NewTimer(r.cfg.ShutdownGrace)
				escalate = graceTimer.C
			}
			r.log.Info("forwarding signal", "signal", s.String(), "pid", child.Pid())
			if err := child.Signal(s); err != nil {
				r.log.Debug("signal not delivered", "signal", s.String(), "err", err)
			}

		case <-escalate:
			escalate = nil
			if child != nil {
				r.log.Warn("shutdown grace exceeded, killing app", "grace", r.cfg.ShutdownGrace, "pid", child.Pid())
				child.Kill()
			}

		case <-done:
			last, child = child.Exit(), nil
			r.log.Info("app exited", "exit", last.String())
			r.emit(event.Event{Kind: event.AppExited, Exit: last, Expected: stopped.any()})
			if stopped.any() {
				return last, nil
			}
			// A halting node may write upgrade-info.json and die at once.
			if pending, err = r.ask(ctx, queries, "app exited"); err != nil {
				return last, err
			}
			if pending != nil {
				r.log.Info("app exited with an upgrade pending; waiting for it to be ready", "plan", pending.plan)
				continue
			}
			if !r.cfg.RestartOnFailure || !isCrash(last) {
				return last, nil
			}
			wait, ok := crashes.next()
			if !ok {
				r.log.Error("app keeps crashing; giving up", "crashes", crashes.count, "max", r.cfg.RestartMax)
				return last, nil
			}
			r.log.Warn("app crashed; restarting", "exit", last.String(), "attempt", crashes.count, "in", wait)
			r.emit(event.Event{Kind: event.AppRestarting, Exit: last, Attempt: crashes.count, Wait: wait})
			restart = crashes.after(wait)

		case <-restart:
			restart = nil
			if pending, err = r.ask(ctx, queries, "restart"); err != nil {
				return last, err
			}
			if pending != nil {
				r.log.Info("upgrade pending; applying it instead of restarting", "plan", pending.plan)
				continue
			}
			if child, err = r.start(); err != nil {
				return last, err
			}
			crashes.started()

		case rd, ok := <-readies:
			if !ok {
				readies = nil
				continue
			}
			restart = nil
			crashes.stop()
			next, exit, err := r.upgrade(ctx, child, rd, sigs)
			child = next
			if err != nil {
				r.log.Error("upgrade failed", "plan", rd.plan, "err", err)
				r.emit(event.Event{Kind: event.UpgradeFailed, Plan: rd.plan, Err: err})
				return exit, err
			}
			if child == nil {
				return exit, nil
			}
			// A new version gets a fresh crash budget.
			crashes = newCrashPolicy(r.cfg)
		}
	}
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
		Args:   r.cfg.Args,
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
	r.log.Info("app started", "path", bin, "pid", child.Pid(), "args", r.cfg.Args)
	installed := in.Upgrade
	if installed == "" {
		installed = "genesis"
	}
	r.emit(event.Event{Kind: event.AppStarted, Bin: bin, Pid: child.Pid(), Installed: installed})
	return child, nil
}

// upgrade applies rd: stop the app (if running), restart delay, backup, hooks,
// switch, start. It returns the new app, or nil with the exit vigil should
// end with.
func (r *reactor) upgrade(ctx context.Context, child *process.Child, rd ready, sigs <-chan os.Signal) (*process.Child, process.Exit, error) {
	log := r.log.With("plan", rd.plan)
	if err := r.confirm(rd.target); err != nil {
		log.Warn("upgrade not applied: its plan no longer stands; the node is left as it is", "err", err)
		if child != nil {
			return child, process.Exit{}, nil
		}
		return r.restartInstalled()
	}
	log.Info("upgrade detected", "to", rd.dir)
	if child != nil {
		r.step(rd, "stopping the node")
		exit, aborted := r.stop(child, sigs)
		r.emit(event.Event{Kind: event.AppExited, Exit: exit, Expected: true})
		if aborted {
			log.Warn("upgrade not applied: stop requested during the upgrade; it runs at the next start")
			return nil, exit, nil
		}
	}

	// The steps below can take long (a backup); a stop signal cancels them
	// cleanly. Nothing here leaves a half-done state: the backup is renamed
	// only when complete and `current` switches in one rename.
	stepCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopSig := make(chan syscall.Signal, 1)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-stepCtx.Done():
				return
			case sig := <-sigs:
				if s, _ := sig.(syscall.Signal); isStop(s) {
					r.shutdown()
					stopSig <- s
					cancel()
					return
				}
			}
		}
	}()
	err := r.applySteps(stepCtx, rd)
	cancel()
	<-watchDone
	select {
	case s := <-stopSig:
		log.Warn("upgrade interrupted by signal", "signal", s.String(), "switched", err == nil)
		return nil, signalExit(s), nil
	default:
	}
	if errors.Is(err, errWithdrawn) {
		// Stopped for nothing, but nothing was switched: the installed
		// version runs on.
		log.Warn("upgrade not applied: its plan no longer stands; starting the installed binary again", "err", err)
		return r.restartInstalled()
	}
	if err != nil {
		return nil, process.Exit{Code: 1}, err
	}
	if r.cfg.Backup != nil {
		if err := r.cfg.Backup.Retain(ctx); err != nil {
			log.Warn("old backups not removed", "err", err)
		}
	}
	if !r.cfg.RestartAfterUpgrade {
		log.Info("upgrade done; DAEMON_RESTART_AFTER_UPGRADE is off, exiting. Verify the upgrade and start vigil again")
		// Took ends at the switch here: there is no new binary to start.
		r.emit(event.Event{Kind: event.UpgradeDone, Plan: rd.plan, Took: time.Since(rd.seen)})
		return nil, process.Exit{}, nil
	}
	r.step(rd, "starting the new binary")
	next, err := r.start()
	if err != nil {
		return nil, process.Exit{Code: 1}, err
	}
	took := time.Since(rd.seen)
	log.Info("upgrade done", "pickup", took)
	r.emit(event.Event{Kind: event.UpgradeDone, Plan: rd.plan, Took: took})
	return next, process.Exit{}, nil
}

// restartInstalled starts the version `current` names after an upgrade was
// given up before its switch.
func (r *reactor) restartInstalled() (*process.Child, process.Exit, error) {
	next, err := r.start()
	if err != nil {
		return nil, process.Exit{Code: 1}, err
	}
	return next, process.Exit{}, nil
}

// applySteps runs what the swap does once the node is down. The plan is
// confirmed again before each step that changes something and right before
// the switch: minutes can pass here (a backup, a slow migration).
func (r *reactor) applySteps(ctx context.Context, rd ready) error {
	if err := sleep(ctx, r.cfg.RestartDelay); err != nil {
		return err
	}
	if err := r.confirm(rd.target); err != nil {
		return err
	}
	if rd.backup {
		r.step(rd, "backing up data")
		res, err := r.cfg.Backup.Backup(ctx, rd.plan, rd.dir)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		r.log.Info("backup done", "path", res.Path, "strategy", res.Strategy, "files", res.Files, "bytes", res.Bytes, "took", res.Took)
		r.emit(event.Event{Kind: event.BackupDone, Plan: rd.plan, Path: res.Path, Strategy: string(res.Strategy), Files: res.Files, Bytes: res.Bytes, Took: res.Took})
	}
	if err := r.confirm(rd.target); err != nil {
		return err
	}
	r.step(rd, "running pre-upgrade hooks")
	if err := r.customPreupgrade(ctx, rd.plan); err != nil {
		return err
	}
	if err := r.preUpgrade(ctx, rd.bin); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.confirm(rd.target); err != nil {
		return err
	}
	r.step(rd, "switching current")
	if err := r.l.Switch(rd.dir); err != nil {
		return err
	}
	r.log.Info("switched", "to", filepath.Join("upgrades", rd.dir))
	return nil
}

func (r *reactor) step(rd ready, what string) {
	r.emit(event.Event{Kind: event.UpgradeStep, Plan: rd.plan, Step: what})
}

// stop ends the app for an upgrade: SIGTERM (a halted node ignores SIGINT),
// SIGKILL after the grace. A stop signal from the operator meanwhile aborts
// the upgrade; a second one kills the app at once. Other signals are
// forwarded.
func (r *reactor) stop(child *process.Child, sigs <-chan os.Signal) (exit process.Exit, aborted bool) {
	start := time.Now()
	r.log.Info("stopping app", "pid", child.Pid(), "grace", r.cfg.ShutdownGrace)
	if err := child.Signal(syscall.SIGTERM); err != nil {
		r.log.Debug("SIGTERM not delivered", "err", err)
	}
	grace := time.NewTimer(r.cfg.ShutdownGrace)
	defer grace.Stop()
	killed := false
	stopped := stopSignals{}
	for {
		select {
		case <-child.Done():
			exit = child.Exit()
			r.log.Info("app stopped", "took", time.Since(start), "exit", exit.String(), "killed", killed)
			return exit, aborted
		case <-grace.C:
			r.log.Warn("shutdown grace exceeded, killing app", "grace", r.cfg.ShutdownGrace)
			killed = true
			child.Kill()
		case sig := <-sigs:
			s, _ := sig.(syscall.Signal)
			if stopped.repeat(s, time.Now()) {
				r.log.Warn("second stop signal: killing app", "signal", s.String())
				killed = true
				child.Kill()
			}
			if isStop(s) {
				r.shutdown()
				aborted = true // we already sent SIGTERM
				continue
			}
			child.Signal(s)
		}
	}
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
// within the debounce is treated as the first one again (forwarded only).
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
