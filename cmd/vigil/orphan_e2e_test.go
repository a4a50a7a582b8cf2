package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/testutil"
	"github.com/vigilhq/vigil/process"
)

// Unrecorded leftovers: vigil is SIGKILLed after forking the node and before it records it in
// cosmovisor/vigil.procs. The node, which ignores the parent-death SIGTERM, lives on and no record
// names it; only the VIGIL_SUPERVISOR mark in its environment tells it from a node started by hand.
// The test stands in for the dead vigil: it starts the node itself, from the home's
// cosmovisor/genesis/bin, with or without the mark.

// markOf is the VIGIL_SUPERVISOR value naming pid as the vigil (its start time from /proc).
func markOf(t *testing.T, pid int) string {
	t.Helper()
	f, ok := testutil.ProcStat(pid)
	if !ok || len(f) < 20 {
		t.Fatalf("no /proc/%d/stat", pid)
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	must(t, err)
	return fmt.Sprintf("%d:%s:%s", pid, f[19], strings.TrimSpace(string(boot)))
}

// deadVigilMark is the mark of a vigil that has exited: a process that ran and was reaped.
func deadVigilMark(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	must(t, cmd.Start())
	mark := markOf(t, cmd.Process.Pid)
	must(t, cmd.Process.Kill())
	cmd.Wait()
	return mark
}

// startOrphanNode starts the genesis node as a killed vigil would have left it: its own process
// group, the given mark (none when ""), holding data/LOCK and ignoring SIGTERM. It returns once
// the node runs, with its pid; the test reaps it (it is the node's parent).
func (h *nodeHome) startOrphanNode(mark string) int {
	h.t.Helper()
	h.writeConfig(obj{"genesis": obj{"on_term": "ignore", "db_lock": true}})
	cmd := exec.Command(h.root("genesis", "bin", daemonName), nodeArgs...)
	cmd.Env = h.baseEnv()
	if mark != "" {
		cmd.Env = append(cmd.Env, process.SupervisorEnv+"="+mark)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	must(h.t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	h.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	waitUntil(h.t, "the node to hold its database", func() bool { return h.countLog(startLine("genesis")) == 1 })
	// From now on nodes obey SIGTERM, so the test can stop vigil normally; and vigil's own node
	// shows its mark.
	h.writeConfig(obj{"genesis": obj{"db_lock": true, "log_env": []string{process.SupervisorEnv}}})
	return cmd.Process.Pid
}

// TestE2EUnrecordedLeftoverEnded: the node of a dead vigil, holding data/LOCK, with no record:
// the next vigil ends it (SIGTERM, SIGKILL after the grace) and starts its own node, which is
// marked with this vigil's pid.
func TestE2EUnrecordedLeftoverEnded(t *testing.T) {
	t.Parallel()
	h := newHome(t, nil)
	old := h.startOrphanNode(deadVigilMark(t))

	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true", "DAEMON_SHUTDOWN_GRACE=500ms")
	v.waitFor("the node to start again", func() bool { return h.countLog(startLine("genesis")) == 2 })
	if held := h.logPrefixed("genesis db lock held"); len(held) > 0 {
		t.Fatalf("a second node was started beside the old one: %q", held)
	}
	if pidAlive(old) {
		t.Fatalf("the old node %d still runs", old)
	}
	h.assertOrder(startLine("genesis"), "genesis got TERM", startLine("genesis"))
	ended := v.recordIndex("ended a process left running by an earlier vigil")
	if ended < 0 {
		t.Fatal("vigil logged no \"ended a process left running by an earlier vigil\"")
	}
	r := v.records()[ended]
	if r["pid"] != float64(old) || r["killed"] != true || r["role"] != "unrecorded "+h.root("genesis", "bin", daemonName) {
		t.Errorf("record %v: want pid %d, its exe, killed after the grace", r, old)
	}
	if started := v.recordIndex("app started"); started < ended {
		t.Errorf("vigil log: app started at %d, before the old node was ended (%d)", started, ended)
	}
	want := "genesis env " + process.SupervisorEnv + "=" + markOf(t, v.cmd.Process.Pid)
	if h.countLog(want) != 1 {
		t.Errorf("the new node's environment: want %q in the fake's log, got %q", want, h.logPrefixed("genesis env"))
	}
	if got := v.stop(); got != 0 {
		t.Fatalf("vigil exit code %d, want 0", got)
	}
}

// TestE2EUnmarkedHolderRefused: a node holding data/LOCK that carries no mark (started by hand),
// or the mark of a vigil that still runs, is never signalled: vigil refuses to start, naming it.
func TestE2EUnmarkedHolderRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mark func(t *testing.T) string
	}{
		{"no mark", func(*testing.T) string { return "" }},
		{"live vigil", func(t *testing.T) string { return markOf(t, os.Getpid()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, nil)
			node := h.startOrphanNode(tc.mark(t))
			// Not h.run: its check that vigil left no node behind would find this one.
			v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true", "DAEMON_SHUTDOWN_GRACE=500ms")
			select {
			case <-v.done:
			case <-time.After(exitTimeout):
				t.Fatalf("vigil did not exit within %v", exitTimeout)
			}
			code := v.state.ExitCode()
			se := v.stderrText()
			if code != 1 || !strings.Contains(se, h.path("data", "LOCK")) || !strings.Contains(se, "pid "+strconv.Itoa(node)+" "+h.root("genesis", "bin", daemonName)) {
				t.Fatalf("vigil exit %d, want 1 naming data/LOCK, pid %d and its executable:\n%s", code, node, se)
			}
			if !pidAlive(node) {
				t.Fatalf("the node %d was ended", node)
			}
			h.assertNoLog("genesis got TERM")
			if n := h.countLog(startLine("genesis")); n != 1 {
				t.Fatalf("%d node starts, want only the hand-started one", n)
			}
		})
	}
}
