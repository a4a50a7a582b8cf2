package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Leftovers: vigil is SIGKILLed (or OOM-killed) while the node or a hook runs. The kernel's
// parent-death SIGTERM does not end a node that ignores it or a hook's descendant; the next vigil
// must end them before it starts, backs up or switches anything.

// migrationPID waits for the pid the v2 hook's migration logged and returns it; the migration
// is killed at cleanup if it is still alive.
func (v *vigilProc) migrationPID() int {
	v.t.Helper()
	const prefix = "v2 migration pid "
	v.waitFor("the migration's pid", func() bool { return len(v.h.logPrefixed(prefix)) == 1 })
	mig, err := strconv.Atoi(strings.TrimPrefix(v.h.logPrefixed(prefix)[0], prefix))
	must(v.t, err)
	v.t.Cleanup(func() {
		if pidAlive(mig) {
			syscall.Kill(mig, syscall.SIGKILL)
		}
	})
	return mig
}

// TestE2ELeftoverNode: the node ignores SIGTERM and holds its database lock; vigil is SIGKILLed.
// The next vigil ends it (SIGKILL after the grace) before it starts a node, and with an upgrade
// pending before it backs up and switches. The database lock proves there was never a second node.
func TestE2ELeftoverNode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		pending bool
	}{{"restart", false}, {"upgrade-pending", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{"genesis": obj{"on_term": "ignore", "db_lock": true}})
			env := []string{"DAEMON_SHUTDOWN_GRACE=500ms"}
			if !tc.pending {
				env = append(env, "UNSAFE_SKIP_BACKUP=true")
			}
			v1 := h.start(append([]string{"run"}, nodeArgs...), env...)
			v1.waitLog(startLine("genesis"))
			old := h.appPIDs()
			if len(old) != 1 {
				t.Fatalf("node processes %v, want one", old)
			}
			v1.killVigil()
			// The parent-death SIGTERM reached the node, which ignores it and keeps its lock.
			// (The kernel may send it more than once: again for each of vigil's threads that dies
			// after the one that forked the node.)
			waitUntil(t, "the node to get its parent-death SIGTERM", func() bool { return h.countLog("genesis got TERM") > 0 })
			if !pidAlive(old[0]) {
				t.Fatalf("the old node %d died by itself; the test needs it to linger", old[0])
			}
			if tc.pending {
				h.writeInfo("v2", 100) // the chain halted: the next vigil would back up and switch
			}
			// From now on nodes obey SIGTERM, so the test can stop vigil normally.
			h.writeConfig(obj{"genesis": obj{"db_lock": true}, "v2": obj{"db_lock": true, "term_exit_code": v2TermCode}})

			v2 := h.start(append([]string{"run"}, nodeArgs...), env...)
			if tc.pending {
				v2.waitLog(startLine("v2"))
			} else {
				v2.waitFor("the node to start again", func() bool { return h.countLog(startLine("genesis")) == 2 })
			}
			if held := h.logPrefixed("genesis db lock held"); len(held) > 0 {
				t.Fatalf("a second node was started beside the old one: %q", held)
			}
			if held := h.logPrefixed("v2 db lock held"); len(held) > 0 {
				t.Fatalf("the upgraded node was started beside the old one: %q", held)
			}
			if pidAlive(old[0]) {
				t.Fatalf("the old node %d still runs", old[0])
			}
			if pids := h.appPIDs(); len(pids) != 1 || pids[0] == old[0] {
				t.Fatalf("node processes %v, want exactly one new node (old was %d)", pids, old[0])
			}
			ended := v2.recordIndex("ended a process left running by an earlier vigil")
			if ended < 0 {
				t.Fatal("vigil logged no \"ended a process left running by an earlier vigil\"")
			}
			if r := v2.records()[ended]; r["killed"] != true || r["role"] != "node" {
				t.Errorf("record %v: want role node, killed after the grace", r)
			}
			if tc.pending {
				v2.assertMsgs("backup done", "switched")
				if b, s := v2.recordIndex("backup done"), v2.recordIndex("switched"); !(ended < b && b < s) {
					t.Fatalf("vigil log order: ended %d, backup %d, switched %d; the old node must be gone first", ended, b, s)
				}
				h.assertCurrent("upgrades/v2")
			}
			code := 0 // genesis exits 0 on SIGTERM
			if tc.pending {
				code = v2TermCode
			}
			if got := v2.stop(); got != code {
				t.Fatalf("vigil exit code %d, want %d", got, code)
			}
		})
	}
}

