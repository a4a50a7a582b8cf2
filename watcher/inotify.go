package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fsWatcher is the part of *fsnotify.Watcher the backend uses, so a test can
// put in one that fails Add (ENOSPC), drops events, or reports overflow.
type fsWatcher interface {
	Add(path string) error
	Remove(path string) error
	Close() error
	events() <-chan fsnotify.Event
	errs() <-chan error
}

type realWatcher struct{ *fsnotify.Watcher }

func (w realWatcher) events() <-chan fsnotify.Event { return w.Events }
func (w realWatcher) errs() <-chan error            { return w.Errors }

func newFSNotify() (fsWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return realWatcher{w}, nil
}

// relevantOps are the ops that can change what a read of the file returns.
// Chmod is left out: indexers, backup tools and antivirus touch attributes,
// and on Linux a delete with open fds shows up as Chmod, not Remove.
const relevantOps = fsnotify.Create | fsnotify.Write | fsnotify.Rename | fsnotify.Remove

type eventKind int

const (
	kindNoise eventKind = iota // anything else: priv_validator_state.json, temp files...
	kindFile                   // cfg.File inside the watched directory
	kindDir                    // the watched directory itself (seen from its parent, or its own self-event)
)

// inotifyBackend is the fsnotify mode. All fields are owned by loop's goroutine.
type inotifyBackend struct {
	r        *runner
	w        fsWatcher
	real     string      // resolved directory currently watched
	realBase string      // filepath.Base(real), to make the noise check one compare
	absBase  string      // filepath.Base(r.abs)
	dirFI    os.FileInfo // identity of the watched directory; nil while the watch is dead
	parents  map[string]bool
	base     fileState // last file state reported; the safety poll compares with it
}

// startInotify decides whether inotify can be used and sets up the watches.
// A non-nil error is the reason to poll instead.
func (r *runner) startInotify() (*inotifyBackend, error) {
	if t, err := r.h.fsType(r.real); err != nil {
		r.log.Debug("cannot read filesystem type; trying inotify", "dir", r.real, "err", err)
	} else if name, ok := noInotifyFS[t]; ok {
		return nil, fmt.Errorf("%s is on %s (statfs type 0x%X), which accepts watches but delivers no inotify events", r.real, name, t)
	}
	w, err := r.h.newWatcher()
	if err != nil {
		return nil, fmt.Errorf("create inotify instance: %w", err)
	}
	if err := w.Add(r.real); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watch %s: %w", r.real, err)
	}
	b := &inotifyBackend{
		r:        r,
		w:        w,
		real:     r.real,
		realBase: filepath.Base(r.real),
		absBase:  filepath.Base(r.abs),
		parents:  make(map[string]bool),
	}
	if fi, err := os.Stat(r.real); err == nil {
		b.dirFI = fi
	}
	// The parents let us see the directory go away and come back. When Dir is
	// a symlink the link's parent is watched too, so re-pointing it is seen.
	b.watchParent(filepath.Dir(r.real))
	b.watchParent(filepath.Dir(r.abs))
	return b, nil
}

func (b *inotifyBackend) watchParent(p string) {
	if b.parents[p] || p == b.real {
		return
	}
	if err := b.w.Add(p); err != nil {
		b.r.log.Warn("cannot watch parent directory; a replaced data directory will only be noticed by the safety poll",
			"parent", p, "err", err, "safety_interval", b.r.cfg.SafetyInterval)
		return
	}
	b.parents[p] = true
}

// loop runs until ctx is done (nil) or inotify becomes unusable (*fallbackError).
func (b *inotifyBackend) loop(ctx context.Context) error {
	defer b.w.Close() // stops and waits for fsnotify's reader goroutine
	r := b.r
	b.base = statFile(r.file)
	r.em.mark(ReasonStart)
	// The safety net is the only timer in this mode; its period is the
	// idle cost.
	t := time.NewTicker(r.cfg.SafetyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r.em.ch() <- r.em.pending:
			r.em.sent()
		case ev, ok := <-b.w.events():
			if !ok {
				return &fallbackError{errors.New("fsnotify closed its event channel")}
			}
			if err := b.handle(ctx, ev); err != nil {
				return err
			}
		case err, ok := <-b.w.errs():
			if !ok {
				return &fallbackError{errors.New("fsnotify closed its error channel")}
			}
			if err := b.handleErr(err); err != nil {
				return err
			}
		case <-t.C:
			if err := b.safetyCheck(); err != nil {
				return err
			}
		}
	}
}

// classify is on the path of every event, noise included: one Base (no
// allocation) and a string compare for everything that is not ours.
func (b *inotifyBackend) classify(name string) eventKind {
	base := filepath.Base(name)
	if base == b.r.cfg.File && filepath.Dir(name) == b.real {
		return kindFile
	}
	if base == b.realBase || base == b.absBase {
		if c := filepath.Clean(name); c == b.real || c == b.r.abs {
			return kindDir
		}
	}
	return kindNoise
}

