package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/atomicfile"
)

// Strategy is how files get into a backup.
type Strategy string

const (
	Auto     Strategy = "auto"
	Reflink  Strategy = "reflink"
	Hardlink Strategy = "hardlink"
	Copy     Strategy = "copy"
)

// PartialSuffix marks a backup that is not complete.
const PartialSuffix = ".partial"

// ManifestFile is written inside every complete backup.
const ManifestFile = "vigil-backup.json"

// Manifest describes a complete backup; it is stored as ManifestFile.
type Manifest struct {
	Upgrade  string    `json:"upgrade"`
	Height   int64     `json:"height"`
	Time     time.Time `json:"time"`
	Strategy Strategy  `json:"strategy"`
	Files    int       `json:"files"`
	Bytes    int64     `json:"bytes"`
	// Current is the target of the `current` link when the backup was taken
	// ("genesis", "upgrades/v2"): the version that ran on this data.
	Current string `json:"current"`
	Src     string `json:"src"`
	// Target is the directory actually copied when Src is a symlink (data/
	// on another volume); empty otherwise.
	Target string `json:"target,omitempty"`
}

// Options are the inputs of Take besides the paths.
type Options struct {
	Strategy Strategy     // "" means Auto
	Logger   *slog.Logger // nil discards
	// Recorded in the manifest.
	Upgrade string
	Height  int64
	Current string

	progressEvery time.Duration // 0 = 5s; tests shorten it
}

// Result describes a finished backup.
type Result struct {
	Path     string
	Strategy Strategy // the strategy used; files it could not apply to were copied
	Files    int
	Bytes    int64 // size of the regular files
	Copied   int64 // bytes physically written (not linked or cloned)
	Took     time.Duration
}

// Take backs up src into destParent/name. When src is a symlink, the
// directory it points to is backed up (as a directory, not a link). It
// fails, removing its partial output, if the destination exists, src
// dangles, or anything cannot be backed up.
func Take(ctx context.Context, src, destParent, name string, o Options) (res Result, err error) {
	start := time.Now()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	final := filepath.Join(destParent, name)
	partial := final + PartialSuffix
	defer func() {
		if err != nil {
			err = fmt.Errorf("back up %s to %s: %w", src, final, err)
		}
	}()
	if _, err := os.Lstat(final); err == nil {
		return Result{}, errors.New("the backup already exists")
	}
	real, err := resolveSrc(src)
	if err != nil {
		return Result{}, err
	}
	target := ""
	if real != src {
		target = real
	}
	strategy, err := choose(real, destParent, o.Strategy, log)
	if err != nil {
		return Result{}, err
	}
	// A leftover of an interrupted run is ours to replace, unless another
	// process is writing it right now.
	if err := removePartial(partial); err != nil {
		return Result{}, err
	}
	if err := os.Mkdir(partial, 0o700); err != nil {
		return Result{}, err
	}
	lock, err := lockDir(partial)
	if err != nil {
		os.RemoveAll(partial)
		return Result{}, err
	}
	defer lock.Close()
	defer func() {
		if err != nil {
			if rerr := os.RemoveAll(partial); rerr != nil {
				log.Error("could not remove the partial backup", "path", partial, "err", rerr)
			}
		}
	}()

	log.Info("backup started", "src", src, "real", real, "to", final, "strategy", strategy)
	e := &engine{strategy: strategy, log: log}
	stop := e.progress(log, "backup progress", start, o.progressEvery)
	err = e.tree(ctx, real, partial, "", func() error {
		return writeManifest(partial, Manifest{
			Upgrade: o.Upgrade, Height: o.Height, Time: start.UTC().Truncate(time.Second),
			Strategy: strategy, Files: int(e.files.Load()), Bytes: e.bytes.Load(),
			Current: o.Current, Src: src, Target: target,
		})
	})
	stop()
	if err != nil {
		return Result{}, err
	}
	if err := syncfs(partial); err != nil {
		return Result{}, err
	}
	if err := os.Rename(partial, final); err != nil {
		return Result{}, err
	}
	if err := atomicfile.SyncDir(destParent); err != nil {
		return Result{}, err
	}
	res = Result{Path: final, Strategy: strategy, Files: int(e.files.Load()), Bytes: e.bytes.Load(), Copied: e.copied.Load(), Took: time.Since(start)}
	log.Debug("backup complete", "path", final, "strategy", strategy, "files", res.Files, "bytes", res.Bytes, "copied", res.Copied, "took", res.Took)
	return res, nil
}

func writeManifest(dir string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ManifestFile), append(b, '\n'), 0o644)
}

// ReadManifest reads the manifest of the backup at dir.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return m, nil
}

// choose resolves the strategy for copying src (a real directory, not a
// link to one) into destParent.
func choose(src, destParent string, want Strategy, log *slog.Logger) (Strategy, error) {
	switch want {
	case "", Auto, Reflink, Hardlink, Copy:
	default:
		return "", fmt.Errorf("unknown backup strategy %q", want)
	}
	if want == Copy {
		return Copy, nil
	}
	if want == "" || want == Auto || want == Reflink {
		err := probeReflink(src, destParent)
		if err == nil {
			return Reflink, nil
		}
		if want == Reflink {
			log.Warn("reflink is not possible here; copying instead", "src", src, "dest", destParent, "err", err)
			return Copy, nil
		}
		log.Debug("reflink not supported", "err", err)
	}
	same, err := sameDevice(src, destParent)
	if err != nil {
		return "", err
	}
	if same {
		return Hardlink, nil
	}
	if want == Hardlink {
		log.Warn("hard links are impossible: the backup destination is on another filesystem than the data; copying instead", "src", src, "dest", destParent)
		return Copy, nil
	}
	log.Info("backup destination is on another filesystem than the data: hard links are impossible, copying", "src", src, "dest", destParent)
	return Copy, nil
}

func sameDevice(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, &fs.PathError{Op: "stat", Path: a, Err: err}
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, &fs.PathError{Op: "stat", Path: b, Err: err}
	}
	return sa.Dev == sb.Dev, nil
}

// probeReflink clones the first regular file of src into a temporary file in
// destParent: the only reliable test (XFS may or may not have reflink on).
func probeReflink(src, destParent string) error {
	var first string
	stop := errors.New("found")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			first = p
			return stop
		}
		return nil
	})
	if err != nil && err != stop {
		return err
	}
	if first == "" {
		return errors.New("no file to probe")
	}
	in, err := os.Open(first)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(destParent, ".vigil-reflink-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	return unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
}

// lockDir flocks a partial directory while it is written, which tells
// CleanPartials (in this or another vigil) that it is not stale.
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is being written by another process", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// removePartial removes a partial backup unless another process holds it.
func removePartial(dir string) error {
	f, err := lockDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove stale %s: %w", dir, err)
	}
	return nil
}

func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// isBackupName reports whether name is a complete backup's folder name.
func isBackupName(name string) bool {
	return strings.HasPrefix(name, home.BackupPrefix) && !strings.HasSuffix(name, PartialSuffix)
}
