package backup

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/home"
)

// Info is one complete backup found in a directory.
type Info struct {
	Name string
	Path string
	Manifest
}

// readDir lists dir; a missing dir is empty.
func readDir(dir string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return ents, err
}

// List returns the complete backups in dir, oldest first: folders named
// like a backup that hold a readable manifest. A missing dir has none.
func List(dir string) ([]Info, error) {
	ents, err := readDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range ents {
		if !e.IsDir() || !isBackupName(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		m, err := ReadManifest(p)
		if err != nil {
			continue // not ours, or not complete: never listed, never removed
		}
		out = append(out, Info{Name: e.Name(), Path: p, Manifest: m})
	}
	slices.SortFunc(out, func(a, b Info) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.Name, b.Name))
	})
	return out, nil
}

// Retain removes the oldest backups of src in dir beyond the newest keep
// (keep 0 keeps all). Backups of another data directory sharing dir, and
// anything that is not a complete vigil backup, are left alone. It returns
// the paths removed.
func Retain(dir, src string, keep int, log *slog.Logger) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	all, err := List(dir)
	if err != nil {
		return nil, err
	}
	var ours []Info
	for _, b := range all {
		if filepath.Clean(b.Src) == filepath.Clean(src) {
			ours = append(ours, b)
		}
	}
	var removed []string
	var errs []error
	for _, b := range ours[:max(0, len(ours)-keep)] {
		// Remove the manifest first: a half-removed backup must not look
		// complete to List or Restore.
		if err := os.Remove(filepath.Join(b.Path, ManifestFile)); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.RemoveAll(b.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		if log != nil {
			log.Info("removed old backup", "path", b.Path, "keep", keep)
		}
		removed = append(removed, b.Path)
	}
	return removed, errors.Join(errs...)
}

// CleanPartials removes the partial backups in dir left by a process that
// died while writing them. A partial that another live process is writing
// (it holds the partial's lock) is left alone. It returns the paths removed.
func CleanPartials(dir string, log *slog.Logger) ([]string, error) {
	ents, err := readDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, home.BackupPrefix) || !strings.HasSuffix(name, PartialSuffix) {
			continue
		}
		p := filepath.Join(dir, name)
		f, err := lockDir(p)
		if err != nil {
			if log != nil {
				log.Warn("partial backup left alone", "path", p, "err", err)
			}
			continue
		}
		err = os.RemoveAll(p)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("remove partial backup: %w", err))
			continue
		}
		if log != nil {
			log.Warn("removed a partial backup left by an interrupted run", "path", p)
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// OfHalt returns the complete backups in dir of src taken for the upgrade
// upgradeDir (named upgrade in the plan) at height, oldest first.
func OfHalt(dir, src, upgradeDir, upgrade string, height int64) ([]Info, error) {
	all, err := List(dir)
	if err != nil {
		return nil, err
	}
	prefix := home.BackupNamePrefix(upgradeDir, height)
	var out []Info
	for _, b := range all {
		// The prefix alone is ambiguous ("v2" at 100 and "v2-100" at 5 share
		// "data-backup-v2-100-"): the rest must be the time, and the manifest
		// must agree.
		rest, ok := strings.CutPrefix(b.Name, prefix)
		if !ok {
			continue
		}
		if _, err := time.Parse(home.BackupTimeLayout, rest); err != nil {
			continue
		}
		if b.Upgrade != upgrade || b.Height != height || filepath.Clean(b.Src) != filepath.Clean(src) {
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

// SameData reports whether the backup at backupPath holds what src (or the
// directory it links to) holds now: the same entries, the same symlink
// targets, and regular files of the same size and modification time (every
// strategy keeps those). Any write by a node since the backup changes at
// least one. When they differ, why says where first.
func SameData(src, backupPath string) (same bool, why string, err error) {
	real, err := resolveSrc(src)
	if err != nil {
		return false, "", err
	}
	type sig struct {
		mode       uint32
		size       int64
		mtime      unix.Timespec
		linkTarget string
	}
	read := func(root, skip string) (map[string]sig, error) {
		m := map[string]sig{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			if rel == "." || rel == skip {
				return nil
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return &fs.PathError{Op: "lstat", Path: p, Err: err}
			}
			s := sig{mode: st.Mode & unix.S_IFMT}
			switch s.mode {
			case unix.S_IFREG:
				s.size, s.mtime = st.Size, st.Mtim
			case unix.S_IFLNK:
				if s.linkTarget, err = os.Readlink(p); err != nil {
					return err
				}
			case unix.S_IFDIR:
			default:
				return nil // never backed up
			}
			m[rel] = s
			return nil
		})
		return m, err
	}
	have, err := read(real, "")
	if err != nil {
		return false, "", err
	}
	backed, err := read(backupPath, ManifestFile)
	if err != nil {
		return false, "", err
	}
	for rel, b := range backed {
		h, ok := have[rel]
		switch {
		case !ok:
			return false, rel + " is gone from the data", nil
		case h != b:
			return false, rel + " differs", nil
		}
	}
	if len(have) != len(backed) {
		for rel := range have {
			if _, ok := backed[rel]; !ok {
				return false, rel + " is new in the data", nil
			}
		}
	}
	return true, "", nil
}
