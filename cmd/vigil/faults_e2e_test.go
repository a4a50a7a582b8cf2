package main

// Faults of real hosts (issue 12): plans that vanish, downgrades through an
// unmarked `current`, upgrade binaries that cannot run, plan files that are
// not files, and what killed writes leave behind. Each test feeds the fault
// through the built binary with real processes.

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// foreignBinary writes a copy of the fake node whose ELF header says it is
// for another architecture.
func foreignBinary(t *testing.T, dst string) {
	b, err := os.ReadFile(fakeBin)
	must(t, err)
	b[18], b[19] = 0x16, 0x00 // e_machine = EM_S390 (the hosts that run this are little-endian)
	must(t, os.WriteFile(dst, b, 0o755))
}

// TestE2EBadUpgradeBinary: an upgrade binary that cannot run is found before
// the node is touched, reported, and waited on like a missing one; a good one
// put in its place is then applied, with one backup.
func TestE2EBadUpgradeBinary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, bin string)
		says  string
		fix   bool // install a good binary afterwards and expect the upgrade
	}{
		{"garbage", func(t *testing.T, bin string) {
			must(t, os.WriteFile(bin, []byte("<html>502 Bad Gateway</html>\n"), 0o755))
		}, "not a Linux program", true},
		{"empty", func(t *testing.T, bin string) { must(t, os.WriteFile(bin, nil, 0o755)) }, "0-byte file", false},
		{"foreign arch", foreignBinary, "is built for", false},
		{"directory", func(t *testing.T, bin string) { must(t, os.Mkdir(bin, 0o755)) }, "not a regular file", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
			bin := h.root("upgrades", "v2", "bin", daemonName)
			must(t, os.Remove(bin))
			tc.write(t, bin)
			v := h.start(append([]string{"run"}, nodeArgs...))
			v.waitLog("genesis halt v2")
			v.waitFor("an error saying "+tc.says, func() bool { return strings.Contains(v.stderrText(), tc.says) })
			v.assertRunning()
			h.assertNoLog("genesis got TERM")
			h.assertNoLog("v2 pre-upgrade")
			h.assertCurrent("genesis")
			if b, _ := listBackups(t, h.dir); len(b) != 0 {
				t.Fatalf("backups %v taken for a binary that cannot run", b)
			}
			if !tc.fix {
				v.stop()
				return
			}
			must(t, os.Remove(bin))
			installBin(t, bin)
			v.waitForT("v2 to start after the binary was replaced", 45*time.Second, func() bool { return h.countLog(startLine("v2")) > 0 })
			h.assertOrder(startLine("genesis"), "genesis got TERM", "v2 pre-upgrade", startLine("v2"))
			h.assertCurrent("upgrades/v2")
			if b, _ := listBackups(t, h.dir); len(b) != 1 {
				t.Fatalf("backups %v, want exactly one", b)
			}
			v.stopWant(v2TermCode)
		})
	}
}

// TestE2EPlanVanishes: while vigil waits for the binary, the plan goes away
// (removed, or data/ replaced by a state-sync restore); when the binary then
// appears, the node is not stopped and nothing switches. The same plan
// written again is applied.
func TestE2EPlanVanishes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		vanish func(h *nodeHome)
	}{
		{"removed", func(h *nodeHome) { must(h.t, os.Remove(h.path("data", "upgrade-info.json"))) }},
		{"data replaced", func(h *nodeHome) {
			must(h.t, os.Rename(h.path("data"), h.path("data.old")))
			must(h.t, os.Mkdir(h.path("data"), 0o755))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
			bin := h.root("upgrades", "v2", "bin", daemonName)
			must(t, os.Remove(bin))
			v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
			v.waitMsg("upgrade not ready")
			tc.vanish(h)
			installBin(t, bin)
			v.waitForT("vigil to notice the plan is gone", 45*time.Second, func() bool {
				return v.countMsg("upgrade no longer pending; not preparing it") > 0
			})
			v.assertHeld()
			v.applyV2()
		})
	}
}

