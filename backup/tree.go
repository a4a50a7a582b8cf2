package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// workers bounds the parallel copy: enough to keep a disk's queue busy
// while one file waits, few enough not to starve a 2-core machine.
const workers = 4

// engine copies one tree with one strategy. Its counters are read by the
// progress logger while workers update them.
type engine struct {
	strategy Strategy
	log      *slog.Logger

	files, bytes, copied atomic.Int64
	fallback             sync.Once
}

type job struct {
	src, dst, rel string
	st            *unix.Stat_t
}

type dirTimes struct {
	path string
	st   *unix.Stat_t
}

// tree copies the contents of src into the existing directory dst, skipping
// the top-level entry named skip. done runs after every file is in place
// and before directory modes and times are set (which must come last: any
// write into a directory changes its mtime, and a read-only mode would stop
// the writes).
func (e *engine) tree(ctx context.Context, src, dst, skip string, done func() error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					continue // drain: the walk stops at its next entry
				}
				if err := e.file(j); err != nil {
					cancel(fmt.Errorf("%s: %w", j.rel, err))
				}
			}
		})
	}
	var dirs []dirTimes
	walkErr := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == skip {
			return nil
		}
		target := filepath.Join(dst, rel)
		st := new(unix.Stat_t)
		if err := unix.Lstat(path, st); err != nil {
			return &fs.PathError{Op: "lstat", Path: path, Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if rel != "." {
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
			}
			dirs = append(dirs, dirTimes{target, st})
		case unix.S_IFLNK:
			return copySymlink(path, target, st)
		case unix.S_IFREG:
			select {
			case jobs <- job{src: path, dst: target, rel: rel, st: st}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		default:
			e.log.Warn("not backed up: not a regular file, directory or symlink", "path", path, "mode", fs.FileMode(st.Mode).String())
		}
		return nil
	})
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err // a worker's error (or the caller's cancel) explains a walk error
	}
	if walkErr != nil {
		return walkErr
	}
	if done != nil {
		if err := done(); err != nil {
			return err
		}
	}
	// Deepest first: setting a child's times does not touch its parent's.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setMeta(dirs[i].path, dirs[i].st, false); err != nil {
			return err
		}
	}
	return nil
}

// immutable reports whether an LSM store never rewrites this file once it
// is complete, so a hard link is as good as a copy.
func immutable(name string) bool {
	return strings.HasSuffix(name, ".ldb") || strings.HasSuffix(name, ".sst")
}

// fallbackErr reports errors meaning "this filesystem pair cannot do that",
// after which a plain copy is the answer.
func fallbackErr(err error) bool {
	return errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EPERM)
}

func (e *engine) file(j job) error {
	size := j.st.Size
	switch {
	case e.strategy == Hardlink && immutable(j.src):
		err := os.Link(j.src, j.dst)
		if err == nil {
			e.count(size, 0)
			return nil
		}
		// EPERM: protected_hardlinks forbids linking a file we do not own.
		if !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EPERM) {
			return err
		}
		e.fallback.Do(func() {
			e.log.Warn("cannot hard-link into the backup; copying those files instead", "file", j.src, "err", err)
		})
	case e.strategy == Reflink:
		err := clone(j)
		if err == nil {
			e.count(size, 0)
			return nil
		}
		if !fallbackErr(err) {
			return err
		}
		os.Remove(j.dst)
		e.fallback.Do(func() {
			e.log.Warn("cannot reflink into the backup; copying those files instead", "file", j.src, "err", err)
		})
	}
	if err := copyFile(j, &e.copied); err != nil {
		return err
	}
	e.count(size, 0)
	return nil
}

func (e *engine) count(size, copied int64) {
	e.files.Add(1)
	e.bytes.Add(size)
	e.copied.Add(copied)
}

// progress logs files, bytes and rate every interval until the returned
// function is called; that function waits for the logger to end.
func (e *engine) progress(log *slog.Logger, msg string, start time.Time, every time.Duration) (stop func()) {
	if every <= 0 {
		every = 5 * time.Second
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				b := e.bytes.Load()
				secs := time.Since(start).Seconds()
				log.Info(msg, "files", e.files.Load(), "bytes", b, "copied", e.copied.Load(),
					"rate_mib_s", fmt.Sprintf("%.1f", float64(b)/(1<<20)/secs))
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
	}
}

