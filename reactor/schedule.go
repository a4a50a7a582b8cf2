package reactor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/vigilhq/vigil/internal/atomicfile"
	"github.com/vigilhq/vigil/plan"
	"github.com/vigilhq/vigil/process"
	"github.com/vigilhq/vigil/watcher"
)

// Upgrades scheduled at a height (data/upgrade-info.json.batch) are made
// exact with the SDK's own --halt-height: the old binary is started with the
// lowest scheduled height, commits that block and stops. With the node
// stopped, the height its app committed decides: equal to the plan's, the
// plan is due and is written to upgrade-info.json, where the governance path
// applies it (stop, backup, hooks, switch, start); lower, the node stopped
// for another reason and starts again with the same halt; higher, the old
// binary already ran past the plan, and vigil refuses to guess.

// errDue says the node was not started: a scheduled upgrade is due and now
// pending in upgrade-info.json.
var errDue = errors.New("a scheduled upgrade is due")

// halt is the --halt-height a node was started with.
type halt struct {
	height int64      // 0 = none
	plan   *plan.Plan // the scheduled plan it is for; nil when it is the operator's own
}

// gate decides, with the node stopped, how it may start: the halt to start
// it with, or the scheduled plan that is due instead.
func (r *reactor) gate() (h halt, due *plan.Plan, err error) {
	h = halt{height: r.cfg.HaltHeight}
	next, err := r.nextScheduled()
	if err != nil || next == nil {
		return h, nil, err
	}
	if r.cfg.Committed == nil {
		return h, nil, fmt.Errorf("upgrade %s is scheduled at height %d, but vigil cannot read the node's height here", next.Name, next.Height)
	}
	c, err := r.cfg.Committed()
	if err != nil {
		return h, nil, fmt.Errorf("upgrade %s is scheduled at height %d; the node's committed height is needed to start it safely: %w", next.Name, next.Height, err)
	}
	switch {
	case c == next.Height:
		return h, next, nil
	case c > next.Height:
		return h, nil, fmt.Errorf("upgrade %s is scheduled at height %d, but the node has already committed height %d: refusing to run the old binary further; remove the plan from %s or install the right binary by hand", next.Name, next.Height, c, r.l.BatchFile())
	}
	return haltFor(r.cfg.HaltHeight, next), nil, nil
}

// haltFor is the halt a start needs: the next scheduled plan's height,
// unless the operator's own halt comes first. A plan at the operator's
// height is the plan's: the node halts there either way, and the plan is
// applied.
func haltFor(operator int64, next *plan.Plan) halt {
	if next != nil && (operator == 0 || next.Height <= operator) {
		return halt{height: next.Height, plan: next}
	}
	return halt{height: operator}
}

// nextScheduled is the lowest scheduled plan that is not already pending in
// upgrade-info.json. A plan found there was promoted by an earlier run that
// ended before it could take it out of the batch: it is taken out now.
func (r *reactor) nextScheduled() (*plan.Plan, error) {
	ps, err := r.l.Scheduled()
	if err != nil {
		return nil, err
	}
	for len(ps) > 0 {
		p := ps[0]
		if cur, err := plan.Load(r.l.UpgradeInfoFile()); err != nil || cur.Name != p.Name || cur.Height != p.Height {
			return &p, nil
		}
		if err := r.l.Unschedule(p); err != nil {
			r.log.Warn("could not remove an applied plan from the schedule", "plan", p, "err", err)
		}
		ps = ps[1:]
	}
	return nil, nil
}

// promote hands a due plan to the governance path: written durably to
// upgrade-info.json first, then taken out of the batch, so that a crash in
// between leaves it pending (and nextScheduled finishes the move).
func (r *reactor) promote(p plan.Plan) error {
	r.log.Info("scheduled upgrade due: the node committed its height", "plan", p)
	if err := atomicfile.WriteFile(r.l.UpgradeInfoFile(), p.Marshal(), 0o600); err != nil {
		return fmt.Errorf("writing the due upgrade %s to %s: %w", p.Name, r.l.UpgradeInfoFile(), err)
	}
	if err := r.l.Unschedule(p); err != nil {
		r.log.Warn("could not remove the due plan from the schedule; the next start does", "plan", p, "err", err)
	}
	return nil
}

// launch starts the node from `current` with the halt the schedule asks for
// (r.halt records it), unless a scheduled upgrade is due: then it is promoted
// and errDue returned, the node not started.
func (r *reactor) launch() (*process.Child, error) {
	h, due, err := r.gate()
	if err != nil {
		return nil, err
	}
	if due != nil {
		if err := r.promote(*due); err != nil {
			return nil, err
		}
		return nil, errDue
	}
	r.halt = h
	return r.spawn()
}