// TestE2EPlanVanishesDuringSwap: the plan goes away while the node is down
// (a slow migration hook; here the hook removes it itself): the switch does
// not happen and the installed version starts again.
func TestE2EPlanVanishesDuringSwap(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
	script := "#!/bin/sh\nrm data/upgrade-info.json\necho 'custom removed the plan' >> fakeapp.log\n"
	h.writeHook("pre.sh", script)
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true", "COSMOVISOR_CUSTOM_PREUPGRADE=hooks/pre.sh")
	v.waitFor("genesis to start again", func() bool { return h.countLog(startLine("genesis")) == 2 })
	h.assertOrder(startLine("genesis"), "genesis got TERM", "custom removed the plan", startLine("genesis"))
	h.assertNoLog(startLine("v2"))
	h.assertCurrent("genesis")
	v.assertMsgs("upgrade not applied: its plan no longer stands; starting the installed binary again")
	v.stop()
}

// TestE2ENoDowngradeThroughUnmarkedCurrent: `current` was pointed at v3 by
// hand (no marker) after the halt for v2 was written: v2 is not applied.
func TestE2ENoDowngradeThroughUnmarkedCurrent(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet(), "v3": obj{}})
	installBin(t, h.root("upgrades", "v3", "bin", daemonName))
	h.writeInfo("v2", 100)
	old := time.Now().Add(-time.Hour)
	must(t, os.Chtimes(h.path("data", "upgrade-info.json"), old, old))
	must(t, os.Remove(h.root("current")))
	must(t, os.Symlink("upgrades/v3", h.root("current")))

	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
	v.waitLog(startLine("v3"))
	v.waitMsg("ignoring upgrade-info.json older than the installed upgrade")
	h.assertCurrent("upgrades/v3")
	h.assertNoLog(startLine("v2"))
	h.assertNoLog("v3 got TERM")
	v.stop()

	// doctor says why, with the same rule.
	out, _ := h.run([]string{"doctor"})
	if !strings.Contains(out.stdoutText(), "by hand") {
		t.Fatalf("doctor does not explain the ignored plan:\n%s", out.stdoutText())
	}
}

// TestE2EPlanNotARegularFile: a FIFO, a link to /dev/zero or a huge file at
// data/upgrade-info.json is reported and ignored; vigil starts the node and
// still obeys signals.
func TestE2EPlanNotARegularFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		make func(path string) error
		says string
	}{
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "named pipe"},
		{"dev zero", func(p string) error { return os.Symlink("/dev/zero", p) }, "character device"},
		{"huge", func(p string) error {
			return os.WriteFile(p, []byte(`{"name":"v2","height":100}`+strings.Repeat(" ", 2<<20)), 0o600)
		}, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{"v2": v2Quiet()})
			must(t, tc.make(h.path("data", "upgrade-info.json")))
			v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
			v.waitLog(startLine("genesis"))
			v.waitFor("an error saying "+tc.says, func() bool { return strings.Contains(v.stderrText(), tc.says) })
			h.assertCurrent("genesis")
			v.stopWant(0)
			h.assertNoLog(startLine("v2"))
			out, _ := h.run([]string{"show-upgrade-info"})
			if !strings.Contains(out.stderrText(), tc.says) {
				t.Fatalf("show-upgrade-info does not say what it found:\n%s", out.stderrText())
			}
		})
	}
}

// TestE2ELeftoversCleaned: temporary files of writes a kill interrupted, and
// a download's staging, are removed at the next start.
func TestE2ELeftoversCleaned(t *testing.T) {
	t.Parallel()
	h := newHome(t, nil)
	left := []string{
		h.root("upgrades", "v2", ".upgrade-info.json.tmp-123456"),
		h.root(".current.tmp-a1b2c3d4e5f6"),
		h.path("data", ".upgrade-info.json.batch.tmp-778899"),
		h.root(".staging", "v2", "lock"),
		h.root(".staging", "v2", "tmp-99", "download"),
	}
	for _, p := range left {
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte("{"), 0o644))
	}
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true", "DAEMON_ALLOW_DOWNLOAD_BINARIES=true", "VIGIL_PREFETCH_INTERVAL=0")
	v.waitLog(startLine("genesis"))
	for _, p := range append(left, h.root(".staging")) {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left in place", p)
		}
	}
	h.assertCurrent("genesis")
	v.stop()
}