func openPair(j job) (in, out int, err error) {
	in, err = unix.Open(j.src, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, &fs.PathError{Op: "open", Path: j.src, Err: err}
	}
	out, err = unix.Open(j.dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		unix.Close(in)
		return -1, -1, &fs.PathError{Op: "create", Path: j.dst, Err: err}
	}
	return in, out, nil
}

func clone(j job) error {
	in, out, err := openPair(j)
	if err != nil {
		return err
	}
	defer unix.Close(in)
	err = unix.IoctlFileClone(out, in)
	if cerr := unix.Close(out); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return setMeta(j.dst, j.st, false)
}

// copyFile copies the data segments of a file and leaves its holes as holes,
// so a sparse file takes no more blocks in the backup than in data/.
func copyFile(j job, copied *atomic.Int64) error {
	in, out, err := openPair(j)
	if err != nil {
		return err
	}
	defer unix.Close(in)
	err = copyData(in, out, j.st.Size, copied)
	if err == nil {
		err = unix.Ftruncate(out, j.st.Size) // a trailing hole
	}
	if cerr := unix.Close(out); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", j.src, err)
	}
	return setMeta(j.dst, j.st, false)
}

func copyData(in, out int, size int64, copied *atomic.Int64) error {
	for off := int64(0); off < size; {
		data, err := unix.Seek(in, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		hole := size
		if err != nil {
			data = off // no SEEK_DATA on this filesystem: all data
		} else if h, err := unix.Seek(in, data, unix.SEEK_HOLE); err == nil {
			hole = min(h, size)
		}
		if data >= size {
			return nil
		}
		if err := copyRange(in, out, data, hole-data, copied); err != nil {
			return err
		}
		off = hole
	}
	return nil
}

// copyRange lets the kernel copy [off, off+n); where copy_file_range cannot
// (old kernels across filesystems, some FUSE), it falls back to read/write.
func copyRange(in, out int, off, n int64, copied *atomic.Int64) error {
	roff, woff := off, off
	for n > 0 {
		c, err := unix.CopyFileRange(in, &roff, out, &woff, int(min(n, 1<<30)), 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if fallbackErr(err) || errors.Is(err, unix.ENOSYS) {
				return readWrite(in, out, roff, n, copied)
			}
			return err
		}
		if c == 0 {
			return io.ErrUnexpectedEOF // the file shrank: something writes data/ behind our back
		}
		n -= int64(c)
		copied.Add(int64(c))
	}
	return nil
}

func readWrite(in, out int, off, n int64, copied *atomic.Int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		r, err := unix.Pread(in, buf[:min(n, int64(len(buf)))], off)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if r == 0 {
			return io.ErrUnexpectedEOF
		}
		for w := 0; w < r; {
			k, err := unix.Pwrite(out, buf[w:r], off+int64(w))
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return err
			}
			w += k
		}
		off += int64(r)
		n -= int64(r)
		copied.Add(int64(r))
	}
	return nil
}

func copySymlink(src, dst string, st *unix.Stat_t) error {
	target, err := os.Readlink(src)
	if err != nil {
		return err
	}
	if err := os.Symlink(target, dst); err != nil {
		return err
	}
	return setMeta(dst, st, true)
}

// setMeta gives path the owner (when we are root), mode and times of st.
// Owner first: chown clears setuid bits.
func setMeta(path string, st *unix.Stat_t, symlink bool) error {
	if os.Geteuid() == 0 {
		if err := unix.Lchown(path, int(st.Uid), int(st.Gid)); err != nil {
			return &fs.PathError{Op: "chown", Path: path, Err: err}
		}
	}
	flags := 0
	if symlink {
		flags = unix.AT_SYMLINK_NOFOLLOW // a symlink's mode means nothing on Linux
	} else if err := unix.Chmod(path, st.Mode&0o7777); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, flags); err != nil {
		return &fs.PathError{Op: "utimes", Path: path, Err: err}
	}
	return nil
}
