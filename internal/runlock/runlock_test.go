package runlock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestAcquireExcludesAndReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.lock")
	if held, err := Held(path); err != nil || held {
		t.Fatalf("missing file: Held = %v, %v", held, err)
	}
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	if held, err := Held(path); err != nil || !held {
		t.Fatalf("while locked: Held = %v, %v", held, err)
	}
	_, err = Acquire(path)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Acquire: %v, want ErrHeld naming our pid", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if held, err := Held(path); err != nil || held {
		t.Fatalf("after Release: Held = %v, %v", held, err)
	}
	l2, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

// A lock held by a process that is SIGKILLed is gone with it: nothing stale.
func TestLockDiesWithProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.lock")
	cmd := exec.Command("flock", "-o", "-x", path, "sleep", "60") // -o: sleep must not inherit the lock
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}         // so the sleep can be killed too
	if err := cmd.Start(); err != nil {
		t.Skipf("flock(1) not available: %v", err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	waitHeld(t, path, true)
	if _, err := Acquire(path); !errors.Is(err, ErrHeld) {
		t.Fatalf("Acquire while flock(1) holds it: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitHeld(t, path, false)
	l, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after holder was killed: %v", err)
	}
	l.Release()
}

// Held sees POSIX record locks too (RocksDB, pebble and newer goleveldb use
// fcntl), including a shared one, and one taken by this very process.
func TestHeldSeesFcntlLocks(t *testing.T) {
	for _, typ := range []int16{unix.F_WRLCK, unix.F_RDLCK} {
		path := filepath.Join(t.TempDir(), "LOCK")
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		lk := unix.Flock_t{Type: typ, Whence: 1}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			t.Fatal(err)
		}
		if held, err := Held(path); err != nil || !held {
			t.Fatalf("fcntl lock type %d: Held = %v, %v", typ, held, err)
		}
		f.Close()
		if held, err := Held(path); err != nil || held {
			t.Fatalf("after close: Held = %v, %v", held, err)
		}
	}
}

// goleveldb opened read-only takes a shared flock; that is a user too.
func TestHeldSeesSharedFlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	if held, err := Held(path); err != nil || !held {
		t.Fatalf("shared flock: Held = %v, %v", held, err)
	}
}

func waitHeld(t *testing.T, path string, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		held, err := Held(path)
		if err == nil && held == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Held(%s) never became %v (last %v, %v)", path, want, held, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