// nodeArgs are the node's arguments for a start with r.halt: the operator's
// own unless a scheduled plan comes first. The flag is appended, so it wins
// over the operator's (the last one does).
func (r *reactor) nodeArgs() []string {
	if r.halt.plan == nil {
		return r.cfg.Args
	}
	return append(slices.Clip(r.cfg.Args), plan.HaltFlag+"="+strconv.FormatInt(r.halt.height, 10))
}

// wantedHalt is the halt the schedule asks for now, read while the node runs
// (its height cannot be read then: the node holds its database).
func (r *reactor) wantedHalt() (int64, error) {
	next, err := r.nextScheduled()
	return haltFor(r.cfg.HaltHeight, next).height, err
}

// rescheduled handles a change of the batch file while the node runs: when
// the halt it runs with is no longer the one the schedule asks for, the node
// is stopped gracefully and started again (exited sees s.reschedule).
func (s *supervision) rescheduled(c watcher.Change) {
	r := s.r
	if s.child == nil || s.reschedule || s.st.stopping() {
		return // the next start, if any, reads the schedule
	}
	want, err := r.wantedHalt()
	if err != nil {
		r.log.Error("scheduled upgrades unreadable; the node keeps running as it was started", "file", r.l.BatchFile(), "err", err, "halt_height", r.halt.height)
		return
	}
	if want == r.halt.height {
		r.log.Debug("schedule read; the node's halt height stands", "reason", c.Reason, "halt_height", want)
		return
	}
	if lower := want > 0 && (r.halt.height == 0 || want < r.halt.height); lower {
		if latest, ok := r.latestBlock(); ok && want+1 < latest {
			// Restarted, the node would be refused (gate): a validator
			// down for a plan it cannot follow any more.
			r.log.Error("a scheduled upgrade is below the running node's height: the node is not restarted for it; remove it from the schedule",
				"halt_height", want, "latest_block", latest, "file", r.l.BatchFile())
			return
		}
	}
	r.log.Info("schedule changed: restarting the node with its new halt height", "halt_height", want, "was", r.halt.height)
	s.reschedule = true
	s.st.terminate()
}

// halted is called when the node ended on its own after being started with
// a halt height. It reports whether that was the operator's halt (a normal
// stop), or promotes a scheduled plan that is due.
func (s *supervision) halted() (operator bool, err error) {
	r := s.r
	if r.halt.height == 0 || r.cfg.Committed == nil {
		return false, nil
	}
	c, err := r.cfg.Committed()
	if err != nil {
		r.log.Warn("could not read the node's committed height after it ended", "err", err)
		return false, nil
	}
	if c < r.halt.height {
		return false, nil // stopped before its halt: a crash or a stop of its own
	}
	if r.halt.plan == nil {
		r.log.Info("node halted at the operator's --halt-height", "height", c)
		return true, nil
	}
	_, due, err := r.gate()
	if err != nil {
		return false, err
	}
	if due != nil {
		return false, r.promote(*due)
	}
	return false, nil
}

// launch starts the node, or, when a scheduled upgrade is due instead, makes
// sure detect has it: the swap applies it once its binary is ready.
func (s *supervision) launch(ctx context.Context) error {
	for { // each turn takes a plan out of the schedule, so it ends
		c, err := s.r.launch()
		if errors.Is(err, errDue) {
			if pending, err := s.awaitDue(ctx); err != nil || pending {
				return err
			}
			continue // not to be applied (a skipped height): the schedule without it decides
		}
		if err != nil {
			return err
		}
		s.setChild(c)
		return nil
	}
}

// awaitDue follows a promotion: detect is asked for the upgrade now in
// upgrade-info.json, which the swap applies once its binary is ready.
func (s *supervision) awaitDue(ctx context.Context) (pending bool, err error) {
	t, err := s.r.ask(ctx, s.queries, "scheduled upgrade due")
	return t != nil, err
}

// latestBlock asks the running node for its latest block, briefly: it is
// asked from supervise's goroutine.
func (r *reactor) latestBlock() (int64, bool) {
	if r.cfg.Chain == nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h, err := r.cfg.Chain.LatestHeight(ctx)
	if err != nil {
		r.log.Debug("the node's latest block is unknown", "err", err)
	}
	return h, err == nil
}