func (b *inotifyBackend) handle(ctx context.Context, ev fsnotify.Event) error {
	r := b.r
	r.trace("event", ev.Name)
	kind := b.classify(ev.Name)
	if kind == kindNoise {
		// Not logged: the parent is the node's home, where operators put
		// log files, and a debug line per write to vigil's own log would
		// cause the next event, forever.
		return nil
	}
	if r.log.Enabled(ctx, slog.LevelDebug) {
		r.log.Debug("fsnotify event", "name", ev.Name, "op", ev.Op.String())
	}
	if ev.Op&relevantOps == 0 {
		return nil
	}
	switch kind {
	case kindFile:
		b.emit(ReasonEvent)
	case kindDir:
		if ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 {
			// The directory went away, so its watch is dead even if a new
			// directory is already in its place: a directory deleted and
			// recreated at once often gets the same inode number back, so
			// comparing identities cannot tell.
			b.dirFI = nil
		}
		return b.rearm(ReasonEvent)
	}
	return nil
}

func (b *inotifyBackend) handleErr(err error) error {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		// The lost events cannot be rebuilt; the consumer rescans. A lost
		// Remove of the directory may be among them, so re-add the watch
		// unconditionally (a no-op on a live one).
		b.r.log.Warn("inotify queue overflowed; rescanning", "dir", b.real)
		b.emit(ReasonOverflow)
		b.dirFI = nil
		return b.rearm(ReasonOverflow)
	}
	b.r.log.Warn("fsnotify error; rescanning", "dir", b.real, "err", err)
	return b.safetyCheck()
}

// emit marks a Change and records the file state it stands for, so that the
// safety poll only speaks up about differences no event explained.
func (b *inotifyBackend) emit(reason string) {
	b.base = statFile(b.r.file)
	b.r.em.mark(reason)
}

// safetyCheck is the slow poll: re-arm a watch that died without us seeing
// it, then compare the file with the last reported state.
func (b *inotifyBackend) safetyCheck() error {
	if err := b.rearm(ReasonSafety); err != nil {
		return err
	}
	if b.dirFI != nil {
		// Refresh the watch in case it died unseen and the new directory
		// reused the old inode number. Adding a live watch again is a no-op.
		if err := b.w.Add(b.real); err != nil {
			return &fallbackError{fmt.Errorf("refresh watch on %s: %w", b.real, err)}
		}
	}
	st := statFile(b.r.file)
	if !st.differs(b.base) {
		return nil
	}
	b.r.log.Info("safety poll saw a change that fsnotify did not report", "file", b.r.file)
	b.base = st
	b.r.em.mark(ReasonSafety)
	return nil
}

// rearm makes sure the watch is on the directory that Dir names now. inotify
// drops a watch whose directory is deleted or moved away (snapshot restore:
// mv data data.old && mv new data), and a re-pointed symlink leaves the watch
// on the old target. A failing Add here means inotify is unusable: the caller
// falls back to polling. why is the Reason to report if the directory is
// found gone and the file with it.
func (b *inotifyBackend) rearm(why string) error {
	r := b.r
	real, err := filepath.EvalSymlinks(r.abs)
	if err != nil {
		b.dirGone(why)
		return nil
	}
	if real != b.real {
		b.retarget(real)
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.IsDir() {
		b.dirGone(why)
		return nil
	}
	if b.dirFI != nil && os.SameFile(fi, b.dirFI) {
		return nil
	}
	if err := b.w.Add(real); err != nil {
		return &fallbackError{fmt.Errorf("re-arm watch on %s: %w", real, err)}
	}
	// Stat after Add: if the directory was swapped again in between, its
	// parent reports that and we come back here.
	if fi2, err := os.Stat(real); err == nil {
		fi = fi2
	}
	b.dirFI = fi
	r.log.Info("watch directory replaced; re-armed the watch", "dir", real)
	b.emit(ReasonRearm)
	return nil
}

// dirGone records that the directory is missing. The file went with it, so
// report that (once) if it was there.
func (b *inotifyBackend) dirGone(why string) {
	if b.dirFI != nil {
		b.r.log.Info("watch directory disappeared; waiting for it to come back", "dir", b.r.abs)
		b.dirFI = nil
	}
	if st := statFile(b.r.file); st.differs(b.base) {
		b.base = st
		b.r.em.mark(why)
	}
}

// retarget moves the watches after the symlink Dir was pointed elsewhere.
func (b *inotifyBackend) retarget(real string) {
	r := b.r
	r.log.Info("watch directory now resolves to a new target", "dir", r.abs, "old_target", b.real, "target", real)
	// The old target may be gone already; a failed Remove is expected then.
	if err := b.w.Remove(b.real); err != nil {
		r.log.Debug("remove old watch", "dir", b.real, "err", err)
	}
	oldParent := filepath.Dir(b.real)
	if oldParent != filepath.Dir(r.abs) && oldParent != filepath.Dir(real) && b.parents[oldParent] {
		if err := b.w.Remove(oldParent); err != nil {
			r.log.Debug("remove old parent watch", "dir", oldParent, "err", err)
		}
		delete(b.parents, oldParent)
	}
	b.real = real
	b.realBase = filepath.Base(real)
	b.dirFI = nil
	b.watchParent(filepath.Dir(real))
}
