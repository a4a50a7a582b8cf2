//go:build linux

package main

// vigil as PID 1 of a PID namespace, the way `docker run` without --init
// starts it: `unshare --pid --fork --mount-proc --kill-child vigil run …`.
// These tests need root (or they skip): they check that orphans re-parented to
// vigil are reaped, that vigil still sees its own children's exit statuses
// (the node's and the hooks'), and that it exits with the node's status.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vigilhq/vigil/internal/testutil"
)

var unshareProbe sync.Map // flags → error

// requireUnshare skips unless `unshare flags… true` works here (root, and a
// kernel and container that allow the namespaces).
func requireUnshare(t *testing.T, flags ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare")
	}
	key := strings.Join(flags, " ")
	v, ok := unshareProbe.Load(key)
	if !ok {
		out, err := exec.Command("unshare", append(flags, "true")...).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
		}
		v, _ = unshareProbe.LoadOrStore(key, err)
	}
	if err, _ := v.(error); err != nil {
		t.Skipf("unshare %s does not work here: %v", key, err)
	}
}

var pid1Flags = []string{"--pid", "--fork", "--mount-proc", "--kill-child"}

// procEntry is a process as the test (in the parent namespace) sees it.
type procEntry struct {
	pid   int
	state string
}

// childrenOf lists the processes whose parent is ppid.
func childrenOf(ppid int) []procEntry {
	var out []procEntry
	for _, pid := range testutil.PIDs() {
		if f, ok := testutil.ProcStat(pid); ok && len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, procEntry{pid, f[0]})
		}
	}
	return out
}

// nsInit returns the pid (in our namespace) of vigil, the child unshare forked.
func (v *vigilProc) nsInit() int {
	v.t.Helper()
	var pid int
	v.waitFor("vigil under unshare", func() bool {
		kids := childrenOf(v.cmd.Process.Pid)
		if len(kids) == 1 {
			pid = kids[0].pid
		}
		return pid != 0
	})
	return pid
}

func (v *vigilProc) signalPID1(s syscall.Signal) {
	v.t.Helper()
	if err := syscall.Kill(v.nsInit(), s); err != nil {
		v.t.Fatalf("signal %v to vigil: %v", s, err)
	}
}

func TestE2EPID1ReapsOrphans(t *testing.T) {
	t.Parallel()
	requireUnshare(t, pid1Flags...)
	const orphans = 3
	h := newHome(t, obj{"genesis": obj{"orphans": orphans, "orphan_life": "100ms", "term_exit_code": 4}})
	v := h.startWrapped(append([]string{"unshare"}, pid1Flags...), append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
	v.waitLog(startLine("genesis"))
	vigil := v.nsInit()
	app := h.appPIDs()

	// Re-parented to vigil: their parent inside the namespace is PID 1.
	v.waitFor("the orphans to be re-parented and exit", func() bool { return h.countLog("genesis orphan exit") == orphans })
	if n := h.countLog("genesis orphan ppid 1"); n != orphans {
		t.Fatalf("%d orphans saw PID 1 as their parent, want %d:\n%s", n, orphans, strings.Join(h.fakeLog(), "\n"))
	}
	// Unreaped, they would stay vigil's children as zombies.
	v.waitFor("vigil's only child to be the node (orphans reaped)", func() bool {
		kids := childrenOf(vigil)
		return len(kids) == 1 && slices.Contains(app, kids[0].pid) && kids[0].state != "Z"
	})
	v.assertRunning()

	v.signalPID1(syscall.SIGTERM)
	if code := v.wait(); code != 4 {
		t.Fatalf("vigil as PID 1 exited %d, want the node's 4", code)
	}
	h.assertOrder(startLine("genesis"), "genesis got TERM")
}

func TestE2EPID1ExitStatus(t *testing.T) {
	t.Parallel()
	requireUnshare(t, pid1Flags...)
	t.Run("exit 3", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, obj{"genesis": obj{"exit_after": "50ms", "exit_code": 3, "orphans": 2, "orphan_life": "1h"}})
		v := h.startWrapped(append([]string{"unshare"}, pid1Flags...), append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
		if code := v.wait(); code != 3 {
			t.Fatalf("vigil as PID 1 exited %d, want the node's 3", code)
		}
	})
	t.Run("killed by SIGKILL", func(t *testing.T) {
		t.Parallel()
		h := newHome(t, nil)
		v := h.startWrapped(append([]string{"unshare"}, pid1Flags...), append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
		v.waitLog(startLine("genesis"))
		pids := h.appPIDs()
		if len(pids) != 1 {
			t.Fatalf("node pids %v, want one", pids)
		}
		must(t, syscall.Kill(pids[0], syscall.SIGKILL))
		if code, want := v.wait(), 128+int(syscall.SIGKILL); code != want {
			t.Fatalf("vigil as PID 1 exited %d, want %d", code, want)
		}
	})
}

// The hooks' exit codes must reach vigil although orphans die around them:
// pre-upgrade 31 then 0 is a retry then success; 30 fails the upgrade.
func TestE2EPID1UpgradeHooks(t *testing.T) {
	t.Parallel()
	requireUnshare(t, pid1Flags...)
	script := "#!/bin/sh\necho \"custom $1 $2 ppid=$PPID\" >> fakeapp.log\n"
	for _, tc := range []struct {
		name  string
		codes []int
		ok    bool
	}{
		{"retry-then-ok", []int{31, 0}, true},
		{"fail-30", []int{30}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v2 := v2Quiet()
			v2["pre_upgrade"] = tc.codes
			genesis := obj{"halt": haltCfg("inplace", "stay"), "orphans": 4, "orphan_life": "50ms"}
			h := newHome(t, obj{"genesis": genesis, "v2": v2})
			h.writeHook("pre.sh", script)
			v := h.startWrapped(append([]string{"unshare"}, pid1Flags...), append([]string{"run"}, nodeArgs...),
				"UNSAFE_SKIP_BACKUP=true", "DAEMON_PREUPGRADE_MAX_RETRIES=1", "COSMOVISOR_CUSTOM_PREUPGRADE=hooks/pre.sh")
			if !tc.ok {
				if code := v.wait(); code != 1 {
					t.Fatalf("vigil exit code %d, want 1 for pre-upgrade exit 30", code)
				}
				h.assertCurrent("genesis")
				h.assertNoLog(startLine("v2"))
				found := false
				for _, r := range v.records() {
					if r["msg"] == "upgrade failed" && strings.Contains(fmt.Sprint(r["err"]), "exit status 30") {
						found = true
					}
				}
				if !found {
					t.Fatalf("no \"upgrade failed\" record naming exit status 30 (a stolen status reads \"unknown\")")
				}
				return
			}
			v.waitLog(startLine("v2"))
			h.assertOrder(startLine("genesis"), "genesis got TERM", "custom v2 100 ppid=1", "v2 pre-upgrade", "v2 pre-upgrade", startLine("v2"))
			h.assertCurrent("upgrades/v2")
			v.signalPID1(syscall.SIGTERM)
			if code := v.wait(); code != v2TermCode {
				t.Fatalf("vigil exit code %d, want v2's %d", code, v2TermCode)
			}
		})
	}
}
