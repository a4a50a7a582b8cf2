package reactor

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/vigilhq/vigil/reactor/event"
	"github.com/vigilhq/vigil/reactor/plan"
	"github.com/vigilhq/vigil/watcher"
)

// detect re-reads upgrade-info.json on every Change and query and emits each
// new upgrade once. It closes out when it returns.
func (r *reactor) detect(ctx context.Context, changes <-chan watcher.Change, queries <-chan query, out chan<- target) error {
	defer close(out)
	var (
		emitted *target       // last upgrade handed to prepare
		next    target        // upgrade waiting to be handed over
		send    chan<- target // out while next is waiting, else nil
		said    string        // last problem logged, so each is logged once
	)
	offer := func(t *target) {
		switch {
		case t == nil:
			send = nil
		case emitted != nil && emitted.same(*t):
			send = nil
		default:
			next, send = *t, out
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			r.log.Debug("upgrade-info.json may have changed", "reason", c.Reason)
			t, err := r.check(&said)
			if err == nil {
				offer(t)
			}
		case q := <-queries:
			r.log.Debug("checking for a pending upgrade", "reason", q.reason)
			t, err := r.check(&said)
			if err == nil {
				offer(t)
			} else if emitted != nil && !r.installed(*emitted) {
				// The file is unreadable right now, but an upgrade we already
				// detected has not been applied: it is still pending.
				t = emitted
			}
			q.reply <- t
		case send <- next:
			send = nil
			e := next
			emitted = &e
			r.emit(event.Event{Kind: event.UpgradeDetected, Plan: e.plan})
		}
	}
}

// check reads upgrade-info.json and returns the upgrade it asks for, nil when
// there is nothing to do, or an error when it cannot be decided now.
func (r *reactor) check(said *string) (*target, error) {
	once := func(level slog.Level, msg string, args ...any) {
		key := msg + slog.Group("", args...).String()
		if key != *said {
			*said = key
			r.log.Log(context.Background(), level, msg, args...)
		}
	}
	file := r.l.UpgradeInfoFile()
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		*said = ""
		return nil, nil
	}
	if err != nil {
		once(slog.LevelWarn, "cannot read upgrade-info.json", "path", file, "err", err)
		return nil, err
	}
	p, err := plan.Parse(b)
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, plan.ErrEmpty) {
			level = slog.LevelInfo // x/upgrade truncates before it writes: routine, not alarming
		}
		once(level, "invalid upgrade-info.json", "path", file, "err", err)
		return nil, err
	}
	dir, err := r.l.DirName(p.Name)
	if err != nil {
		once(slog.LevelError, "refusing upgrade", "plan", p, "err", err)
		return nil, err
	}
	in, err := r.l.Installed()
	if err != nil {
		once(slog.LevelError, "cannot resolve current", "err", err)
		return nil, err
	}
	if in.Upgrade == dir {
		*said = ""
		return nil, nil
	}
	if in.MarkerErr != nil {
		// Without the installed height, an older plan would look new and
		// switch the node back: refuse to decide until an operator looks.
		once(slog.LevelError, "cannot read the installed upgrade's marker; not applying upgrade-info.json", "plan", p, "dir", in.Dir, "err", in.MarkerErr)
		return nil, in.MarkerErr
	}
	if in.Marker != nil && p.Height <= in.Marker.Height {
		once(slog.LevelWarn, "ignoring upgrade-info.json older than the installed upgrade", "plan", p, "installed", *in.Marker)
		return nil, nil
	}
	*said = ""
	return &target{plan: p, dir: dir, seen: time.Now()}, nil
}

func (r *reactor) installed(t target) bool {
	in, err := r.l.Installed()
	return err == nil && in.Upgrade == t.dir
}
