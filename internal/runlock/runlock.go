// Package runlock gives `vigil run` exclusive ownership of a node home, and
// lets other commands find out whether a home (or a database) is in use.
//
// The lock is an flock(2) on a file that stays in place: the kernel drops it
// when the holding process exits, however it exits (SIGKILL included), so
// there is never a stale lock to clean up, unlike a pid file. The file's
// content (the holder's pid) is only informative.
//
// Held also probes POSIX record locks (fcntl), because databases differ:
// goleveldb as pinned by CometBFT (v1.0.1-0.20220721030215-126854af5e6d)
// flocks its LOCK file, while RocksDB, pebble and later goleveldb use fcntl
// F_SETLK. On Linux the two kinds never conflict with each other, so a probe
// of one kind cannot see the other.
//
// # Concurrency
//
// A Lock is owned by one goroutine; Release is safe to call more than once.
// Acquire and Held are safe to call concurrently.
package runlock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrHeld is returned (wrapped) by Acquire when another process holds the lock.
var ErrHeld = errors.New("lock is held by another process")

// Lock is an exclusive flock held for the life of the process or until Release.
type Lock struct {
	f *os.File
}

// Acquire takes the exclusive lock on path, creating the file if needed. It
// does not wait: when another process holds it, the error wraps ErrHeld and
// names the pid recorded in the file.
func Acquire(path string) (*Lock, error) {
	// O_CLOEXEC (Go's default) matters: a child that inherited the descriptor
	// would keep the lock after we die.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w%s", path, ErrHeld, holder(path))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Best effort: the pid only helps an operator who looks at the file.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

func holder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if pid, err := strconv.Atoi(string(trimSpace(b))); err == nil && pid > 0 {
		return fmt.Sprintf(" (pid %d)", pid)
	}
	return ""
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// Release drops the lock. The file stays: removing it would let a second
// process lock a new file while a third still holds the old one.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}

// Held reports whether another open file description holds an flock or a
// POSIX record lock (classic or OFD) on path. A missing file is not held.
//
// The POSIX probe (F_OFD_GETLK) only asks. The flock probe has no query
// form: it takes the lock and drops it at once, so a process that tries to
// lock the file in that instant gets EWOULDBLOCK. Callers use it on a home
// they expect to be idle.
func Held(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("probe lock %s: %w", path, err)
	}
	defer f.Close()
	fd := int(f.Fd())
	// OFD locks conflict with classic POSIX locks of our own process too,
	// where F_GETLK would ignore them.
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("probe lock %s: fcntl: %w", path, err)
	}
	if lk.Type != unix.F_UNLCK {
		return true, nil
	}
	// LOCK_EX so that a shared holder (goleveldb opened read-only, e.g. an
	// export) counts as a user too.
	switch err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); {
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("probe lock %s: flock: %w", path, err)
	}
	unix.Flock(fd, unix.LOCK_UN)
	return false, nil
}
