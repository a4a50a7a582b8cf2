//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/testutil"
	"golang.org/x/sys/unix"
)

// Backup, restore and the run lock, end to end: the real vigil binary and
// the fake node (helpers in e2e_test.go).

func TestE2EBackupRestore(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
	must(t, os.MkdirAll(h.path("data", "application.db"), 0o755))
	ldb := bytes.Repeat([]byte("sst"), 20000)
	must(t, os.WriteFile(h.path("data", "application.db", "000001.ldb"), ldb, 0o644))
	must(t, os.WriteFile(h.path("data", "application.db", "000002.log"), []byte("wal at halt"), 0o644))
	must(t, os.WriteFile(h.path("data", "priv_validator_state.json"), []byte(`{"height":"99","round":0,"step":3}`), 0o600))

	v := h.start(append([]string{"run"}, nodeArgs...))
	v.waitLog(startLine("v2"))
	v.assertMsgs("backup planned", "backup done")
	v.stopWant(v2TermCode)

	// list: one backup, taken under genesis.
	lv, code := h.run([]string{"backup", "list", "--json"})
	if code != 0 {
		t.Fatalf("backup list --json: exit %d\n%s", code, lv.stderrText())
	}
	var list []backupJSON
	if err := json.Unmarshal([]byte(lv.stdoutText()), &list); err != nil || len(list) != 1 {
		t.Fatalf("list --json = %s (%v)", lv.stdoutText(), err)
	}
	b := list[0]
	if b.Upgrade != "v2" || b.Height != 100 || b.Current != "genesis" || b.Src != h.path("data") || !strings.HasPrefix(b.Name, "data-backup-v2-100-") {
		t.Fatalf("backup = %+v", b)
	}
	if b.Strategy == "hardlink" {
		a, _ := os.Stat(h.path("data", "application.db", "000001.ldb"))
		c, _ := os.Stat(filepath.Join(b.Path, "application.db", "000001.ldb"))
		if !os.SameFile(a, c) {
			t.Error("hardlink strategy but the .ldb is not linked")
		}
	}
	lv, code = h.run([]string{"backup", "list"})
	if out := lv.stdoutText(); code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, b.Name) || !strings.Contains(out, b.Strategy) {
		t.Fatalf("backup list: exit %d\n%s%s", code, out, lv.stderrText())
	}

	// The node moved on after the upgrade, and signed further.
	must(t, os.WriteFile(h.path("data", "application.db", "000002.log"), []byte("wal later"), 0o644))
	must(t, os.WriteFile(h.path("data", "application.db", "000003.ldb"), []byte("new"), 0o644))
	ahead := `{"height":"150","round":0,"step":1}`
	must(t, os.WriteFile(h.path("data", "priv_validator_state.json"), []byte(ahead), 0o600))

	rv, code := h.run([]string{"backup", "restore", "data-backup-nope"})
	if se := rv.stderrText(); code != 1 || !strings.Contains(se, `no backup named "data-backup-nope"`) || !strings.Contains(se, b.Name) {
		t.Fatalf("restore of an unknown name: exit %d\n%s", code, se)
	}

	rv, code = h.run([]string{"backup", "restore", b.Name})
	out := rv.stdoutText()
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, out, rv.stderrText())
	}
	for _, want := range []string{"restored " + b.Name, h.path("data.replaced-"), "current -> genesis", "kept the live priv_validator_state.json", `asks for upgrade "v2" at height 100`, "applies it again"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore output lacks %q:\n%s", want, out)
		}
	}
	h.assertCurrent("genesis")
	if got, _ := os.ReadFile(h.path("data", "application.db", "000002.log")); string(got) != "wal at halt" {
		t.Errorf("WAL not restored: %q", got)
	}
	if got, _ := os.ReadFile(h.path("data", "application.db", "000001.ldb")); !bytes.Equal(got, ldb) {
		t.Error(".ldb not restored")
	}
	if _, err := os.Stat(h.path("data", "application.db", "000003.ldb")); err == nil {
		t.Error("a file written after the backup survived the restore")
	}
	if got, _ := os.ReadFile(h.path("data", "priv_validator_state.json")); string(got) != ahead {
		t.Errorf("sign state went back: %s", got)
	}
	replaced, _ := filepath.Glob(h.path("data.replaced-*", "application.db", "000003.ldb"))
	if len(replaced) != 1 {
		t.Error("the replaced data was not kept")
	}

	// As documented: the next run applies the upgrade again, without starting genesis.
	v = h.start(append([]string{"run"}, nodeArgs...))
	v.waitFor("v2 started a second time", func() bool { return h.countLog(startLine("v2")) == 2 })
	if n := h.countLog(startLine("genesis")); n != 1 {
		t.Errorf("genesis started %d times, want 1", n)
	}
	h.assertCurrent("upgrades/v2")
	v.stopWant(v2TermCode)
	if bs, _ := filepath.Glob(h.path("data-backup-v2-100-*")); len(bs) != 2 {
		t.Errorf("backups after the second upgrade: %q, want 2", bs)
	}
}

