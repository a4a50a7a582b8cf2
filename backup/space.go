package backup

import (
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Space is what a backup of src into a directory needs and what it has.
type Space struct {
	Dir        string   // the destination directory
	Strategy   Strategy // the strategy Take would use now
	Files      int
	Bytes      int64  // size of the regular files in src
	Need       uint64 // bytes the backup needs, margin included
	Margin     uint64 // the part of Need left for the node
	Free       uint64 // bytes available to unprivileged users at Dir
	Inodes     uint64 // inodes the backup needs
	FreeInodes uint64
}

// NoSpaceError says a backup will not fit.
type NoSpaceError struct{ Space }

func (e *NoSpaceError) Error() string {
	s := e.Space
	if s.Need > s.Free {
		return fmt.Sprintf("backup needs %s at %s but %s is free (%s strategy, %s margin for the node included)",
			human(s.Need), s.Dir, human(s.Free), s.Strategy, human(s.Margin))
	}
	return fmt.Sprintf("backup needs %d inodes at %s but %d are free (%s strategy)", s.Inodes, s.Dir, s.FreeInodes, s.Strategy)
}

// Err returns a *NoSpaceError when the backup will not fit, else nil.
func (s Space) Err() error {
	if s.Need > s.Free || s.Inodes > s.FreeInodes {
		return &NoSpaceError{s}
	}
	return nil
}

// Estimate walks src, or what it links to (stat only: the node may still be
// running), and tells what a backup into destParent with strategy s would
// need, for the strategy Take would pick now:
//
//   - Copy: every file rounded up to the destination's block size (only the
//     allocated part of a sparse file), one block per directory;
//   - Hardlink: the same for the files that are copied, not the linked ones;
//   - Reflink: metadata only, one block per file and per directory.
//
// A margin of 5% of the destination filesystem, at most 256 MiB, is added
// for the node, which keeps writing there after the upgrade when the
// backups share its disk.
func Estimate(src, destParent string, s Strategy, log *slog.Logger) (Space, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The node's data/ may be a symlink to another volume: count what it
	// points to, and pick the strategy by that volume.
	src, err := resolveSrc(src)
	if err != nil {
		return Space{}, err
	}
	strategy, err := choose(src, destParent, s, log)
	if err != nil {
		return Space{}, err
	}
	var sf unix.Statfs_t
	if err := unix.Statfs(destParent, &sf); err != nil {
		return Space{}, &fs.PathError{Op: "statfs", Path: destParent, Err: err}
	}
	bsize := uint64(sf.Bsize)
	roundUp := func(n uint64) uint64 { return (n + bsize - 1) / bsize * bsize }
	sp := Space{Dir: destParent, Strategy: strategy, Free: sf.Bavail * bsize, FreeInodes: sf.Ffree}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			if path != src && err == unix.ENOENT {
				return nil // the running node deleted it (a compaction)
			}
			return &fs.PathError{Op: "lstat", Path: path, Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			sp.Need += bsize
			sp.Inodes++
		case unix.S_IFLNK:
			sp.Inodes++
		case unix.S_IFREG:
			sp.Files++
			sp.Bytes += st.Size
			data := uint64(st.Size)
			if alloc := uint64(st.Blocks) * 512; alloc < data {
				data = alloc // sparse: the holes stay holes
			}
			switch {
			case strategy == Reflink:
				sp.Need += bsize
				sp.Inodes++
			case strategy == Hardlink && immutable(path):
				// a directory entry, inside the directory's block
			default:
				sp.Need += roundUp(data)
				sp.Inodes++
			}
		}
		return nil
	})
	if err != nil {
		return Space{}, err
	}
	sp.Margin = min(256<<20, sf.Blocks*bsize/20)
	sp.Need += sp.Margin
	return sp, nil
}

func human(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
