package sdnotify

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/internal/testutil"
	"github.com/vigilhq/vigil/plan"
	"github.com/vigilhq/vigil/process"
)

const hangTimeout = 10 * time.Second

// listen opens a datagram socket like systemd's notify socket.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func socketPath(t *testing.T) string { return filepath.Join(t.TempDir(), "notify.sock") }

// next reads one datagram, failing on a hang.
func next(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(hangTimeout))
	n, _, err := c.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("reading a notification: %v", err)
	}
	return string(buf[:n])
}

// assertEmpty checks that nothing more was sent. Only call it after Close:
// every send has happened by then, so an immediate read is conclusive.
func assertEmpty(t *testing.T, c *net.UnixConn) {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now())
	if n, _, err := c.ReadFromUnix(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("unexpected notification %q (err %v)", buf[:n], err)
	}
}

// assertNoGoroutine polls: after Close the goroutine has closed done but may
// not have returned yet.
func assertNoGoroutine(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		if !bytes.Contains(buf, []byte("sdnotify.(*Notifier).run(")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a notifier goroutine is still running:\n%s", buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var (
	genesisBin = "/home/x/cosmovisor/genesis/bin/simd"
	v2Bin      = "/home/x/cosmovisor/upgrades/v2/bin/simd"
	v2         = plan.Plan{Name: "v2", Height: 100}
)

func TestWithoutSocketNothingRuns(t *testing.T) {
	for _, n := range []*Notifier{New(Config{Watchdog: time.Millisecond}), nil} {
		if n.Enabled() {
			t.Fatal("enabled without a socket")
		}
		assertNoGoroutine(t)
		n.Observe(event.Event{Kind: event.AppStarted, Bin: genesisBin, Pid: 1})
		n.Close()
		n.Close()
	}
}

func TestMessagesFollowTheEvents(t *testing.T) {
	path := socketPath(t)
	sock := listen(t, path)
	n := New(Config{Socket: path})
	if !n.Enabled() {
		t.Fatal("not enabled with a socket")
	}
	for _, e := range []event.Event{
		{Kind: event.AppStarted, Bin: genesisBin, Pid: 10, Installed: "genesis"},
		{Kind: event.UpgradeDetected, Plan: v2},
		{Kind: event.UpgradeStep, Plan: v2, Step: "stopping the node"},
		{Kind: event.AppExited, Exit: process.Exit{Code: 143, Signal: 15}, Expected: true},
		{Kind: event.BackupDone, Plan: v2},
		{Kind: event.UpgradeStep, Plan: v2, Step: "backing up data"},
		{Kind: event.AppStarted, Bin: v2Bin, Pid: 11, Installed: "v2"},
		{Kind: event.UpgradeDone, Plan: v2, Took: 1500 * time.Millisecond},
		{Kind: event.AppExited, Exit: process.Exit{Code: 3}},
		{Kind: event.AppRestarting, Exit: process.Exit{Code: 3}, Attempt: 1, Wait: time.Second},
		{Kind: event.UpgradeFailed, Plan: v2, Err: errors.New("pre-upgrade failed:\nexit status 30")},
		{Kind: event.Stopping},
	} {
		n.Observe(e)
	}
	n.Close()
	n.Observe(event.Event{Kind: event.AppStarted, Bin: v2Bin, Pid: 12})
	for _, want := range []string{
		"READY=1\nSTATUS=running " + genesisBin + " (pid 10)",
		"STATUS=upgrade v2 at height 100 detected; preparing",
		"STATUS=upgrading to v2: stopping the node",
		"STATUS=upgrading to v2: backing up data",
		"STATUS=running " + v2Bin + " (pid 11)",
		"STATUS=running " + v2Bin + " (pid 11); upgraded to v2 in 1.5s",
		"STATUS=app exited: exit status 3",
		"STATUS=app crashed (exit status 3); restart 1 in 1s",
		"STATUS=upgrade to v2 failed: pre-upgrade failed:; exit status 30",
		"STOPPING=1\nSTATUS=stopping",
	} {
		if got := next(t, sock); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	assertEmpty(t, sock) // one STOPPING, nothing after Close
	assertNoGoroutine(t)
}

func TestCloseSendsStopping(t *testing.T) {
	path := socketPath(t)
	sock := listen(t, path)
	n := New(Config{Socket: path})
	n.Close()
	n.Close()
	if got := next(t, sock); got != "STOPPING=1\nSTATUS=stopping" {
		t.Fatalf("got %q, want STOPPING=1", got)
	}
	assertEmpty(t, sock)
}

func TestAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@vigil-sdnotify-test-%d", os.Getpid())
	sock := listen(t, name)
	n := New(Config{Socket: name})
	n.Observe(event.Event{Kind: event.AppStarted, Bin: genesisBin, Pid: 10})
	if got := next(t, sock); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("got %q, want READY=1", got)
	}
	n.Close()
}

