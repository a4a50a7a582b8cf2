package reactor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/plan"
	"github.com/vigilhq/vigil/process"
	"github.com/vigilhq/vigil/watcher"
)

// Backuper backs up the data directory once the node has stopped.
type Backuper interface {
	// Check runs in prepare, while the node still runs: it fails when the
	// backup cannot be taken (not enough free space), which keeps the node as
	// it is and is retried with backoff. take=false means go on without a
	// backup; the implementation has said so loudly.
	Check(ctx context.Context, p plan.Plan) (take bool, err error)
	// Backup copies the data directory; the node has exited.
	Backup(ctx context.Context, p plan.Plan, upgradeDir string) (backup.Result, error)
	// Retain runs after a successful upgrade and removes the backups beyond
	// the retention count; never before, so a failed upgrade keeps them all.
	Retain(ctx context.Context) error
}

// ChainHeight is the running node's latest block (its RPC). The app has
// committed it or the block before.
type ChainHeight interface {
	LatestHeight(ctx context.Context) (int64, error)
}

// Fetcher installs a missing upgrade binary at upgrades/<dir>/bin/<name>.
type Fetcher interface {
	Fetch(ctx context.Context, p plan.Plan, upgradeDir string) error
}

// Config is everything the reactor needs; cmd builds it from its settings.
type Config struct {
	Layout home.Layout
	Args   []string // the app's arguments, reused after every upgrade
	// SkipHeights are the upgrade heights the node was told to skip
	// (plan.SkipHeights of Args): a plan at one of them is not applied.
	SkipHeights []int64
	// HaltHeight is the operator's own halt: --halt-height among Args, else
	// app.toml's halt-height; 0 = none. A scheduled upgrade below it halts the
	// node first; a halt at it is a normal stop.
	HaltHeight int64
	// Committed reads the height the node's app has committed, with the node
	// stopped (height.Committed of the data directory). Upgrades scheduled at
	// a height need it; nil = none can be applied.
	Committed func() (int64, error)
	// Chain, when set, tells the running node's latest block: a schedule
	// change that would restart the node for a height it is already past is
	// refused instead.
	Chain ChainHeight
	// Env is the environment of the node and its hooks, before a version's
	// lib/ is put on LD_LIBRARY_PATH (home.ChildEnv); nil = vigil's own,
	// without that.
	Env                   []string
	Stdin, Stdout, Stderr *os.File
	OwnGroup              bool // start the app in its own process group

	ShutdownGrace        time.Duration
	RestartDelay         time.Duration
	RestartAfterUpgrade  bool
	PreupgradeMaxRetries int
	PreupgradeRetryPause time.Duration // pause before retrying after exit 31; 0 = 1s
	CustomPreupgrade     string        // absolute path of the custom pre-upgrade script, "" = none
	BinaryRetry          time.Duration // first wait before re-checking a missing binary; 0 = 1s

	// Crash restarts, for hosts without systemd. A crash is an exit with a
	// non-zero code or by a signal other than HUP, INT, TERM or PIPE (the
	// clean signals of systemd's Restart=on-failure); upgrades and stops
	// asked for by the operator never count.
	RestartOnFailure bool
	RestartMax       int           // crashes in a row before vigil gives up; 0 = no limit
	RestartStable    time.Duration // a run this long resets the count; 0 = 10m
	RestartBackoff   time.Duration // first wait before a restart, doubling to 1m; 0 = 1s

	Backup Backuper // nil = no backup
	Fetch  Fetcher  // nil = downloads disabled

	// Prefetch: with Fetch, Plans and PrefetchInterval all set, the plan the
	// chain has scheduled is asked for every PrefetchInterval and its binary
	// downloaded before the halt.
	Plans            PlanSource
	PrefetchInterval time.Duration

	Watch   watcher.Config
	Logger  *slog.Logger
	Observe event.Func // nil = nobody listens
}

// target is a detected upgrade and the directory it installs into.
type target struct {
	plan plan.Plan
	dir  string    // directory name under upgrades/
	seen time.Time // when detect first read it: the start of the pickup
}

