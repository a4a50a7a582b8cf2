package backup

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/plan"
)

// collisionAttempts is how many seconds of names are tried past a taken one.
const collisionAttempts = 60

// Policy is the backup taken before each upgrade: a snapshot of data/ into
// Dest, once the node has stopped. Its methods are the reactor's Backuper.
type Policy struct {
	Layout        home.Layout
	Dest          string   // the backup directory
	Strategy      Strategy // asked for; Take falls back as it must
	Keep          int      // complete backups kept after an upgrade; 0 = all
	SkipIfNoSpace bool     // no room: go on without a backup (loudly) instead of waiting
	Log           *slog.Logger
}

// Check runs in prepare, while the node still runs: is there room for the
// backup? take=false means the upgrade goes on without one.
func (b Policy) Check(_ context.Context, p plan.Plan) (bool, error) {
	// A resumed upgrade whose halt is already backed up needs no room for a
	// second copy: asking for it would keep a chain halted on a disk that
	// held exactly one. Backup checks again that the data still matches.
	if dir, err := b.Layout.DirName(p.Name); err == nil {
		if f, ok := b.reusable(p, dir); ok {
			b.Log.Info("backup planned: this halt is already backed up, no new copy needed while the data matches it", "path", f.Path)
			return true, nil
		}
	}
	sp, err := Estimate(b.Layout.DataDir(), b.Dest, b.Strategy, b.Log)
	if err != nil {
		return false, fmt.Errorf("estimate the backup: %w", err)
	}
	b.Log.Info("backup planned", "strategy", sp.Strategy, "files", sp.Files, "bytes", sp.Bytes, "need", sp.Need, "free", sp.Free, "dir", sp.Dir)
	if err := sp.Err(); err != nil {
		if b.SkipIfNoSpace {
			b.Log.Error("NO BACKUP will be taken for this upgrade: not enough space and "+config.EnvBackupIfNoSpace+"=skip", "plan", p, "err", err)
			return false, nil
		}
		return false, fmt.Errorf("%w; free space or set %s/%s, or %s=skip", err, config.EnvBackupMode, config.EnvBackupDir, config.EnvBackupIfNoSpace)
	}
	return true, nil
}

// Backup snapshots data/ for the upgrade p (upgrades/<dir>); the node has exited.
func (b Policy) Backup(ctx context.Context, p plan.Plan, dir string) (Result, error) {
	// Taken before the switch: `current` still names the version that wrote this data.
	cur, err := os.Readlink(b.Layout.Current())
	if err != nil {
		return Result{}, fmt.Errorf("read %s: %w", b.Layout.Current(), err)
	}
	if res, ok := b.reuse(p, dir); ok {
		return res, nil
	}
	// A second backup of one upgrade within a second (restore, then run
	// again at once) must not collide with the first.
	at := time.Now()
	for range collisionAttempts {
		if _, err := os.Lstat(filepath.Join(b.Dest, home.BackupName(dir, p.Height, at))); err != nil {
			break
		}
		at = at.Add(time.Second)
	}
	return Take(ctx, b.Layout.DataDir(), b.Dest, home.BackupName(dir, p.Height, at), Options{
		Strategy: b.Strategy, Logger: b.Log, Upgrade: p.Name, Height: p.Height, Current: cur,
	})
}

// reuse finds a complete backup of this very halt taken by an earlier vigil
// that was killed before the switch (in a slow pre-upgrade hook, say): the
// node never ran since (no binary runs while an upgrade is pending), so a
// second copy would only cost the time and the space of one more. It is
// reused only if data/ still matches it file for file, which a restore
// followed by a run (the node's sign state kept, a file touched) does not.
func (b Policy) reuse(p plan.Plan, dir string) (Result, bool) {
	start := time.Now()
	f, ok := b.reusable(p, dir)
	if !ok {
		return Result{}, false
	}
	b.Log.Info("reusing the backup of this halt taken by an earlier run: the data has not changed since", "path", f.Path, "upgrade", f.Upgrade, "height", f.Height)
	return Result{Path: f.Path, Strategy: f.Strategy, Files: f.Files, Bytes: f.Bytes, Took: time.Since(start)}, true
}

// reusable returns the newest complete backup of this halt that data/ still
// matches.
func (b Policy) reusable(p plan.Plan, dir string) (Info, bool) {
	found, err := OfHalt(b.Dest, b.Layout.DataDir(), dir, p.Name, p.Height)
	if err != nil {
		b.Log.Warn("cannot look for an earlier backup of this halt; taking a new one", "dir", b.Dest, "err", err)
		return Info{}, false
	}
	for i := len(found) - 1; i >= 0; i-- {
		f := found[i]
		same, why, err := SameData(b.Layout.DataDir(), f.Path)
		switch {
		case err != nil:
			b.Log.Warn("cannot compare the data with an earlier backup of this halt; taking a new one", "path", f.Path, "err", err)
			return Info{}, false
		case same:
			return f, true
		}
		b.Log.Info("an earlier backup of this halt no longer matches the data; taking a new one", "path", f.Path, "why", why)
	}
	return Info{}, false
}

// Retain runs after a successful upgrade: the oldest backups beyond Keep go.
func (b Policy) Retain(context.Context) error {
	_, err := Retain(b.Dest, b.Layout.DataDir(), b.Keep, b.Log)
	return err
}

// HumanBytes is a size for a person: 1.5 GiB, 12.0 KiB, 512 B.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
