package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
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

// markOf is the VIGIL_SUPERVISOR value naming pid as the vigil (its start time from /proc), in
// the older three-field form, which names no home.
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
	if r["pid"] != float64(old) || r["killed"] != true || r["role"] != "marked "+h.root("genesis", "bin", daemonName) {
		t.Errorf("record %v: want pid %d, its exe, killed after the grace", r, old)
	}
	if started := v.recordIndex("app started"); started < ended {
		t.Errorf("vigil log: app started at %d, before the old node was ended (%d)", started, ended)
	}
	want := "genesis env " + process.SupervisorEnv + "=" + markOf(t, v.cmd.Process.Pid) + ":" + h.dir
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

// escapeHook is a COSMOVISOR_CUSTOM_PREUPGRADE script whose work escapes: setsid puts it in a
// session and group of its own, out of the hook's group that vigil.procs names, yet it inherits
// the hook's environment, vigil's mark included. Then the hook waits, so a kill lands while it
// runs.
const escapeHook = `#!/bin/sh
setsid sh -c 'echo "escaped pid $$" >> fakeapp.log; exec sleep 300' &
echo "hook waiting" >> fakeapp.log
sleep 300
`

// TestE2EEscapedHookChildEnded: vigil is SIGKILLed while the custom pre-upgrade runs; the hook's
// child that called setsid is found by no record and no group, only by the mark of this home's
// dead vigil. The next vigil ends it (logged with role "marked <exe>") before it runs the hook
// again, then applies the upgrade as usual.
func TestE2EEscapedHookChildEnded(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": obj{"term_exit_code": v2TermCode}})
	h.writeHook("pre.sh", escapeHook)
	env := []string{"UNSAFE_SKIP_BACKUP=true", "DAEMON_SHUTDOWN_GRACE=500ms", "COSMOVISOR_CUSTOM_PREUPGRADE=hooks/pre.sh"}
	v1 := h.start(append([]string{"run"}, nodeArgs...), env...)
	const prefix = "escaped pid "
	v1.waitFor("the hook's escaped child", func() bool { return len(h.logPrefixed(prefix)) == 1 && h.countLog("hook waiting") == 1 })
	escaped, err := strconv.Atoi(strings.TrimPrefix(h.logPrefixed(prefix)[0], prefix))
	must(t, err)
	t.Cleanup(func() {
		if pidAlive(escaped) {
			syscall.Kill(escaped, syscall.SIGKILL)
		}
	})
	if f, ok := testutil.ProcStat(escaped); !ok || len(f) < 4 || f[3] != strconv.Itoa(escaped) {
		t.Fatalf("/proc/%d/stat %q: want it in a session of its own", escaped, f)
	}
	v1.killVigil()
	time.Sleep(200 * time.Millisecond) // the parent-death SIGTERM ends the hook, not its escaped child
	if !pidAlive(escaped) {
		t.Fatalf("the escaped child %d died with vigil; the test needs it to linger", escaped)
	}
	h.assertCurrent("genesis")
	h.writeHook("pre.sh", "#!/bin/sh\necho 'hook ran again' >> fakeapp.log\n")

	v2 := h.start(append([]string{"run"}, nodeArgs...), env...)
	v2.waitLog(startLine("v2"))
	if pidAlive(escaped) {
		t.Fatalf("the escaped child %d still runs", escaped)
	}
	i := slices.IndexFunc(v2.records(), func(r map[string]any) bool {
		role, _ := r["role"].(string)
		return r["msg"] == "ended a process left running by an earlier vigil" && strings.HasPrefix(role, "marked ")
	})
	if i < 0 {
		t.Fatalf("vigil logged no end of a marked process:\n%s", v2.stderrText())
	}
	if r := v2.records()[i]; r["pid"] != float64(escaped) {
		t.Errorf("record %v: want pid %d", r, escaped)
	}
	if w := v2.recordIndex("a process no record names carries the mark of an earlier vigil of this home, which was killed; ending it"); w < 0 || w > i {
		t.Errorf("no warning before the end of the marked process (%d, %d)", w, i)
	}
	h.assertOrder("hook waiting", "hook ran again", startLine("v2"))
	h.assertCurrent("upgrades/v2")
	v2.stopWant(v2TermCode)
}