func (t target) same(o target) bool { return t.dir == o.dir && t.plan.Height == o.plan.Height }

// ready is a target whose binary is in place.
type ready struct {
	target
	bin    string
	backup bool // take a backup before the switch
}

// query asks detect for the upgrade that must be applied before the app may
// (re)start; the reply is nil when there is none.
type query struct {
	reason string
	reply  chan *target
}

type reactor struct {
	cfg      Config
	l        home.Layout
	log      *slog.Logger
	procs    *procRecord // what runs, for the vigil after us; nil in some tests
	stopping sync.Once   // the Stopping event is sent once
	// spawn starts the node from `current`: r.start, or a stand-in in the
	// tests of the swap and of supervise.
	spawn func() (*process.Child, error)
	halt  halt // what the node was last started with; supervise's goroutine's
}

func (r *reactor) emit(e event.Event) { r.cfg.Observe.Emit(e) }

// shutdown tells observers that vigil is on its way out.
func (r *reactor) shutdown() {
	r.stopping.Do(func() { r.emit(event.Event{Kind: event.Stopping}) })
}

// Run supervises the app until it exits without a pending upgrade (its exit
// is returned), an upgrade completes with RestartAfterUpgrade off (exit 0), or
// an upgrade fails (error). Every signal received on sigs is handled as
// described in the package documentation.
func Run(ctx context.Context, cfg Config, sigs <-chan os.Signal) (process.Exit, error) {
	if cfg.PreupgradeRetryPause == 0 {
		cfg.PreupgradeRetryPause = time.Second
	}
	if cfg.BinaryRetry == 0 {
		cfg.BinaryRetry = time.Second
	}
	if cfg.RestartStable == 0 {
		cfg.RestartStable = 10 * time.Minute
	}
	if cfg.RestartBackoff == 0 {
		cfg.RestartBackoff = time.Second
	}
	r := &reactor{cfg: cfg, l: cfg.Layout, log: cfg.Logger}
	r.procs = newProcRecord(r.l.ProcsFile(), r.log)
	r.spawn = r.start
	created, err := r.l.EnsureCurrent()
	if err != nil {
		return process.Exit{}, err
	}
	if created {
		r.log.Info("created current link", "to", "genesis")
	}
	in, err := r.l.Installed()
	if err != nil {
		return process.Exit{}, err
	}
	if r.l.Foreign(in) {
		r.log.Warn("current points outside cosmovisor/: vigil runs it, but it is not genesis nor an upgrade it manages", "current", r.l.Current(), "dir", in.Dir)
	}
	if err := r.l.CleanTemps(r.log); err != nil {
		r.log.Warn("could not remove temporary files left by an earlier run", "err", err)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	changes := make(chan watcher.Change)
	targets := make(chan target)
	readies := make(chan ready)
	queries := make(chan query)
	schedules := make(chan watcher.Change)

	var wg sync.WaitGroup
	stage := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	stage("watcher", func() error { return watcher.Run(ctx, cfg.Watch, changes) })
	batch := cfg.Watch
	batch.File = plan.BatchFileName
	stage("schedule watcher", func() error { return watcher.Run(ctx, batch, schedules) })
	stage("detect", func() error { return r.detect(ctx, changes, queries, targets) })
	stage("prepare", func() error { return r.prepare(ctx, targets, readies) })
	if cfg.Fetch != nil && cfg.Plans != nil && cfg.PrefetchInterval > 0 {
		stage("prefetch", func() error { return r.prefetch(ctx) })
	}

	exit, err := r.supervise(ctx, sigs, queries, readies, schedules)
	r.shutdown()
	cancel(nil)
	wg.Wait()
	return exit, err
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// childEnv is the environment of a program run from versionDir, marked as
// this vigil's (process.MarkEnv): a node that outlives a vigil killed before
// it was recorded in vigil.procs, or a descendant that left its group, is
// then still known for ours by the next vigil (Reclaim).
func (r *reactor) childEnv(versionDir string) []string {
	env := r.cfg.Env
	if env == nil {
		env = os.Environ()
	}
	return process.MarkEnv(r.l.ChildEnv(versionDir, env), r.l.Home)
}
