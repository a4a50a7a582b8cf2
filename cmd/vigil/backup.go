package main

// Backups: the reactor's Backuper (taken before each upgrade), the run lock
// with the start-up cleaning of partial backups, and `vigil backup list|restore`.
//
// Restoring a backup taken at an upgrade halt: the backup holds the data as
// the node left it at the halt, upgrade-info.json included, and `restore`
// points `current` back at the version that wrote it. It does NOT remove
// upgrade-info.json: the chain cannot move past that height on the old binary
// anyway (it halts there again), so what an operator restoring almost always
// wants is to roll back a failed or bad upgrade and run it again, perhaps
// with a fixed binary in upgrades/<name>/bin. The next `vigil run` therefore
// applies the upgrade again at once (new backup, pre-upgrade, switch), without
// starting the old binary. An operator who wants to stay on the old version
// (say the chain agreed to skip the upgrade with --unsafe-skip-upgrades)
// deletes data/upgrade-info.json before starting; restore prints both paths.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/runlock"
	"github.com/vigilhq/vigil/reactor"
	"github.com/vigilhq/vigil/reactor/layout"
	"github.com/vigilhq/vigil/reactor/plan"
)

// dataBackup is the reactor's Backuper: a snapshot of data/ before each upgrade.
type dataBackup struct {
	l             layout.Layout
	dest          string
	strategy      backup.Strategy
	keep          int
	skipIfNoSpace bool
	log           *slog.Logger
}

func newDataBackup(cfg config.Config, log *slog.Logger) dataBackup {
	return dataBackup{
		l:             cfg.Layout(),
		dest:          cfg.BackupDir,
		strategy:      backup.Strategy(cfg.BackupMode),
		keep:          cfg.BackupKeep,
		skipIfNoSpace: cfg.BackupIfNoSpace == "skip",
		log:           log.With("component", "backup"),
	}
}

func (b dataBackup) Check(_ context.Context, p plan.Plan) (bool, error) {
	// A resumed upgrade whose halt is already backed up needs no room for a
	// second copy: asking for it would keep a chain halted on a disk that
	// held exactly one. Backup checks again that the data still matches.
	if dir, err := b.l.DirName(p.Name); err == nil {
		if f, ok := b.reusable(p, dir); ok {
			b.log.Info("backup planned: this halt is already backed up, no new copy needed while the data matches it", "path", f.Path)
			return true, nil
		}
	}
	sp, err := backup.Estimate(b.l.DataDir(), b.dest, b.strategy, b.log)
	if err != nil {
		return false, fmt.Errorf("estimate the backup: %w", err)
	}
	b.log.Info("backup planned", "strategy", sp.Strategy, "files", sp.Files, "bytes", sp.Bytes, "need", sp.Need, "free", sp.Free, "dir", sp.Dir)
	if err := sp.Err(); err != nil {
		if b.skipIfNoSpace {
			b.log.Error("NO BACKUP will be taken for this upgrade: not enough space and "+config.EnvBackupIfNoSpace+"=skip", "plan", p, "err", err)
			return false, nil
		}
		return false, fmt.Errorf("%w; free space or set %s/%s, or %s=skip", err, config.EnvBackupMode, config.EnvBackupDir, config.EnvBackupIfNoSpace)
	}
	return true, nil
}

func (b dataBackup) Backup(ctx context.Context, p plan.Plan, dir string) (backup.Result, error) {
	// Taken before the switch: `current` still names the version that wrote this data.
	cur, err := os.Readlink(b.l.Current())
	if err != nil {
		return backup.Result{}, fmt.Errorf("read %s: %w", b.l.Current(), err)
	}
	if res, ok := b.reuse(p, dir); ok {
		return res, nil
	}
	// A second backup of one upgrade within a second (restore, then run
	// again at once) must not collide with the first.
	at := time.Now()
	for range 60 {
		if _, err := os.Lstat(filepath.Join(b.dest, backup.Name(dir, p.Height, at))); err != nil {
			break
		}
		at = at.Add(time.Second)
	}
	return backup.Take(ctx, b.l.DataDir(), b.dest, backup.Name(dir, p.Height, at), backup.Options{
		Strategy: b.strategy, Logger: b.log, Upgrade: p.Name, Height: p.Height, Current: cur,
	})
}

// reuse finds a complete backup of this very halt taken by an earlier vigil
// that was killed before the switch (in a slow pre-upgrade hook, say): the
// node never ran since (no binary runs while an upgrade is pending), so a
// second copy would only cost the time and the space of one more. It is
// reused only if data/ still matches it file for file, which a restore
// followed by a run (the node's sign state kept, a file touched) does not.
func (b dataBackup) reuse(p plan.Plan, dir string) (backup.Result, bool) {
	start := time.Now()
	f, ok := b.reusable(p, dir)
	if !ok {
		return backup.Result{}, false
	}
	b.log.Info("reusing the backup of this halt taken by an earlier run: the data has not changed since", "path", f.Path, "upgrade", f.Upgrade, "height", f.Height)
	return backup.Result{Path: f.Path, Strategy: f.Strategy, Files: f.Files, Bytes: f.Bytes, Took: time.Since(start)}, true
}

