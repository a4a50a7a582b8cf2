package backup

// Restoring a backup taken at an upgrade halt: the backup holds the data as
// the node left it at the halt, upgrade-info.json included, and RestoreHome
// points `current` back at the version that wrote it. It does NOT remove
// upgrade-info.json: the chain cannot move past that height on the old binary
// anyway (it halts there again), so what an operator restoring almost always
// wants is to roll back a failed or bad upgrade and run it again, perhaps
// with a fixed binary in upgrades/<name>/bin. The next `vigil run` therefore
// applies the upgrade again at once (new backup, pre-upgrade, switch), without
// starting the old binary. An operator who wants to stay on the old version
// (say the chain agreed to skip the upgrade with --unsafe-skip-upgrades)
// deletes data/upgrade-info.json before starting; HomeRestore.Pending lets
// the caller say both.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/runlock"
	"github.com/vigilhq/vigil/plan"
)

// HomeRestore is what RestoreHome did, as far as it got: the caller prints
// it even when an error stopped it half way.
type HomeRestore struct {
	Backup   *Info    // the backup found by name; nil: none
	Restored Restored // set once the data is restored (Restored.Data != "")
	Relinked bool     // `current` now points at Backup.Current
	// Pending is data/upgrade-info.json after the restore (the backup was
	// taken at its halt), nil when there is none; PendingBin is its binary.
	Pending    *plan.Plan
	PendingBin string
}

// RestoreHome restores the backup called name from dir into l's data/ and
// points `current` back at the version that wrote it. The node must be
// stopped: the run lock is held for the whole restore (a `vigil run` cannot
// start meanwhile), and a database LOCK held by any process refuses it.
func RestoreHome(ctx context.Context, l home.Layout, dir, name string, log *slog.Logger) (HomeRestore, error) {
	var r HomeRestore
	lock, err := runlock.Acquire(l.RunLock())
	if errors.Is(err, runlock.ErrHeld) {
		return r, fmt.Errorf("vigil is running on %s (%w): stop it, and so the node, before restoring", l.Home, err)
	}
	if err != nil {
		return r, err
	}
	defer lock.Release()
	held, err := NodeLocks(l.DataDir())
	if err != nil {
		return r, err
	}
	if len(held) > 0 {
		return r, fmt.Errorf("the node is running without vigil: its databases are locked (%s); stop it before restoring", strings.Join(held, ", "))
	}
	if r.Backup, err = find(dir, name); err != nil {
		return r, err
	}
	res, err := Restore(ctx, r.Backup.Path, l.DataDir(), log)
	if err != nil {
		return r, fmt.Errorf("restore %s: %w", r.Backup.Name, err)
	}
	r.Restored = res
	if err := pointCurrent(l, r.Backup.Current); err != nil {
		return r, fmt.Errorf("data restored, but %s was not changed: %w; point it at %q by hand", l.Current(), err, r.Backup.Current)
	}
	r.Relinked = r.Backup.Current != ""
	if p, err := plan.Load(l.UpgradeInfoFile()); err == nil {
		r.Pending, r.PendingBin = &p, l.Bin(upgradeDirFor(l, p.Name))
	}
	return r, nil
}

// find returns the backup called name, or an error that lists the others.
func find(dir, name string) (*Info, error) {
	list, err := List(dir)
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", dir, err)
	}
	var names []string
	for i, b := range list {
		if b.Name == name {
			return &list[i], nil
		}
		names = append(names, b.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no backup named %q: there are no backups in %s", name, dir)
	}
	return nil, fmt.Errorf("no backup named %q in %s; there are:\n  %s", name, dir, strings.Join(names, "\n  "))
}

// NodeLocks lists the database LOCK files under data/ that a process holds:
// the node runs (without vigil, or vigil's lock would have said so).
func NodeLocks(dataDir string) ([]string, error) {
	locks, err := filepath.Glob(filepath.Join(dataDir, "*", "LOCK"))
	if err != nil {
		return nil, err
	}
	// LevelDB and friends keep one in each database directory
	// (data/*/LOCK); data/LOCK covers a database opened at data/ itself.
	locks = append(locks, filepath.Join(dataDir, "LOCK"))
	var held []string
	for _, p := range locks {
		h, err := runlock.Held(p)
		if err != nil {
			return nil, err
		}
		if h {
			held = append(held, p)
		}
	}
	return held, nil
}

func upgradeDirFor(l home.Layout, name string) string {
	dir, err := l.DirName(name)
	if err != nil {
		return l.UpgradesDir()
	}
	return l.UpgradeDir(dir)
}

// pointCurrent points `current` at target, as recorded in a manifest
// ("genesis" or "upgrades/<dir>"); "" leaves it alone.
func pointCurrent(l home.Layout, target string) error {
	switch {
	case target == "":
		return nil
	case target == "genesis":
		if _, err := os.Stat(l.GenesisDir()); err != nil {
			return err
		}
		return l.SwitchGenesis()
	case strings.HasPrefix(target, "upgrades/") && !strings.Contains(strings.TrimPrefix(target, "upgrades/"), "/"):
		dir := strings.TrimPrefix(target, "upgrades/")
		if _, err := os.Stat(l.UpgradeDir(dir)); err != nil {
			return err
		}
		return l.Switch(dir)
	}
	return fmt.Errorf("unexpected link target %q in the backup's manifest", target)
}
