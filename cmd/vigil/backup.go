package main

// Backups: the reactor's Backuper (backup.Policy, from the settings), the run
// lock with the start-up cleaning of partial backups, and `vigil backup
// list|restore` (backup.RestoreHome; why restore keeps upgrade-info.json is
// told there).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/runlock"
)

// newDataBackup is the reactor's Backuper as the settings ask for it.
func newDataBackup(cfg config.Config, log *slog.Logger) backup.Policy {
	return backup.Policy{
		Layout:        cfg.Layout(),
		Dest:          cfg.BackupDir,
		Strategy:      backup.Strategy(cfg.BackupMode),
		Keep:          cfg.BackupKeep,
		SkipIfNoSpace: cfg.BackupIfNoSpace == "skip",
		Log:           log.With("component", "backup"),
	}
}

// lockHome takes the run lock for `vigil run` and, now that no other vigil
// can be writing one, removes the partial backups a killed vigil left.
func lockHome(cfg config.Config, log *slog.Logger) (*runlock.Lock, error) {
	lock, err := runlock.Acquire(cfg.Layout().RunLock())
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
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", b.Name, b.Upgrade, b.Height, b.Time.UTC().Format(time.RFC3339), backup.HumanBytes(b.Bytes), b.Strategy)
	}
	return tw.Flush()
}

// backupRestore restores the backup called name and says what it did, as
// far as it got.
func backupRestore(cfg config.Config, name string, w io.Writer, log *slog.Logger) error {
	l := cfg.Layout()
	r, err := backup.RestoreHome(context.Background(), l, cfg.BackupDir, name, log)
	if b := r.Backup; b != nil && filepath.Clean(b.Src) != filepath.Clean(l.DataDir()) {
		fmt.Fprintf(w, "note: %s was taken of %s; restoring it into %s\n", b.Name, b.Src, l.DataDir())
	}
	if res := r.Restored; res.Data != "" {
		b := r.Backup
		fmt.Fprintf(w, "restored %s (upgrade %s at height %d, taken %s under %s) into %s: %d files, %s, %s\n",
			b.Name, b.Upgrade, b.Height, b.Time.UTC().Format(time.RFC3339), b.Current, res.Data, res.Files, backup.HumanBytes(res.Bytes), res.Strategy)
		if res.Replaced != "" {
			fmt.Fprintf(w, "the previous data is at %s; remove it once the node runs well\n", res.Replaced)
		}
		if res.PrivvalKept {
			fmt.Fprintf(w, "kept the live %s: it is ahead of the backup's, and a validator must never sign twice\n", backup.PrivvalFile)
		}
	}
	if err != nil {
		return err
	}
	if r.Relinked {
		fmt.Fprintf(w, "current -> %s\n", r.Backup.Current)
	}
	if p := r.Pending; p != nil {
		info, cur := l.UpgradeInfoFile(), r.Backup.Current
		fmt.Fprintf(w, "%s asks for upgrade %q at height %d (the backup was taken at that halt):\n"+
			"  the next `vigil run` applies it again right away (backup, pre-upgrade, switch), without starting %s;\n"+
			"  replace %s first if that binary was the problem.\n"+
			"  To stay on %s instead, delete %s before starting: the node will halt at height %d again unless the chain skips that upgrade.\n",
			info, p.Name, p.Height, cur, r.PendingBin, cur, info, p.Height)
	}
	return nil
}
