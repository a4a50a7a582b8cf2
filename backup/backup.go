// Package backup copies the node's data directory before an upgrade.
//
// The copy is written under a ".partial" name and renamed only when complete,
// so a crash or a failure never leaves something that looks like a finished
// backup. It must run only after the node has exited: a copy of a live LevelDB
// can miss files a compaction is writing. Faster strategies (reflink,
// hardlink) belong here too, behind the same Copy call.
package backup

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/internal/atomicfile"
)

// Result describes a finished backup.
type Result struct {
	Path  string
	Files int
	Bytes int64
	Took  time.Duration
}

// PartialSuffix marks a backup that is not complete.
const PartialSuffix = ".partial"

// Name is the folder name of a backup: upgrade, height and UTC time, so two
// upgrades on the same day never share a folder (cosmovisor's do).
func Name(upgrade string, height int64, at time.Time) string {
	return fmt.Sprintf("data-backup-%s-%d-%s", upgrade, height, at.UTC().Format("20060102T150405Z"))
}

// Copy copies src into destParent/name. It fails, removing its partial
// output, if the destination exists or anything cannot be copied.
func Copy(ctx context.Context, src, destParent, name string) (Result, error) {
	start := time.Now()
	final := filepath.Join(destParent, name)
	partial := final + PartialSuffix
	if _, err := os.Lstat(final); err == nil {
		return Result{}, fmt.Errorf("backup %s already exists", final)
	}
	// A leftover from an interrupted run is ours to replace.
	if err := os.RemoveAll(partial); err != nil {
		return Result{}, fmt.Errorf("remove stale %s: %w", partial, err)
	}
	res := Result{Path: final}
	err := copyTree(ctx, src, partial, &res)
	if err == nil {
		err = os.Rename(partial, final)
	}
	if err == nil {
		err = atomicfile.SyncDir(destParent)
	}
	if err != nil {
		os.RemoveAll(partial)
		return Result{}, fmt.Errorf("back up %s to %s: %w", src, final, err)
	}
	res.Took = time.Since(start)
	return res, nil
}

func copyTree(ctx context.Context, src, dst string, res *Result) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			n, err := copyFile(path, target, info)
			res.Files++
			res.Bytes += n
			return err
		default:
			return nil // sockets, fifos: nothing a node needs restored
		}
	})
}

func copyFile(src, dst string, info fs.FileInfo) (n int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return 0, err
	}
	// io.Copy between *os.File uses copy_file_range where the kernel can.
	if n, err = io.Copy(out, in); err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(dst, info.ModTime(), info.ModTime())
	}
	return n, err
}
