package home

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/internal/atomicfile"
	"github.com/vigilhq/vigil/plan"
)

// Upgrades scheduled at a height without governance live in
// data/upgrade-info.json.batch (plan.ParseBatch). The CLI adds to it while a
// running vigil removes the plan it promotes to data/upgrade-info.json, so
// every change is a read-modify-write under BatchLock, and every write is
// atomic and fsynced: a schedule the operator was told about must survive a
// power loss, and a reader never sees half an array.

// BatchFile is data/upgrade-info.json.batch.
func (l Layout) BatchFile() string { return filepath.Join(l.DataDir(), plan.BatchFileName) }

// Scheduled returns the scheduled plans, sorted by height.
func (l Layout) Scheduled() ([]plan.Plan, error) { return plan.ReadBatch(l.BatchFile()) }

// Schedule adds plans to the batch file. A plan whose name is already
// scheduled replaces it only with force (else error "upgrade <name> is
// already scheduled at height <h>"); two plans at one height are an error
// naming both. Written atomically and durably, mode 0600.
func (l Layout) Schedule(ps []plan.Plan, force bool) error {
	return l.withBatchLock(func() error {
		old, err := l.Scheduled()
		if err != nil {
			return err
		}
		merged, err := l.MergeSchedule(old, ps, force)
		if err != nil {
			return err
		}
		return l.writeBatch(merged)
	})
}

// MergeSchedule is what Schedule writes when old is scheduled: old with ps
// added, sorted by height, or why ps cannot be added. Names are compared by
// the directory they map to (DirName), since that is the binary the upgrade
// runs: with recase on, V2 and v2 are the same upgrade. It only computes, so
// a caller can check a whole batch before installing anything.
func (l Layout) MergeSchedule(old, ps []plan.Plan, force bool) ([]plan.Plan, error) {
	key := func(p plan.Plan) string {
		if d, err := l.DirName(p.Name); err == nil {
			return d
		}
		return p.Name
	}
	added := map[string]plan.Plan{}
	for _, p := range ps {
		// Parse is the one validation of a plan; a round trip applies it.
		if _, err := plan.Parse(p.Marshal()); err != nil {
			return nil, fmt.Errorf("upgrade %q at height %d: %w", p.Name, p.Height, err)
		}
		if _, err := l.DirName(p.Name); err != nil {
			return nil, err
		}
		if q, ok := added[key(p)]; ok {
			return nil, fmt.Errorf("upgrade %s is given twice (heights %d and %d)", p.Name, q.Height, p.Height)
		}
		added[key(p)] = p
	}
	var out []plan.Plan
	for _, o := range old {
		if p, ok := added[key(o)]; ok {
			if !force {
				return nil, fmt.Errorf("upgrade %s is already scheduled at height %d (use --force to reschedule it at height %d)", o.Name, o.Height, p.Height)
			}
			continue
		}
		out = append(out, o)
	}
	out = append(out, ps...)
	slices.SortStableFunc(out, func(a, b plan.Plan) int { return cmpHeight(a.Height, b.Height) })
	for i := 1; i < len(out); i++ {
		if a, b := out[i-1], out[i]; a.Height == b.Height {
			return nil, fmt.Errorf("upgrades %s and %s cannot both be scheduled at height %d: a node halts once per height", a.Name, b.Name, a.Height)
		}
	}
	return out, nil
}

func cmpHeight(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Unschedule removes the plan with p's name and height (no error when
// absent); the file is removed when the batch becomes empty, so a home
// without schedules looks as it did before.
func (l Layout) Unschedule(p plan.Plan) error {
	return l.withBatchLock(func() error {
		old, err := l.Scheduled()
		if err != nil {
			return err
		}
		rest := slices.DeleteFunc(slices.Clone(old), func(o plan.Plan) bool { return o.Name == p.Name && o.Height == p.Height })
		switch {
		case len(rest) == len(old):
			return nil
		case len(rest) > 0:
			return l.writeBatch(rest)
		}
		if err := os.Remove(l.BatchFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", l.BatchFile(), err)
		}
		return atomicfile.SyncDir(l.DataDir())
	})
}

func (l Layout) writeBatch(ps []plan.Plan) error {
	if err := atomicfile.WriteFile(l.BatchFile(), plan.MarshalBatch(ps), 0o600); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	return nil
}

// withBatchLock runs f holding BatchLock. The lock waits rather than fails:
// holders keep it only for one small read-modify-write, and the kernel drops
// it when a holder dies, so there is never a stale lock to wait for.
func (l Layout) withBatchLock(f func() error) error {
	path := l.BatchLock()
	// O_CLOEXEC (Go's default): a node started meanwhile must not inherit it.
	lf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open batch lock %s: %w", path, err)
	}
	defer lf.Close() // closing the descriptor releases the flock
	for {
		err = unix.Flock(int(lf.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	return f()
}
