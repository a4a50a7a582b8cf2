package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/process"
)

// The swap applies one upgrade whose binary is ready: stop the node, back
// up, run the hooks, switch `current`, start the new binary. It starts the
// node through r.spawn, so that its paths (and the abort paths) can be
// tested without a home of real binaries.

// upgrade applies rd to the running child (nil when the node is down). It
// returns the node now running, or nil with the exit vigil should end with.
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
	// The marker must be durable before the switch (design invariant 1); its
	// two fsyncs run while the node stops, off the pickup's path.
	marker := r.writeMarker(rd)
	defer marker() // never leave the write behind, whatever the path out
	if child != nil {
		r.step(rd, "stopping the node")
		exit, aborted := r.stop(child, sigs)
		r.emit(event.Event{Kind: event.AppExited, Exit: exit, Expected: true})
		if aborted {
			log.Warn("upgrade not applied: stop requested during the upgrade; it runs at the next start")
			return nil, exit, nil
		}
	}
	sig, err := r.runSteps(ctx, rd, marker, sigs)
	switch {
	case sig != 0:
		log.Warn("upgrade interrupted by signal", "signal", sig.String(), "switched", err == nil)
		return nil, signalExit(sig), nil
	case errors.Is(err, errWithdrawn):
		// Stopped for nothing, but nothing was switched: the installed
		// version runs on.
		log.Warn("upgrade not applied: its plan no longer stands; starting the installed binary again", "err", err)
		return r.restartInstalled()
	case err != nil:
		return nil, process.Exit{Code: 1}, err
	}
	return r.finish(ctx, rd, log)
}

// writeMarker starts writing rd's marker and returns what waits for it; the
// wait may be called more than once.
func (r *reactor) writeMarker(rd ready) func() error {
	done := make(chan error, 1)
	go func() { done <- r.l.WriteMarker(rd.dir, rd.plan) }()
	return sync.OnceValue(func() error { return <-done })
}

// runSteps runs applySteps while watching for the operator's stop: the
// steps can take long (a backup), and a stop cancels them cleanly. Nothing
// there leaves a half-done state: the backup is renamed only when complete
// and `current` switches in one rename. It returns the stop signal that
// interrupted the steps (0 if none) and their error.
func (r *reactor) runSteps(ctx context.Context, rd ready, marker func() error, sigs <-chan os.Signal) (syscall.Signal, error) {
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
				// The node is down: nothing to forward, and any stop means
				// "do not go on".
				if s, _ := sig.(syscall.Signal); isStop(s) {
					r.shutdown()
					stopSig <- s
					cancel()
					return
				}
			}
		}
	}()
	err := r.applySteps(stepCtx, rd, marker)
	cancel()
	<-watchDone
	select {
	case s := <-stopSig:
		return s, err
	default:
		return 0, err
	}
}

// applySteps runs what the swap does once the node is down. The plan is
// confirmed again after each wait that can be long (the restart delay, a
// backup) and right before the switch, after the hooks: minutes can pass
// here. It was confirmed just before the stop.
func (r *reactor) applySteps(ctx context.Context, rd ready, marker func() error) error {
	if r.cfg.RestartDelay > 0 {
		if err := sleep(ctx, r.cfg.RestartDelay); err != nil {
			return err
		}
		if err := r.confirm(rd.target); err != nil {
			return err
		}
	}
	if rd.backup {
		if err := r.backup(ctx, rd); err != nil {
			return err
		}
		if err := r.confirm(rd.target); err != nil {
			return err
		}
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
	if err := marker(); err != nil {
		return err
	}
	if err := r.confirm(rd.target); err != nil {
		return err
	}
	r.step(rd, "switching current")
	if err := r.l.SwitchNoSync(rd.dir); err != nil {
		return err
	}
	r.log.Info("switched", "to", filepath.Join("upgrades", rd.dir))
	return nil
}

func (r *reactor) backup(ctx context.Context, rd ready) error {
	r.step(rd, "backing up data")
	res, err := r.cfg.Backup.Backup(ctx, rd.plan, rd.dir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	r.log.Info("backup done", "path", res.Path, "strategy", res.Strategy, "files", res.Files, "bytes", res.Bytes, "took", res.Took)
	r.emit(event.Event{Kind: event.BackupDone, Plan: rd.plan, Path: res.Path, Strategy: string(res.Strategy), Files: res.Files, Bytes: res.Bytes, Took: res.Took})
	return nil
}

// finish follows a switch: the new binary starts (unless
// DAEMON_RESTART_AFTER_UPGRADE is off), then the switch is made durable and
// old backups are removed, both off the pickup's path.
func (r *reactor) finish(ctx context.Context, rd ready, log *slog.Logger) (*process.Child, process.Exit, error) {
	var next *process.Child
	var due error
	if r.cfg.RestartAfterUpgrade {
		r.step(rd, "starting the new binary")
		var err error
		next, err = r.launch()
		switch {
		case errors.Is(err, errDue):
			due = err
		case err != nil:
			return nil, process.Exit{Code: 1}, err
		}
	}
	// Took ends at the start of the new binary, or at the switch when there is none.
	took := time.Since(rd.seen)
	if err := r.l.SyncRoot(); err != nil {
		log.Warn("the switch of current may not survive a power loss", "err", err)
	}
	if r.cfg.Backup != nil {
		if err := r.cfg.Backup.Retain(ctx); err != nil {
			log.Warn("old backups not removed", "err", err)
		}
	}
	switch {
	case due != nil:
		log.Info("upgrade done; the next scheduled upgrade is due before the new binary may start")
	case next == nil:
		log.Info("upgrade done; DAEMON_RESTART_AFTER_UPGRADE is off, exiting. Verify the upgrade and start vigil again")
	default:
		log.Info("upgrade done", "pickup", took)
	}
	r.emit(event.Event{Kind: event.UpgradeDone, Plan: rd.plan, Took: took})
	return next, process.Exit{}, due
}

// restartInstalled starts the version `current` names after an upgrade was
// given up before its switch.
func (r *reactor) restartInstalled() (*process.Child, process.Exit, error) {
	next, err := r.launch()
	if errors.Is(err, errDue) {
		return nil, process.Exit{}, err
	}
	if err != nil {
		return nil, process.Exit{Code: 1}, err
	}
	return next, process.Exit{}, nil
}

func (r *reactor) step(rd ready, what string) {
	r.emit(event.Event{Kind: event.UpgradeStep, Plan: rd.plan, Step: what})
}

// stop ends the node for an upgrade with the stop policy: SIGTERM (a halted
// node ignores SIGINT), SIGKILL after the grace. A stop signal from the
// operator meanwhile aborts the upgrade; a deliberate second one kills the
// node at once. Other signals are forwarded.
func (r *reactor) stop(child *process.Child, sigs <-chan os.Signal) (exit process.Exit, aborted bool) {
	start := time.Now()
	r.log.Info("stopping app", "pid", child.Pid(), "grace", r.cfg.ShutdownGrace)
	st := r.newStopper(child)
	defer st.close()
	st.terminate()
	for {
		select {
		case <-child.Done():
			exit = child.Exit()
			r.log.Info("app stopped", "took", time.Since(start), "exit", exit.String(), "killed", st.killed)
			return exit, aborted
		case <-st.expired():
			st.expire()
		case sig := <-sigs:
			s, _ := sig.(syscall.Signal)
			if st.signal(s) {
				r.shutdown()
				aborted = true
			}
		}
	}
}
