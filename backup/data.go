package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DataLayout is where a data directory really is. Operators often keep
// data/ on another volume and make $DAEMON_HOME/data a symlink to it; every
// strategy, the space estimate and the restore must work on what the link
// points to, never on the link itself (copying the link copies nothing).
type DataLayout struct {
	Path   string // as configured ($DAEMON_HOME/data)
	Real   string // the directory, symlinks resolved; == Path when not a link
	Link   string // the link's own target as written ("" when Path is not a symlink)
	Exists bool   // false: Path does not exist at all (not even as a link)
	// MountRoot: Real is the root of a filesystem (a volume mounted there):
	// it cannot be renamed, so Restore cannot move it aside.
	MountRoot bool
}

// IsLink reports whether the data directory is reached through a symlink.
func (d DataLayout) IsLink() bool { return d.Link != "" }

// DanglingError says data/ is a symlink to nothing: the data volume is
// probably not mounted.
type DanglingError struct{ Path, Link string }

func (e *DanglingError) Error() string {
	return fmt.Sprintf("%s is a symlink to %s, which does not exist (is the data volume mounted?)", e.Path, e.Link)
}

// ResolveData tells where the data directory dir really is. It is the one
// place the backup package follows a data/ symlink. A dangling link is a
// *DanglingError; a dir that does not exist at all is not an error
// (Exists is false); anything that exists but is not a directory is.
func ResolveData(dir string) (DataLayout, error) {
	d := DataLayout{Path: dir, Real: dir}
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	d.Exists = true
	if st.Mode()&fs.ModeSymlink != 0 {
		if d.Link, err = os.Readlink(dir); err != nil {
			return d, err
		}
		real, err := filepath.EvalSymlinks(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return d, &DanglingError{Path: dir, Link: d.Link}
		}
		if err != nil {
			return d, fmt.Errorf("resolve the data directory %s -> %s: %w", dir, d.Link, err)
		}
		d.Real = real
	}
	rst, err := os.Stat(d.Real)
	if err != nil {
		return d, err
	}
	if !rst.IsDir() {
		return d, fmt.Errorf("the data directory %s is not a directory", d.Real)
	}
	if d.Real != "/" {
		same, err := sameDevice(d.Real, filepath.Dir(d.Real))
		if err != nil {
			return d, err
		}
		d.MountRoot = !same
	}
	return d, nil
}

// resolveSrc is ResolveData for something that must be backed up: it must exist.
func resolveSrc(src string) (string, error) {
	d, err := ResolveData(src)
	if err != nil {
		return "", err
	}
	if !d.Exists {
		return "", &fs.PathError{Op: "stat", Path: src, Err: unix.ENOENT}
	}
	return d.Real, nil
}