// reusable returns the newest complete backup of this halt that data/ still
// matches.
func (b dataBackup) reusable(p plan.Plan, dir string) (backup.Info, bool) {
	found, err := backup.OfHalt(b.dest, b.l.DataDir(), dir, p.Name, p.Height)
	if err != nil {
		b.log.Warn("cannot look for an earlier backup of this halt; taking a new one", "dir", b.dest, "err", err)
		return backup.Info{}, false
	}
	for i := len(found) - 1; i >= 0; i-- {
		f := found[i]
		same, why, err := backup.SameData(b.l.DataDir(), f.Path)
		switch {
		case err != nil:
			b.log.Warn("cannot compare the data with an earlier backup of this halt; taking a new one", "path", f.Path, "err", err)
			return backup.Info{}, false
		case same:
			return f, true
		}
		b.log.Info("an earlier backup of this halt no longer matches the data; taking a new one", "path", f.Path, "why", why)
	}
	return backup.Info{}, false
}

func (b dataBackup) Retain(context.Context) error {
	_, err := backup.Retain(b.dest, b.l.DataDir(), b.keep, b.log)
	return err
}

// runLockPath is held by `vigil run` for its lifetime.
func runLockPath(cfg config.Config) string { return filepath.Join(cfg.Root(), "vigil.lock") }

// lockHome takes the run lock for `vigil run` and, now that no other vigil
// can be writing one, removes the partial backups a killed vigil left.
func lockHome(cfg config.Config, log *slog.Logger) (*runlock.Lock, error) {
	lock, err := runlock.Acquire(runLockPath(cfg))
	if errors.Is(err, runlock.ErrHeld) {
		return nil, fmt.Errorf("another vigil is already running on %s=%s: %w", config.EnvHome, cfg.Home, err)
	}
	if err != nil {
		return nil, err
	}
	if !cfg.SkipBackup {
		if _, err := backup.CleanPartials(cfg.BackupDir, log); err != nil {
			log.Warn("could not remove partial backups", "dir", cfg.BackupDir, "err", err)
		}
	}
	return lock, nil
}

func backupCmd(args []string, stdout, stderr *os.File, getenv getenvFunc) error {
	const use = "usage: vigil backup list [--json] | vigil backup restore <name>"
	if len(args) == 0 {
		return errors.New(use)
	}
	sub := args[0]
	cfg, rest, err := loadConfig(args[1:], getenv, true)
	if err != nil {
		return err
	}
	if err := cfg.Validate(false); err != nil {
		return err
	}
	switch {
	case sub == "list" && len(rest) == 0:
		return backupList(cfg, stdout, false)
	case sub == "list" && len(rest) == 1 && rest[0] == "--json":
		return backupList(cfg, stdout, true)
	case sub == "restore" && len(rest) == 1:
		log := NewLogger(cfg, stderr, isTerminal(stderr))
		return backupRestore(cfg, rest[0], stdout, log)
	}
	return errors.New(use)
}

type backupJSON struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	Upgrade  string    `json:"upgrade"`
	Height   int64     `json:"height"`
	Time     time.Time `json:"time"`
	Strategy string    `json:"strategy"`
	Files    int       `json:"files"`
	Bytes    int64     `json:"bytes"`
	Current  string    `json:"current"`
	Src      string    `json:"src"`
}

