package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/plan"
	"github.com/vigilhq/vigil/process"
	"github.com/vigilhq/vigil/reactor"
	"github.com/vigilhq/vigil/watcher"
)

type stdio struct{ in, out, err *os.File }

// startError is a failure before the node could start: printed as the
// command's error rather than logged as vigil's end.
type startError struct{ err error }

func (e startError) Error() string { return e.err.Error() }

// teardown undoes what runService started, newest first, on every way out.
type teardown []func()

func (t *teardown) add(f func()) { *t = append(*t, f) }

// run has a pointer receiver: `defer down.run()` must see what is added
// after the defer statement.
func (t *teardown) run() {
	for i := len(*t) - 1; i >= 0; i-- {
		(*t)[i]()
	}
}

// runService is `vigil run` once its settings are parsed: the run lock, the
// end of what a killed vigil left running, then the components (observer,
// signal registration, orphan reaper, systemd notifier) around the reactor,
// all torn down in one place.
func runService(cfg config.Config, appArgs []string, io stdio, getenv getenvFunc, log *slog.Logger) (process.Exit, error) {
	var down teardown
	defer down.run()
	lock, err := lockHome(cfg, log) // one vigil per home; cleans partial backups
	if err != nil {
		return process.Exit{}, startError{err}
	}
	down.add(func() { lock.Release() })
	// Before anything starts, backs up or switches: end what a killed vigil
	// of this home left running, and refuse to start a second node on a
	// database that something else has open.
	if err := reactor.Reclaim(context.Background(), cfg.Layout(), cfg.ShutdownGrace, log); err != nil {
		return process.Exit{}, startError{err}
	}
	obs, err := startObserver(cfg, log) // metrics and probes (VIGIL_LISTEN), status file
	if err != nil {
		return process.Exit{}, startError{err}
	}
	down.add(obs.stop)

	// Registered once for vigil's lifetime; the reactor forwards each signal.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	down.add(func() { signal.Stop(sigs) })

	// As a container's PID 1 (no --init), the node's orphans are re-parented
	// to vigil: reap them, never our own children (see package process).
	if os.Getpid() == 1 {
		if reaper, err := process.StartReaper(log.With("component", "reaper")); err != nil {
			log.Warn("orphaned processes will not be reaped", "err", err)
		} else {
			down.add(reaper.Stop)
		}
	}
	notifier, health := systemdNotifier(getenv, log)
	down.add(notifier.Close)

	rc, err := reactorConfig(cfg, appArgs, io, log)
	if err != nil {
		return process.Exit{Code: 1}, err
	}
	rc.Observe = event.Tee(obs.Observe, health.Observe, notifier.Observe)
	exit, err := reactor.Run(context.Background(), rc, sigs)
	obs.Fail(err) // how vigil ended, in the last status
	return exit, err
}

// reactorConfig maps the settings onto the reactor's.
func reactorConfig(cfg config.Config, appArgs []string, io stdio, log *slog.Logger) (reactor.Config, error) {
	l := cfg.Layout()
	halt, err := l.OperatorHalt(appArgs)
	if err != nil {
		return reactor.Config{}, err
	}
	rc := reactor.Config{
		Layout:      l,
		Args:        appArgs,
		SkipHeights: plan.SkipHeights(appArgs),
		HaltHeight:  halt,
		Committed:   l.CommittedHeight,
		// Read after systemdNotifier has removed systemd's variables.
		Env:   os.Environ(),
		Stdin: io.in, Stdout: io.out, Stderr: io.err,
		// A process group lets a stop reach the node's helpers too; with a
		// terminal on stdin the app stays in our group so it can read it.
		OwnGroup:             !isTerminal(io.in),
		ShutdownGrace:        cfg.ShutdownGrace,
		RestartDelay:         cfg.RestartDelay,
		RestartAfterUpgrade:  cfg.RestartAfterUpgrade,
		PreupgradeMaxRetries: cfg.PreupgradeMaxRetries,
		RestartOnFailure:     cfg.RestartOnFailure,
		RestartMax:           cfg.RestartMax,
		Watch: watcher.Config{
			Dir:            cfg.DataDir(),
			File:           plan.FileName,
			PollInterval:   cfg.PollInterval,
			SafetyInterval: cfg.SafetyPollInterval,
			ForcePoll:      cfg.WatchMode == "poll",
			Logger:         log.With("component", "watcher"),
		},
		Logger: log,
	}
	if cfg.CustomPreupgrade != "" {
		rc.CustomPreupgrade = filepath.Join(cfg.Root(), cfg.CustomPreupgrade)
	}
	if !cfg.SkipBackup {
		rc.Backup = newDataBackup(cfg, log)
	}
	if rpc, err := nodeRPC(cfg, ""); err == nil {
		rc.Chain = rpc
	}
	if cfg.AllowDownload {
		setupDownloads(&rc, cfg, log) // fetcher, and prefetch from the node's RPC
	}
	return rc, nil
}
