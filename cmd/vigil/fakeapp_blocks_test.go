//go:build linux

package main

// The fake node's chain ("blocks"): what the scheduled-upgrade tests rely on, checked on the
// fake alone, without vigil.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/vigilhq/vigil/height"
)

// runFake runs the genesis fake node in h to its end and returns its exit status.
func runFake(t *testing.T, h *nodeHome, args ...string) int {
	t.Helper()
	cmd := fakeCmd(h, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return waitFake(t, cmd)
}

func fakeCmd(h *nodeHome, args ...string) *exec.Cmd {
	cmd := exec.Command(h.root("genesis", "bin", daemonName), args...)
	cmd.Env = append(os.Environ(), "DAEMON_HOME="+h.dir)
	return cmd
}

// waitFake waits for the started fake node and returns its exit status, -1 if a signal ended it.
func waitFake(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.ExitCode() // -1 when a signal ended it
		default:
			t.Fatalf("fake node: %v", err)
		}
	case <-time.After(exitTimeout):
		cmd.Process.Kill()
		t.Fatal("fake node did not exit")
	}
	return -1
}

// commits lists the heights the fake's version committed, in log order.
func (h *nodeHome) commits(version string) []int64 {
	var out []int64
	for _, l := range h.logPrefixed(version + " commit ") {
		var n int64
		if _, err := fmt.Sscanf(l, version+" commit %d", &n); err != nil {
			h.t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, n)
	}
	return out
}

func heights(from, to int64) []int64 {
	var out []int64
	for n := from; n <= to; n++ {
		out = append(out, n)
	}
	return out
}

func committed(t *testing.T, h *nodeHome) int64 {
	t.Helper()
	n, err := height.Committed(h.path("data"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFakeBlocksHaltHeight(t *testing.T) {
	h := newHome(t, map[string]any{"genesis": map[string]any{"blocks": "20ms"}})

	if code := runFake(t, h, "start", "--halt-height=5"); code != 0 {
		t.Fatalf("exit %d, want 0\nlog:\n%s", code, strings.Join(h.fakeLog(), "\n"))
	}
	if got := h.commits("genesis"); !slices.Equal(got, heights(1, 5)) {
		t.Fatalf("commits %v, want 1..5", got)
	}
	h.assertOrder("genesis start height 0", "genesis commit 5", "genesis halt at 5")
	if n := committed(t, h); n != 5 {
		t.Fatalf("committed %d, want 5", n)
	}

	// The last --halt-height wins, in either spelling; the exit status is the configured one.
	h.writeConfig(map[string]any{"genesis": map[string]any{"blocks": "20ms", "halt_exit_code": 130}})
	if code := runFake(t, h, "start", "--halt-height=3", "--halt-height", "8"); code != 130 {
		t.Fatalf("exit %d, want 130", code)
	}
	if got := h.commits("genesis"); !slices.Equal(got, heights(1, 8)) {
		t.Fatalf("commits %v, want 1..8", got)
	}
	h.assertOrder("genesis halt at 5", "genesis start height 5", "genesis commit 6", "genesis commit 8", "genesis halt at 8")
	if n := committed(t, h); n != 8 {
		t.Fatalf("committed %d, want 8", n)
	}

	// Restarted at its halt height, a v0.45 node commits one more block before it halts: the
	// overshoot a scheduled-upgrade test must be able to see.
	if code := runFake(t, h, "start", "--halt-height", "8"); code != 130 {
		t.Fatalf("exit %d, want 130", code)
	}
	if got := h.commits("genesis"); !slices.Equal(got, heights(1, 9)) {
		t.Fatalf("commits %v, want 1..9", got)
	}
	h.assertOrder("genesis halt at 8", "genesis start height 8", "genesis commit 9", "genesis halt at 8")
	if n := committed(t, h); n != 9 {
		t.Fatalf("committed %d, want 9", n)
	}
}

func TestFakeBlocksLockHeld(t *testing.T) {
	h := newHome(t, map[string]any{"genesis": map[string]any{"blocks": "20ms"}})
	db, err := leveldb.OpenFile(h.path("data", "application.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if code := runFake(t, h, "start", "--halt-height=2"); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if got := h.logPrefixed("genesis db lock held"); len(got) != 1 {
		t.Fatalf("want one db lock held line\nlog:\n%s", strings.Join(h.fakeLog(), "\n"))
	}
	h.assertNoLog("genesis commit 1")
}

// On SIGTERM the node commits nothing more, and what it committed is readable once it is gone;
// after a SIGKILL too (from LevelDB's journal).
func TestFakeBlocksStop(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			h := newHome(t, map[string]any{"genesis": map[string]any{"blocks": "10ms", "stop_delay": "100ms"}})
			cmd := fakeCmd(h, "start")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(waitTimeout)
			for len(h.commits("genesis")) < 3 {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("no 3 commits\nlog:\n%s", strings.Join(h.fakeLog(), "\n"))
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code := waitFake(t, cmd)
			got := h.commits("genesis")
			last := got[len(got)-1]
			n := committed(t, h)
			if sig == syscall.SIGTERM {
				if code != 0 {
					t.Fatalf("exit %d, want 0", code)
				}
				h.assertOrder("genesis got TERM", "genesis exit 0")
				if lines := h.fakeLog(); !strings.HasPrefix(lines[len(lines)-3], "genesis commit ") {
					t.Fatalf("a commit after TERM (stop_delay 100ms, blocks 10ms)\nlog:\n%s", strings.Join(lines, "\n"))
				}
				if n != last {
					t.Fatalf("committed %d, last logged commit %d", n, last)
				}
				return
			}
			if code != -1 {
				t.Fatalf("exit %d, want death by SIGKILL", code)
			}
			// A SIGKILL can land between a commit and its log line.
			if n != last && n != last+1 {
				t.Fatalf("committed %d, last logged commit %d", n, last)
			}
		})
	}
}

// Without "blocks" the node is the one the other tests know: no database, --halt-height ignored.
func TestFakeNoBlocks(t *testing.T) {
	h := newHome(t, map[string]any{"genesis": map[string]any{"exit_after": "100ms"}})
	if code := runFake(t, h, "start", "--halt-height=1"); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if _, err := os.Stat(h.path("data", "application.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("application.db: %v; want none", err)
	}
	if got := h.logPrefixed("genesis commit"); len(got) != 0 {
		t.Fatalf("commits without blocks: %q", got)
	}
}
