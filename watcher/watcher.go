package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Change says the watched file may have changed. Reason is one of the Reason* constants.
type Change struct {
	Reason string
	// At is when the watcher noticed the oldest fact this Change stands for
	// (later ones are folded into a pending Change, see the package doc).
	At time.Time
}

const (
	ReasonStart    = "start"       // first Change, sent once Run is watching, so the consumer does an initial read
	ReasonEvent    = "event"       // fsnotify event for the file
	ReasonPoll     = "poll"        // poll backend saw a difference
	ReasonSafety   = "safety-poll" // the slow safety-net poll (fsnotify mode) saw a difference fsnotify did not report
	ReasonRearm    = "rearm"       // the watched directory was removed/recreated and the watch was re-armed
	ReasonOverflow = "overflow"    // inotify queue overflow: rescan
)

// Config says what to watch and how.
type Config struct {
	Dir            string        // directory to watch, e.g. $DAEMON_HOME/data (must exist when Run starts; error otherwise)
	File           string        // base name to filter on, e.g. "upgrade-info.json"
	PollInterval   time.Duration // period of the poll backend (cosmovisor DAEMON_POLL_INTERVAL, default 300ms)
	SafetyInterval time.Duration // period of the safety-net poll when fsnotify is used (0 => DefaultSafetyInterval)
	ForcePoll      bool          // use the poll backend even if inotify works
	Logger         *slog.Logger
}

// DefaultSafetyInterval is the safety-net poll period in fsnotify mode. Each
// timer tick costs a few context switches; 30 s keeps an idle vigil well
// inside its budget of 10 wake-ups in 10 s.
const DefaultSafetyInterval = 30 * time.Second

// defaultPollInterval is cosmovisor's DAEMON_POLL_INTERVAL default.
const defaultPollInterval = 300 * time.Millisecond

// noInotifyFS lists statfs f_type magic numbers of filesystems on which
// inotify_add_watch succeeds but no (or only local) events arrive.
var noInotifyFS = map[uint32]string{
	0x6969:     "nfs",
	0xFF534D42: "cifs",
	0xFE534D42: "smb2",
	0x517B:     "smb",
	0x65735546: "fuse",
	0x01021997: "9p",
}

// hooks are the decision points a test replaces: creating the inotify
// watcher (EMFILE, or an Add that fails with ENOSPC, or one that drops
// events), the filesystem type (NFS), and a trace of what the loop saw.
type hooks struct {
	newWatcher func() (fsWatcher, error)
	fsType     func(path string) (uint32, error)
	// trace, when set, is called from the loop: ("event", name) for every raw
	// fsnotify event, ("poll-change", "") when the poller saw a difference.
	trace func(kind, name string)
}

var defaultHooks = hooks{
	newWatcher: newFSNotify,
	fsType:     statfsType,
}

// Run watches until ctx is done. It sends Changes on out and closes out when it returns.
// Sends are coalescing: at most one Change is pending; while the consumer is busy, further
// events only mark "pending" (never block the fsnotify reader, never queue unboundedly).
// Every send selects on ctx.Done(). Returns nil when ctx is cancelled, an error if it cannot
// watch at all (Dir missing or not a directory at start).
func Run(ctx context.Context, cfg Config, out chan<- Change) error {
	return run(ctx, cfg, out, defaultHooks)
}

func run(ctx context.Context, cfg Config, out chan<- Change, h hooks) error {
	if out == nil {
		return errors.New("watcher: nil out channel")
	}
	defer close(out)
	r, err := newRunner(cfg, out, h)
	if err != nil {
		return err
	}
	return r.run(ctx)
}

// runner is the state of one Run. It is owned by the goroutine that called
// Run; nothing in it is shared.
type runner struct {
	cfg  Config
	h    hooks
	log  *slog.Logger
	abs  string // cfg.Dir made absolute and clean; may be (or contain) a symlink
	real string // abs with symlinks resolved at start
	file string // abs/File: what the poller stats (through any symlink)
	em   emitter
}

func newRunner(cfg Config, out chan<- Change, h hooks) (*runner, error) {
	if cfg.Dir == "" {
		return nil, errors.New("watcher: Config.Dir is empty")
	}
	if cfg.File == "" || cfg.File == "." || cfg.File == ".." || cfg.File != filepath.Base(cfg.File) {
		return nil, fmt.Errorf("watcher: Config.File %q is not a base name", cfg.File)
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("watcher: resolve %s: %w", cfg.Dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("watcher: watch directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("watcher: watch directory %s is not a directory", abs)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("watcher: resolve symlinks in %s: %w", abs, err)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = defaultPollInterval
	}
	if cfg.SafetyInterval <= 0 {
		cfg.SafetyInterval = DefaultSafetyInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &runner{
		cfg:  cfg,
		h:    h,
		log:  log,
		abs:  abs,
		real: real,
		file: filepath.Join(abs, cfg.File),
		em:   emitter{out: out},
	}, nil
}

// run picks the backend and runs it until ctx is done.
func (r *runner) run(ctx context.Context) error {
	if r.real != r.abs {
		// inotify follows the link: the watch lands on the target. Say so, so
		// an operator who re-points the link knows what was being watched.
		r.log.Info("watch directory is a symlink; watching its target", "dir", r.abs, "target", r.real)
	}
	if r.cfg.ForcePoll {
		r.logMode("poll")
		return r.poll(ctx, statFile(r.file), ReasonStart)
	}
	b, err := r.startInotify()
	if err != nil {
		r.log.Warn("inotify cannot be used; falling back to polling",
			"reason", err.Error(), "dir", r.real, "interval", r.cfg.PollInterval)
		r.logMode("poll")
		return r.poll(ctx, statFile(r.file), ReasonStart)
	}
	r.logMode("fsnotify")
	err = b.loop(ctx)
	var fb *fallbackError
	if !errors.As(err, &fb) {
		return err
	}
	r.log.Warn("inotify stopped working; falling back to polling",
		"reason", fb.err.Error(), "dir", r.real, "interval", r.cfg.PollInterval)
	// Events may have been lost on the way down: compare against the last
	// state that was reported, right away.
	return r.poll(ctx, b.base, "")
}

func (r *runner) logMode(mode string) {
	args := []any{"mode", mode, "dir", r.real, "file", r.cfg.File}
	if mode == "poll" {
		args = append(args, "interval", r.cfg.PollInterval)
	} else {
		args = append(args, "safety_interval", r.cfg.SafetyInterval)
	}
	r.log.Info("watching", args...)
}

func (r *runner) trace(kind, name string) {
	if r.h.trace != nil {
		r.h.trace(kind, name)
	}
}

// fallbackError ends the fsnotify loop with "use the poller from now on".
type fallbackError struct{ err error }

func (e *fallbackError) Error() string { return "watcher: inotify unusable: " + e.err.Error() }
func (e *fallbackError) Unwrap() error { return e.err }

// emitter holds the one pending Change. The backend loops put
// `em.ch() <- em.pending` in the same select as their event sources, so a
// send never blocks anything else.
type emitter struct {
	out     chan<- Change
	pending Change
	has     bool
}

// mark records that a Change is due. If one is already pending, the new fact
// is folded into it: the consumer re-reads the file anyway.
func (e *emitter) mark(reason string) {
	if e.has {
		return
	}
	e.pending = Change{Reason: reason, At: time.Now()}
	e.has = true
}

// ch is out when a Change is pending and nil (a case that never fires) otherwise.
func (e *emitter) ch() chan<- Change {
	if e.has {
		return e.out
	}
	return nil
}

func (e *emitter) sent() { e.has = false }
