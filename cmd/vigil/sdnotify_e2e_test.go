//go:build linux

package main

// vigil under systemd's Type=notify protocol: NOTIFY_SOCKET points at a
// datagram socket the test listens on, like systemd's.

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// notifySocket collects the datagrams vigil sends.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	ns := &notifySocket{path: filepath.Join(t.TempDir(), "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.path, Net: "unixgram"})
	must(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return // closed at cleanup
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, string(buf[:n]))
			ns.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return ns
}

func (ns *notifySocket) all() []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return slices.Clone(ns.msgs)
}

func (ns *notifySocket) has(msg string) bool { return slices.Contains(ns.all(), msg) }

// waitMsg waits for msg; unlike vigilProc.waitFor it also works after vigil
// exited, since datagrams sent before the exit may still be unread.
func (ns *notifySocket) waitMsg(t *testing.T, msg string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !ns.has(msg) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q notification; got %q", msg, ns.all())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// realPath is what vigil reports for a binary: the resolved path it execs.
func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	must(t, err)
	return r
}

func pidOf(t *testing.T, status, bin string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(status, "STATUS=running "+bin+" (pid ")
	if !ok || !strings.HasSuffix(rest, ")") {
		t.Fatalf("status %q does not name %s and a pid", status, bin)
	}
	pid := strings.TrimSuffix(rest, ")")
	if _, err := strconv.Atoi(pid); err != nil {
		t.Fatalf("status %q: pid %q is not a number", status, pid)
	}
	return pid
}

func TestE2ESdNotify(t *testing.T) {
	t.Parallel()
	ns := listenNotify(t)
	h := newHome(t, obj{
		"genesis": obj{"halt": haltCfg("inplace", "stay"), "log_env": []string{"NOTIFY_SOCKET", "WATCHDOG_USEC"}},
		"v2":      v2Quiet(),
	})
	// 200ms: a ping every 100ms, so some arrive during the test.
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true",
		"NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=200000")
	v.waitLog(startLine("v2"))
	genesisBin := realPath(t, h.root("genesis", "bin", daemonName))
	v2Bin := realPath(t, h.root("upgrades", "v2", "bin", daemonName))
	v.waitFor("the v2 status", func() bool {
		return slices.ContainsFunc(ns.all(), func(m string) bool { return strings.Contains(m, "; upgraded to v2 in ") })
	})
	ns.waitMsg(t, "WATCHDOG=1")
	// The service's notifications are vigil's: the node does not inherit the socket.
	h.assertOrder(startLine("genesis"), "genesis env NOTIFY_SOCKET unset", "genesis env WATCHDOG_USEC unset")
	v.stopWant(v2TermCode)
	ns.waitMsg(t, "STOPPING=1\nSTATUS=stopping")

	var msgs []string // without the pings, whose place varies
	for _, m := range ns.all() {
		if m != "WATCHDOG=1" {
			msgs = append(msgs, m)
		}
	}
	ready, rest, ok := strings.Cut(msgs[0], "\n")
	if !ok || ready != "READY=1" {
		t.Fatalf("first notification %q, want READY=1 with the status; all: %q", msgs[0], msgs)
	}
	pid := pidOf(t, rest, genesisBin)
	var v2Running string
	for _, m := range msgs {
		if strings.HasPrefix(m, "STATUS=running "+v2Bin) && !strings.Contains(m, ";") {
			v2Running = m
		}
	}
	v2pid := pidOf(t, v2Running, v2Bin)
	want := []string{
		"STATUS=upgrade v2 at height 100 detected; preparing",
		"STATUS=upgrading to v2: stopping the node",
		"STATUS=upgrading to v2: running pre-upgrade hooks",
		"STATUS=upgrading to v2: switching current",
		"STATUS=upgrading to v2: starting the new binary",
		v2Running,
		"STOPPING=1\nSTATUS=stopping",
	}
	i := 0
	for _, m := range msgs[1:] {
		if i < len(want) && m == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("notifications %q: missing %q (in order %q)", msgs, want[i], want)
	}
	if msgs[len(msgs)-1] != "STOPPING=1\nSTATUS=stopping" {
		t.Fatalf("last notification %q, want STOPPING=1", msgs[len(msgs)-1])
	}
	if n := slices.IndexFunc(msgs[1:], func(m string) bool { return strings.Contains(m, "READY=1") }); n >= 0 {
		t.Fatalf("READY=1 sent again: %q", msgs)
	}
	if pid == v2pid {
		t.Fatalf("genesis and v2 have the same pid %s", pid)
	}
	var wd []string
	for _, m := range ns.all() {
		if strings.Contains(m, "WATCHDOG") {
			wd = append(wd, m)
		}
	}
	if len(wd) == 0 || slices.ContainsFunc(wd, func(m string) bool { return m != "WATCHDOG=1" }) {
		t.Fatalf("watchdog messages %q, want some WATCHDOG=1 and nothing else", wd)
	}
}

// Without WATCHDOG_USEC there are no pings; with WATCHDOG_PID naming another
// process (inherited variables) neither.
func TestE2ESdNotifyNoWatchdog(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"unset", nil},
		{"other pid", []string{"WATCHDOG_USEC=50000", "WATCHDOG_PID=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := listenNotify(t)
			h := newHome(t, obj{"genesis": obj{"exit_after": "300ms", "exit_code": 3}})
			_, code := h.run(append([]string{"run"}, nodeArgs...), append([]string{"NOTIFY_SOCKET=" + ns.path}, tc.env...)...)
			if code != 3 {
				t.Fatalf("vigil exit code %d, want 3", code)
			}
			ns.waitMsg(t, "STOPPING=1\nSTATUS=stopping")
			msgs := ns.all()
			if !strings.HasPrefix(msgs[0], "READY=1\n") {
				t.Fatalf("first notification %q, want READY=1", msgs[0])
			}
			if !slices.Contains(msgs, "STATUS=app exited: exit status 3") {
				t.Fatalf("no status for the node's exit: %q", msgs)
			}
			if slices.Contains(msgs, "WATCHDOG=1") {
				t.Fatalf("watchdog pings without a watchdog: %q", msgs)
			}
		})
	}
}

// A socket nobody listens on must not stop vigil from running the node.
func TestE2ESdNotifyDeadSocket(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"exit_after": "50ms", "exit_code": 3}})
	v, code := h.run(append([]string{"run"}, nodeArgs...), "NOTIFY_SOCKET="+filepath.Join(t.TempDir(), "gone.sock"))
	if code != 3 {
		t.Fatalf("vigil exit code %d, want 3", code)
	}
	if n := v.countMsg("cannot notify systemd"); n != 1 {
		t.Fatalf("%d \"cannot notify systemd\" records, want 1", n)
	}
}
