package reactor

import (
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/process"
)

func TestIsCrash(t *testing.T) {
	for _, tt := range []struct {
		exit process.Exit
		want bool
	}{
		{process.Exit{Code: 0}, false},
		{process.Exit{Code: 1}, true},
		{process.Exit{Code: 143, Signal: syscall.SIGTERM}, false},
		{process.Exit{Code: 130, Signal: syscall.SIGINT}, false},
		{process.Exit{Code: 129, Signal: syscall.SIGHUP}, false},
		{process.Exit{Code: 141, Signal: syscall.SIGPIPE}, false},
		{process.Exit{Code: 137, Signal: syscall.SIGKILL}, true},
		{process.Exit{Code: 139, Signal: syscall.SIGSEGV}, true},
	} {
		if got := isCrash(tt.exit); got != tt.want {
			t.Errorf("isCrash(%v) = %v, want %v", tt.exit, got, tt.want)
		}
	}
}

func TestCrashPolicy(t *testing.T) {
	c := newCrashPolicy(Config{RestartMax: 2, RestartStable: time.Hour, RestartBackoff: 100 * time.Millisecond})
	w1, ok := c.next()
	if !ok || w1 <= 0 {
		t.Fatalf("first crash: wait %v ok %v", w1, ok)
	}
	w2, ok := c.next()
	if !ok {
		t.Fatal("second crash refused with max 2")
	}
	// Jitter is ±50%: the second wait's range (100–300ms) sits above the first's low end.
	if w2 < 50*time.Millisecond || w2 > 300*time.Millisecond {
		t.Fatalf("second wait %v outside the back-off range", w2)
	}
	if _, ok := c.next(); ok {
		t.Fatal("third crash allowed with max 2")
	}

	// A run longer than the stable period resets the count.
	c = newCrashPolicy(Config{RestartMax: 1, RestartStable: time.Millisecond, RestartBackoff: time.Millisecond})
	if _, ok := c.next(); !ok {
		t.Fatal("first crash refused")
	}
	c.started()
	time.Sleep(5 * time.Millisecond)
	if _, ok := c.next(); !ok {
		t.Fatal("crash after a stable run counted against the limit")
	}

	// Without a limit it never gives up.
	c = newCrashPolicy(Config{RestartStable: time.Hour, RestartBackoff: time.Millisecond})
	for i := range 50 {
		if _, ok := c.next(); !ok {
			t.Fatalf("gave up after %d crashes with no limit", i+1)
		}
	}
}