func TestE2ERestoreRefusesWhileRunning(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{})
	for _, db := range []string{"application.db", "state.db"} {
		must(t, os.MkdirAll(h.path("data", db), 0o755))
		must(t, os.WriteFile(h.path("data", db, "LOCK"), nil, 0o644))
	}

	v := h.start([]string{"run", "start"})
	v.waitLog("genesis start start")
	rv, code := runBeside(h, []string{"backup", "restore", "x"})
	if se := rv.stderrText(); code != 1 || !strings.Contains(se, "vigil is running") {
		t.Fatalf("restore under a running vigil: exit %d\n%s", code, se)
	}
	second, code := runBeside(h, []string{"run", "start"}, "UNSAFE_SKIP_BACKUP=true")
	if se := second.stderrText(); code != 1 || !strings.Contains(se, "another vigil is already running") || !strings.Contains(se, "vigil.lock") {
		t.Fatalf("second vigil run: exit %d\n%s", code, se)
	}
	if n := h.countLog("genesis start start"); n != 1 {
		t.Fatalf("the second vigil started the node: %d starts", n)
	}
	v.stop()

	// The node running without vigil: goleveldb flocks LOCK; RocksDB and
	// pebble take an fcntl lock.
	for _, tc := range []struct {
		db   string
		lock func(fd int) error
	}{
		{"application.db", func(fd int) error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) }},
		{"state.db", func(fd int) error {
			return unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &unix.Flock_t{Type: unix.F_WRLCK})
		}},
	} {
		f, err := os.OpenFile(h.path("data", tc.db, "LOCK"), os.O_RDWR, 0)
		must(t, err)
		must(t, tc.lock(int(f.Fd())))
		rv, code := h.run([]string{"backup", "restore", "x"})
		f.Close()
		if se := rv.stderrText(); code != 1 || !strings.Contains(se, "the node is running without vigil") || !strings.Contains(se, tc.db+"/LOCK") {
			t.Fatalf("restore with %s locked: exit %d\n%s", tc.db, code, se)
		}
	}
	rv, code = h.run([]string{"backup", "restore", "x"})
	if se := rv.stderrText(); code != 1 || !strings.Contains(se, "there are no backups") {
		t.Fatalf("restore with nothing to restore: exit %d\n%s", code, se)
	}
}

// A vigil SIGKILLed in the middle of a backup leaves a .partial; the next
// vigil removes it (and leaves alone a partial another process is writing),
// then applies the upgrade.
func TestE2EKilledBackupIsCleaned(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
	// Big enough for the copy to take a while: 96 MiB in 48 files.
	must(t, os.MkdirAll(h.path("data", "application.db"), 0o755))
	chunk := bytes.Repeat([]byte{0xa5}, 2<<20)
	for i := range 48 {
		must(t, os.WriteFile(h.path("data", "application.db", fmt.Sprintf("%06d.log", i)), chunk, 0o644))
	}
	other := h.path("data-backup-other-1-20200101T000000Z.partial")
	must(t, os.Mkdir(other, 0o755))
	of, err := os.Open(other)
	must(t, err)
	defer of.Close()
	must(t, unix.Flock(int(of.Fd()), unix.LOCK_EX)) // "another vigil is writing it"

	v := h.start(append([]string{"run"}, nodeArgs...), "VIGIL_BACKUP_MODE=copy")
	var partial string
	deadline := time.Now().Add(waitTimeout)
	for partial == "" {
		if m, _ := filepath.Glob(h.path("data-backup-v2-100-*.partial")); len(m) > 0 {
			partial = m[0]
			break
		}
		if v.exited() || time.Now().After(deadline) {
			t.Fatal("never saw the partial backup")
		}
		time.Sleep(time.Millisecond)
	}
	must(t, v.cmd.Process.Kill())
	v.wait()
	if _, err := os.Stat(partial); err != nil {
		t.Skipf("the backup completed before the kill landed (%v); the machine is too fast for this test", err)
	}
	h.assertCurrent("genesis")

	v = h.start(append([]string{"run"}, nodeArgs...))
	v.waitLog(startLine("v2"))
	var cleaned bool
	for _, r := range v.records() {
		if r["msg"] == "removed a partial backup left by an interrupted run" && r["path"] == partial {
			cleaned = true
		}
	}
	if !cleaned {
		t.Errorf("no log record of removing %s", partial)
	}
	if _, err := os.Stat(partial); err == nil {
		t.Errorf("%s is still there", partial)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a partial being written by another process was removed: %v", err)
	}
	done, _ := filepath.Glob(h.path("data-backup-v2-100-*"))
	if len(done) != 1 || strings.HasSuffix(done[0], ".partial") {
		t.Errorf("backups: %q, want one complete", done)
	}
	v.stop()
}

