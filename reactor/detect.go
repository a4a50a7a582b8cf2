package reactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/plan"
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
			if err == nil && t == nil {
				// Nothing is pending any more (applied, or the plan vanished:
				// removed, or data/ replaced by a snapshot restore). Forget
				// what was handed over, so the same plan written again is a
				// new upgrade; prepare drops the withdrawn one itself.
				emitted = nil
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

// check applies Decide and returns the upgrade to apply, nil when there is
// nothing to do, or an error when it cannot be decided now. Each problem is
// logged once.
func (r *reactor) check(said *string) (*target, error) {
	once := func(level slog.Level, msg string, args ...any) {
		key := msg + slog.Group("", args...).String()
		if key != *said {
			*said = key
			r.log.Log(context.Background(), level, msg, args...)
		}
	}
	file := r.l.UpgradeInfoFile()
	d := home.Decide(r.l)
	switch d.State {
	case home.NoPlan, home.Applied:
		*said = ""
		return nil, nil
	case home.Unreadable:
		once(slog.LevelWarn, "cannot read upgrade-info.json", "path", file, "err", d.Err)
	case home.Invalid:
		level := slog.LevelWarn
		if errors.Is(d.Err, plan.ErrEmpty) {
			level = slog.LevelInfo // x/upgrade truncates before it writes: routine, not alarming
		}
		once(level, "invalid upgrade-info.json", "path", file, "err", d.Err)
	case home.Refused:
		once(slog.LevelError, "refusing upgrade", "plan", d.Plan, "err", d.Err)
	case home.Blocked:
		switch {
		case d.Installed.MarkerErr != nil:
			once(slog.LevelError, "cannot read the installed upgrade's marker; not applying upgrade-info.json", "plan", d.Plan, "dir", d.Installed.Dir, "err", d.Installed.MarkerErr)
		case d.Installed.Dir != "":
			once(slog.LevelError, "not applying upgrade-info.json", "plan", d.Plan, "dir", d.Installed.Dir, "err", d.Err)
		default:
			once(slog.LevelError, "cannot resolve current", "err", d.Err)
		}
	case home.Older:
		once(slog.LevelWarn, "ignoring upgrade-info.json older than the installed upgrade", "plan", d.Plan, "installed", d.Installed.Dir, "err", d.Err)
		return nil, nil
	case home.Pending:
		if slices.Contains(r.cfg.SkipHeights, d.Plan.Height) {
			// The chain agreed to skip it (the node does not halt there
			// either): the installed version runs on.
			once(slog.LevelWarn, "not applying upgrade-info.json: its height is in "+plan.SkipFlag+"; the node runs on", "plan", d.Plan)
			return nil, nil
		}
		*said = ""
		return &target{plan: d.Plan, dir: d.Dir, seen: time.Now()}, nil
	}
	return nil, d.Err
}

// confirm re-reads upgrade-info.json and returns an error unless it still
// names t as the pending upgrade. prepare calls it before each attempt and
// the swap before the stop, before each step and right before the switch, so
// a plan that vanished (removed, or data/ replaced by a state-sync restore)
// or was replaced is never applied from memory.
func (r *reactor) confirm(t target) error {
	d := home.Decide(r.l)
	switch {
	case d.State == home.Pending && d.Dir == t.dir && d.Plan.Height == t.plan.Height:
		return nil
	case d.State == home.NoPlan:
		return fmt.Errorf("%w: %s is gone", errWithdrawn, r.l.UpgradeInfoFile())
	case d.Err != nil:
		return fmt.Errorf("%w: %s is %s now: %v", errWithdrawn, r.l.UpgradeInfoFile(), d.State, d.Err)
	case d.State == home.Pending:
		return fmt.Errorf("%w: %s names %s at height %d now", errWithdrawn, r.l.UpgradeInfoFile(), d.Plan.Name, d.Plan.Height)
	}
	return fmt.Errorf("%w: %s is %s now", errWithdrawn, r.l.UpgradeInfoFile(), d.State)
}

// errWithdrawn marks an upgrade whose plan no longer stands.
var errWithdrawn = errors.New("upgrade withdrawn")

func (r *reactor) installed(t target) bool {
	in, err := r.l.Installed()
	return err == nil && in.Upgrade == t.dir
}