// The watchdog is driven by a tick the test controls and a health check that
// blocks until the test answers, so which ticks were healthy is exact.
func TestWatchdogPingsOnlyWhenHealthy(t *testing.T) {
	path := socketPath(t)
	sock := listen(t, path)
	tick := make(chan time.Time)
	answers := make(chan bool)
	var logs testutil.Buffer
	n := start(Config{Socket: path, Healthy: func() bool { return <-answers }, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, tick)
	for _, healthy := range []bool{true, false, false, true} {
		tick <- time.Now()
		answers <- healthy
	}
	n.Close()
	for _, want := range []string{"WATCHDOG=1", "WATCHDOG=1", "STOPPING=1\nSTATUS=stopping"} {
		if got := next(t, sock); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	assertEmpty(t, sock)
	if c := strings.Count(logs.String(), "withholding"); c != 1 {
		t.Fatalf("%d withholding records, want 1 per unhealthy stretch:\n%s", c, logs.String())
	}
}

func TestWatchdogTimer(t *testing.T) {
	path := socketPath(t)
	sock := listen(t, path)
	n := New(Config{Socket: path, Watchdog: 20 * time.Millisecond})
	defer n.Close()
	if got := next(t, sock); got != "WATCHDOG=1" {
		t.Fatalf("got %q, want WATCHDOG=1", got)
	}
}

func TestSendFailureIsLoggedOnceAndDoesNotBlock(t *testing.T) {
	var logs testutil.Buffer
	n := New(Config{Socket: filepath.Join(t.TempDir(), "nobody-listens"), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 5 {
		n.Observe(event.Event{Kind: event.AppStarted, Bin: genesisBin, Pid: i})
	}
	n.Close()
	if c := strings.Count(logs.String(), "cannot notify systemd"); c != 1 {
		t.Fatalf("%d failure records, want 1:\n%s", c, logs.String())
	}
}

func TestQueueIsBounded(t *testing.T) {
	n := &Notifier{wake: make(chan struct{}, 1)} // no goroutine: nothing drains the queue
	for range 2 * maxQueue {
		n.Observe(event.Event{Kind: event.UpgradeStep, Plan: v2, Step: "x"})
	}
	n.Observe(event.Event{Kind: event.Stopping})
	if len(n.queue) != maxQueue+1 || !strings.HasPrefix(n.queue[maxQueue], "STOPPING=1") {
		t.Fatalf("queue has %d messages ending %q; want %d STATUS lines then STOPPING", len(n.queue), n.queue[len(n.queue)-1], maxQueue)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"", "42", 0, false},
		{"30000000", "", 30 * time.Second, false},
		{"30000000", "42", 30 * time.Second, false},
		{"30000000", "43", 0, false}, // inherited from a parent
		{"0", "", 0, true},
		{"-5", "", 0, true},
		{"30s", "", 0, true},
		{"1000", "x", 0, true},
	} {
		got, err := WatchdogInterval(tc.usec, tc.pid, 42)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("WatchdogInterval(%q, %q) = %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}

func TestHealth(t *testing.T) {
	var h Health
	step := func(k event.Kind, want bool) {
		t.Helper()
		if k != 0 {
			h.Observe(event.Event{Kind: k, Expected: true})
		}
		if got := h.Healthy(); got != want {
			t.Fatalf("after %v: healthy = %v, want %v", k, got, want)
		}
	}
	step(0, true) // starting, maybe applying a pending upgrade first
	step(event.AppStarted, true)
	step(event.UpgradeDetected, true)
	step(event.UpgradeStep, true)
	step(event.AppExited, true) // stopped for the upgrade
	step(event.AppStarted, true)
	step(event.UpgradeDone, true)
	step(event.AppExited, false) // down, nothing pending: vigil is about to exit
	step(event.AppRestarting, true)
	step(event.AppStarted, true)
	step(event.AppExited, false)
	step(event.UpgradeDetected, true) // the node wrote the plan and died: waiting for the binary
	step(event.UpgradeFailed, false)
	step(event.AppStarted, true)
	step(event.Stopping, false)
	step(event.AppStarted, false)
}