// Not enough space at the backup directory (a 1 MiB tmpfs mounted in vigil's
// own mount namespace): by default the upgrade waits with the node running;
// with VIGIL_BACKUP_IF_NO_SPACE=skip it goes on without a backup.
func TestE2ENoSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	t.Parallel()
	for _, mode := range []string{"fail", "skip"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
			must(t, os.MkdirAll(h.path("data", "application.db"), 0o755))
			must(t, os.WriteFile(h.path("data", "application.db", "000001.log"), bytes.Repeat([]byte("w"), 2<<20), 0o644))
			dest := t.TempDir()
			v := startInTinyFS(h, dest, append([]string{"run"}, nodeArgs...), "DAEMON_DATA_BACKUP_DIR="+dest, "VIGIL_BACKUP_IF_NO_SPACE="+mode)
			if mode == "fail" {
				v.waitMsg("upgrade not ready")
				var msg string
				for _, r := range v.records() {
					if r["msg"] == "upgrade not ready" {
						msg, _ = r["err"].(string)
					}
				}
				for _, want := range []string{"backup needs", "at " + dest + " but", "is free", "VIGIL_BACKUP_IF_NO_SPACE=skip"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q lacks %q", msg, want)
					}
				}
				h.assertNoLog("genesis got TERM")
				h.assertCurrent("genesis")
				v.stop()
				return
			}
			v.waitLog(startLine("v2"))
			var loud bool
			for _, r := range v.records() {
				if r["level"] == "ERROR" && strings.HasPrefix(fmt.Sprint(r["msg"]), "NO BACKUP") {
					loud = true
				}
			}
			if !loud || v.countMsg("backup done") != 0 {
				t.Errorf("skip: error record %v, backups taken %d", loud, v.countMsg("backup done"))
			}
			h.assertCurrent("upgrades/v2")
			v.stop()
		})
	}
}

// runBeside runs a vigil command while another vigil runs the node of h:
// h.run would blame it for that node.
func runBeside(h *nodeHome, args []string, extra ...string) (*vigilProc, int) {
	h.t.Helper()
	v := h.start(args, extra...)
	select {
	case <-v.done:
	case <-time.After(exitTimeout):
		h.t.Fatalf("vigil %q did not exit within %v", args, exitTimeout)
	}
	return v, v.state.ExitCode()
}

// startInTinyFS is home.start with vigil run in a private mount namespace
// where dir is a 1 MiB tmpfs.
func startInTinyFS(h *nodeHome, dir string, args []string, extra ...string) *vigilProc {
	h.t.Helper()
	script := `mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@"`
	return h.startWrapped([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", script, dir}, args, extra...)
}

// BenchmarkUpgradeWithBackup measures a whole upgrade with the backup on, for
// a data folder of 2 GiB in 2,048 files (LevelDB-like names, a WAL and a
// MANIFEST): upgrade-info.json renamed into data/ → v2 running, per backup
// mode, beside `cp -a` of the same data folder. Page caches are warm for all
// (the data is generated once and hard-linked into each home); `sync` runs
// before each timed part. Run it as
//
//	go test -run '^$' -bench UpgradeWithBackup -benchtime 1x ./cmd/vigil
func BenchmarkUpgradeWithBackup(b *testing.B) {
	gen := filepath.Join(b.TempDir(), "data")
	testutil.NodeData(b, gen, 2048, 1<<20)
	for _, mode := range []string{"cp-a", "hardlink", "copy"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				h := newHome(b, nil)
				must(b, os.Remove(h.path("data")))
				if out, err := exec.Command("cp", "-al", gen, h.path("data")).CombinedOutput(); err != nil {
					b.Fatalf("cp -al: %v %s", err, out)
				}
				if mode == "cp-a" {
					unix.Sync()
					b.StartTimer()
					if out, err := exec.Command("cp", "-a", h.path("data"), h.path("cp-backup")).CombinedOutput(); err != nil {
						b.Fatalf("cp -a: %v %s", err, out)
					}
					b.StopTimer()
					continue
				}
				upgradeOnce(b, h, "VIGIL_BACKUP_MODE="+mode)
			}
			b.SetBytes(2 << 30)
		})
	}
}

func upgradeOnce(b *testing.B, h *nodeHome, env ...string) {
	sock, conn := readySocket(b)
	prepared := stageInfo(b, h, "")

	v := h.start([]string{"run", "start"}, append(env, "FAKEAPP_READY="+sock)...)
	readReady(b, v, conn, "genesis")
	unix.Sync()
	timedHalt(b, h, v, conn, prepared)
	v.stopWant(0)
	if v.countMsg("backup done") != 1 {
		b.Fatal("no backup was taken")
	}
}