func backupList(cfg config.Config, w io.Writer, asJSON bool) error {
	list, err := backup.List(cfg.BackupDir)
	if err != nil {
		return fmt.Errorf("list backups in %s: %w", cfg.BackupDir, err)
	}
	if asJSON {
		out := make([]backupJSON, 0, len(list))
		for _, b := range list {
			out = append(out, backupJSON{b.Name, b.Path, b.Upgrade, b.Height, b.Time, string(b.Strategy), b.Files, b.Bytes, b.Current, b.Src})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(list) == 0 {
		fmt.Fprintf(w, "no backups in %s\n", cfg.BackupDir)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUPGRADE\tHEIGHT\tTIME\tSIZE\tSTRATEGY")
	for _, b := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", b.Name, b.Upgrade, b.Height, b.Time.UTC().Format(time.RFC3339), humanBytes(b.Bytes), b.Strategy)
	}
	return tw.Flush()
}

func humanBytes(n int64) string {
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

// endLeftovers runs with the run lock held, before the reactor: it ends the
// node and hooks a killed vigil of this home left running (recorded in
// cosmovisor/vigil.procs), then, as a safety net for what no record names (a
// node started by hand, a record that could not be written), refuses to go
// on while a database LOCK under data/ is held: a second node would share
// the database, and a backup or switch would run under the first.
func endLeftovers(cfg config.Config, log *slog.Logger) error {
	if err := reactor.EndLeftovers(context.Background(), cfg.Layout(), cfg.ShutdownGrace, log); err != nil {
		return fmt.Errorf("cannot stop what an earlier vigil left running: %w", err)
	}
	held, err := nodeLocks(cfg.DataDir())
	if err != nil {
		return fmt.Errorf("check the database locks: %w", err)
	}
	if len(held) > 0 {
		return fmt.Errorf("a process holds %s: a node is already running on this home outside vigil; stop it first (vigil will not start a second node on the same database)", strings.Join(held, ", "))
	}
	return nil
}

// nodeLocks lists the database LOCK files under data/ that a process holds:
// the node runs (without vigil, or vigil's lock would have said so). LevelDB
// and friends keep one in each database directory (data/*/LOCK); data/LOCK
// covers a database opened at data/ itself.
func nodeLocks(dataDir string) ([]string, error) {
	locks, err := filepath.Glob(filepath.Join(dataDir, "*", "LOCK"))
	if err != nil {
		return nil, err
	}
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

func backupRestore(cfg config.Config, name string, w io.Writer, log *slog.Logger) error {
	l := cfg.Layout()
	// Held for the whole restore, so that a `vigil run` cannot start meanwhile.
	lock, err := runlock.Acquire(runLockPath(cfg))
	if errors.Is(err, runlock.ErrHeld) {
		return fmt.Errorf("vigil is running on %s (%w): stop it, and so the node, before restoring", cfg.Home, err)
	}
	if err != nil {
		return err
	}
	defer lock.Release()
	held, err := nodeLocks(l.DataDir())
	if err != nil {
		return err
	}
	if len(held) > 0 {
		return fmt.Errorf("the node is running without vigil: its databases are locked (%s); stop it before restoring", strings.Join(held, ", "))
	}

	list, err := backup.List(cfg.BackupDir)
	if err != nil {
		return fmt.Errorf("list backups in %s: %w", cfg.BackupDir, err)
	}
	var found *backup.Info
	var names []string
	for i, b := range list {
		names = append(names, b.Name)
		if b.Name == name {
			found = &list[i]
		}
	}
	if found == nil {
		if len(names) == 0 {
			return fmt.Errorf("no backup named %q: there are no backups in %s", name, cfg.BackupDir)
		}
		return fmt.Errorf("no backup named %q in %s; there are:\n  %s", name, cfg.BackupDir, strings.Join(names, "\n  "))
	}
	if filepath.Clean(found.Src) != filepath.Clean(l.DataDir()) {
		fmt.Fprintf(w, "note: %s was taken of %s; restoring it into %s\n", found.Name, found.Src, l.DataDir())
	}

	res, err := backup.Restore(context.Background(), found.Path, l.DataDir(), log)
	if err != nil {
		return fmt.Errorf("restore %s: %w", found.Name, err)
	}
	fmt.Fprintf(w, "restored %s (upgrade %s at height %d, taken %s under %s) into %s: %d files, %s, %s\n",
		found.Name, found.Upgrade, found.Height, found.Time.UTC().Format(time.RFC3339), found.Current, res.Data, res.Files, humanBytes(res.Bytes), res.Strategy)
	if res.Replaced != "" {
		fmt.Fprintf(w, "the previous data is at %s; remove it once the node runs well\n", res.Replaced)
	}
	if res.PrivvalKept {
		fmt.Fprintf(w, "kept the live %s: it is ahead of the backup's, and a validator must never sign twice\n", backup.PrivvalFile)
	}
	if err := pointCurrent(l, found.Current); err != nil {
		return fmt.Errorf("data restored, but %s was not changed: %w; point it at %q by hand", l.Current(), err, found.Current)
	}
	if found.Current != "" {
		fmt.Fprintf(w, "current -> %s\n", found.Current)
	}

	info := l.UpgradeInfoFile()
	if p, err := plan.Load(info); err == nil {
		fmt.Fprintf(w, "%s asks for upgrade %q at height %d (the backup was taken at that halt):\n"+
			"  the next `vigil run` applies it again right away (backup, pre-upgrade, switch), without starting %s;\n"+
			"  replace %s first if that binary was the problem.\n"+
			"  To stay on %s instead, delete %s before starting: the node will halt at height %d again unless the chain skips that upgrade.\n",
			info, p.Name, p.Height, found.Current, l.Bin(upgradeDirFor(l, p.Name)), found.Current, info, p.Height)
	}
	return nil
}

func upgradeDirFor(l layout.Layout, name string) string {
	dir, err := l.DirName(name)
	if err != nil {
		return l.UpgradesDir()
	}
	return l.UpgradeDir(dir)
}

// pointCurrent points `current` at target, as recorded in a manifest
// ("genesis" or "upgrades/<dir>"); "" leaves it alone.
func pointCurrent(l layout.Layout, target string) error {
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