// TestE2ELeftoverHook: vigil is SIGKILLed while `<new> pre-upgrade` waits for a migration it
// spawned. The kernel ends pre-upgrade (parent-death SIGTERM) but the migration ignores SIGTERM
// and lingers in the hook's process group. The next vigil ends that group before it runs the hook
// again, so two migrations never run at once (the migration's lock would say so).
func TestE2ELeftoverHook(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": obj{"term_exit_code": v2TermCode, "migration": "1m"}})
	env := []string{"UNSAFE_SKIP_BACKUP=true", "DAEMON_SHUTDOWN_GRACE=500ms"}
	v1 := h.start(append([]string{"run"}, nodeArgs...), env...)
	v1.waitLog("v2 migration start")
	mig := v1.migrationPID()
	v1.killVigil()
	if !pidAlive(mig) {
		t.Fatalf("the migration %d died with vigil; the test needs it to linger", mig)
	}
	h.assertCurrent("genesis")
	h.writeConfig(obj{"genesis": obj{}, "v2": obj{"term_exit_code": v2TermCode, "migration": "50ms"}})

	v2 := h.start(append([]string{"run"}, nodeArgs...), env...)
	v2.waitLog(startLine("v2"))
	if held := h.logPrefixed("v2 migration lock held"); len(held) > 0 {
		t.Fatalf("the hook ran again while the first migration still ran: %q", held)
	}
	if pidAlive(mig) {
		t.Fatalf("the first migration %d still runs", mig)
	}
	if n, d := h.countLog("v2 migration start"), h.countLog("v2 migration done"); n != 2 || d != 1 {
		t.Fatalf("migrations started %d, done %d; want 2 started, only the second done", n, d)
	}
	ended := v2.recordIndex("ended a process left running by an earlier vigil")
	if ended < 0 {
		t.Fatal("vigil logged no \"ended a process left running by an earlier vigil\"")
	}
	if r := v2.records()[ended]; r["role"] != "hook" || r["killed"] != true || fmt.Sprint(r["pids"]) != fmt.Sprintf("[%d]", mig) {
		t.Errorf("record %v: want role hook, pids [%d], killed", r, mig)
	}
	h.assertCurrent("upgrades/v2")
	v2.stopWant(v2TermCode)
}

// TestE2EInterruptedHookEndsGroup: the operator stops vigil while pre-upgrade waits for its
// migration. pre-upgrade obeys SIGTERM, the migration ignores it: it is killed after the hook's
// grace (10 s) rather than left running after vigil has exited.
func TestE2EInterruptedHookEndsGroup(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": obj{"migration": "1m"}})
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
	mig := v.migrationPID()
	v.signal(syscall.SIGTERM)
	if code := v.wait(); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("vigil exit code %d, want %d", code, 128+int(syscall.SIGTERM))
	}
	if pidAlive(mig) {
		t.Fatalf("the migration %d outlived the interrupted hook and vigil", mig)
	}
	h.assertNoLog("v2 migration done")
	h.assertCurrent("genesis")
}

// TestE2EStopEscalates: one SIGTERM to vigil while a node that ignores it runs normally: the node
// is killed after DAEMON_SHUTDOWN_GRACE and vigil exits with its status.
func TestE2EStopEscalates(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"on_term": "ignore"}})
	v := h.start(append([]string{"run"}, nodeArgs...), "DAEMON_SHUTDOWN_GRACE=500ms")
	v.waitLog(startLine("genesis"))
	v.signal(syscall.SIGTERM)
	if code := v.wait(); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("vigil exit code %d, want %d (node killed after the grace)", code, 128+int(syscall.SIGKILL))
	}
	h.assertOrder(startLine("genesis"), "genesis got TERM")
	v.assertMsgs("shutdown grace exceeded, killing app")
}

// TestE2EDoubleTermIsOneStop: `kill; kill` 1 ms apart is one request, not a deliberate second
// stop: a node slow to stop (within the grace) is not killed and exits with its own status.
func TestE2EDoubleTermIsOneStop(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"stop_delay": "1500ms", "term_exit_code": 5}})
	v := h.start(append([]string{"run"}, nodeArgs...), "DAEMON_SHUTDOWN_GRACE=1m")
	v.waitLog(startLine("genesis"))
	v.signal(syscall.SIGTERM)
	time.Sleep(time.Millisecond)
	v.signal(syscall.SIGTERM)
	if code := v.wait(); code != 5 {
		t.Fatalf("vigil exit code %d, want the node's own 5 (not killed)", code)
	}
	h.assertOrder("genesis got TERM", "genesis exit 5")
}

// TestE2EDatabaseInUseRefused: no record names a process, but the database's LOCK is held (a node
// started by hand): vigil refuses to start a second node on it.
func TestE2EDatabaseInUseRefused(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"db_lock": true}})
	must(t, os.MkdirAll(h.path("data", "application.db"), 0o755))
	f, err := os.OpenFile(h.path("data", "application.db", "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	defer f.Close()
	must(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	v, code := h.run(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
	if code != 1 || !strings.Contains(v.stderrText(), "application.db/LOCK") {
		t.Fatalf("vigil exit %d, want 1 naming the held LOCK:\n%s", code, v.stderrText())
	}
	h.assertNoLog(startLine("genesis"))
}
