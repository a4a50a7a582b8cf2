//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A vigil killed after the backup, in a slow pre-upgrade hook: the next one
// applies the upgrade with the backup already taken of that halt (the node
// never ran in between), not with one more. "full" puts the backups on a
// tmpfs that holds one backup but not two: the resumed run must not wait
// for room it does not need.
func TestE2EResumedUpgradeReusesBackup(t *testing.T) {
	t.Parallel()
	for _, full := range []bool{false, true} {
		name := "home"
		if full {
			name = "full"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			resumeAfterKill(t, full)
		})
	}
}

func resumeAfterKill(t *testing.T, full bool) {
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
	must(t, os.MkdirAll(h.path("data", "application.db"), 0o755))
	for i := range 4 {
		must(t, os.WriteFile(h.path("data", "application.db", fmt.Sprintf("%06d.ldb", i)), bytes.Repeat([]byte{byte(i)}, 1<<20), 0o644))
	}
	// Slow the first time only; its pid is kept to end it.
	script := "#!/bin/sh\nif [ ! -e hook.slept ]; then : > hook.slept; echo $$ > hook.pid; exec sleep 300; fi\necho \"custom $1 $2\" >> fakeapp.log\n"
	h.writeHook("slow.sh", script)
	env := []string{"COSMOVISOR_CUSTOM_PREUPGRADE=hooks/slow.sh"}
	t.Cleanup(func() {
		if b, err := os.ReadFile(h.path("hook.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	var wrap []string
	// backups lists every backup, complete or partial, as vigil names it (under dest).
	dest, view := h.dir, h.path
	backups := func() []string {
		done, partial := listBackups(t, view())
		all := append(done, partial...)
		for i, n := range all {
			all[i] = filepath.Join(dest, n)
		}
		return all
	}
	if full {
		// 8 MiB: the 4 MiB copy and its margin (5%) fit once, not twice.
		dest = t.TempDir()
		wrap, view = tmpfsVolume(t, dest, "8m")
		env = append(env, "DAEMON_DATA_BACKUP_DIR="+dest, "VIGIL_BACKUP_MODE=copy")
	}

	v := h.startWrapped(wrap, append([]string{"run"}, nodeArgs...), env...)
	v.waitMsg("backup done")
	v.waitFor("the slow hook", func() bool { _, err := os.Stat(h.path("hook.pid")); return err == nil })
	var first string
	for _, r := range v.records() {
		if r["msg"] == "backup done" {
			first, _ = r["path"].(string)
		}
	}
	v.killVigil()
	// Not this test's subject: whatever a killed vigil leaves running goes
	// before the next one starts.
	deadline := time.Now().Add(waitTimeout)
	for pids := h.appPIDs(); len(pids) > 0; pids = h.appPIDs() {
		if time.Now().After(deadline) {
			t.Fatalf("node processes %v outlive SIGKILL", pids)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.assertCurrent("genesis")

	v = h.startWrapped(wrap, append([]string{"run"}, nodeArgs...), env...)
	v.waitLog(startLine("v2"))
	h.assertCurrent("upgrades/v2")
	h.assertOrder("custom v2 100", "v2 pre-upgrade", startLine("v2"))
	var reused, done string
	for _, r := range v.records() {
		switch r["msg"] {
		case "reusing the backup of this halt taken by an earlier run: the data has not changed since":
			if r["level"] == "INFO" {
				reused, _ = r["path"].(string)
			}
		case "backup done":
			done, _ = r["path"].(string)
		}
	}
	if first == "" || reused != first || done != first {
		t.Errorf("first backup %q; second run reused %q and reported %q", first, reused, done)
	}
	if n := h.countLog(startLine("genesis")); n != 1 {
		t.Errorf("genesis started %d times, want 1", n)
	}
	v.stopWant(v2TermCode)
	if bs := backups(); len(bs) != 1 || bs[0] != first {
		t.Fatalf("backups %q, want only %s", bs, first)
	}
	if full {
		return // the backups live in the namespace
	}
	var list []backupJSON
	lv, code := h.run([]string{"backup", "list", "--json"})
	if err := json.Unmarshal([]byte(lv.stdoutText()), &list); code != 0 || err != nil || len(list) != 1 {
		t.Fatalf("backup list: exit %d, %s (%v)", code, lv.stdoutText(), err)
	}
}
