//go:build linux

package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vigilhq/vigil/backup"
)

// data/ as a symlink to a directory on another filesystem (the node's data
// on its own volume), end to end: doctor, an upgrade with a backup, and a
// restore, all through the real vigil binary.

// dataVolume mounts a tmpfs at dir in a private mount namespace held open by
// a sleeping process, so that several vigil commands can share it. It
// returns the wrapper that runs a command in that namespace and the path
// under which the test itself reaches dir's content (/proc/<pid>/root/dir).
func dataVolume(t *testing.T, dir string) (wrap []string, view func(elem ...string) string) {
	return tmpfsVolume(t, dir, "64m")
}

// tmpfsVolume is dataVolume with a tmpfs of the given size ("8m").
func tmpfsVolume(t *testing.T, dir, size string) (wrap []string, view func(elem ...string) string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o size="$1" tmpfs "$0" && echo mounted && exec sleep 3600`, dir, size)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "mounted\n" {
		t.Fatalf("mounting a tmpfs at %s in a new mount namespace: %q %v", dir, line, err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	root := filepath.Join("/proc", pid, "root")
	return []string{"nsenter", "-t", pid, "-m", "--"}, func(elem ...string) string {
		return filepath.Join(append([]string{root, dir}, elem...)...)
	}
}

// runWrapped is home.run under a wrapper.
func runWrapped(h *nodeHome, wrap, args []string, extra ...string) (*vigilProc, int) {
	h.t.Helper()
	v := h.startWrapped(wrap, args, extra...)
	return v, v.wait()
}

func TestE2EDataSymlinkOtherFS(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
	vol := t.TempDir()
	wrap, view := dataVolume(t, vol)
	volData := filepath.Join(vol, "data")
	must(t, os.MkdirAll(view("data", "application.db"), 0o755))
	ldb := bytes.Repeat([]byte("sst"), 100000)
	must(t, os.WriteFile(view("data", "application.db", "000001.ldb"), ldb, 0o644))
	must(t, os.WriteFile(view("data", "application.db", "000002.log"), []byte("wal at halt"), 0o644))
	must(t, os.Remove(h.path("data")))
	must(t, os.Symlink(volData, h.path("data")))

	// Outside the namespace the volume is not mounted: the link dangles.
	dv, code := h.run([]string{"doctor"})
	if out := dv.stdoutText(); code != 1 || !strings.Contains(out, "FAIL  data/ -> "+volData+": the link dangles") {
		t.Errorf("doctor with the data volume unmounted: exit %d\n%s%s", code, out, dv.stderrText())
	}
	dv, code = runWrapped(h, wrap, []string{"doctor"})
	out := dv.stdoutText()
	if code != 0 {
		t.Errorf("doctor: exit %d\n%s%s", code, out, dv.stderrText())
	}
	for _, want := range []string{
		"OK    data/ -> " + volData + " (symlink, on another filesystem than $DAEMON_HOME)",
		"copy strategy (the data at " + volData + " is on another filesystem: reflinks and hard links are impossible, the backup is a full copy)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}

	v := h.startWrapped(wrap, append([]string{"run"}, nodeArgs...))
	v.waitLog(startLine("v2"))
	h.assertCurrent("upgrades/v2")
	v.assertMsgs("backup planned", "backup done")
	for _, r := range v.records() {
		if r["msg"] == "backup planned" {
			if r["strategy"] != "copy" || r["bytes"].(float64) < float64(len(ldb)) {
				t.Errorf("backup planned %v: want a copy of every byte of the data volume", r)
			}
		}
	}
	v.stopWant(v2TermCode)
	bs, _ := filepath.Glob(h.path("data-backup-v2-100-*"))
	if len(bs) != 1 {
		t.Fatalf("backups: %q, want one", bs)
	}
	if st, err := os.Lstat(bs[0]); err != nil || !st.IsDir() {
		t.Fatalf("the backup is not a directory: %v %v", st, err)
	}
	if got, _ := os.ReadFile(filepath.Join(bs[0], "application.db", "000001.ldb")); !bytes.Equal(got, ldb) {
		t.Fatal("the backup lacks the data volume's .ldb")
	}
	if _, err := os.Stat(filepath.Join(bs[0], "upgrade-info.json")); err != nil {
		t.Fatalf("the backup lacks upgrade-info.json: %v", err)
	}
	m, err := backup.ReadManifest(bs[0])
	must(t, err)
	if m.Src != h.path("data") || m.Target != volData || m.Strategy != backup.Copy {
		t.Errorf("manifest %+v", m)
	}

	// Restore: the link stays, the data volume gets the backup, the old data
	// is kept beside it on that volume.
	must(t, os.WriteFile(view("data", "application.db", "000002.log"), []byte("wal later"), 0o644))
	must(t, os.WriteFile(view("data", "application.db", "000003.ldb"), []byte("new"), 0o644))
	rv, code := runWrapped(h, wrap, []string{"backup", "restore", filepath.Base(bs[0])})
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, rv.stdoutText(), rv.stderrText())
	}
	if !strings.Contains(rv.stdoutText(), "into "+volData+":") || !strings.Contains(rv.stdoutText(), volData+".replaced-") {
		t.Errorf("restore output:\n%s", rv.stdoutText())
	}
	if got, err := os.Readlink(h.path("data")); err != nil || got != volData {
		t.Fatalf("data/ is no longer the link to %s: %q %v", volData, got, err)
	}
	if got, _ := os.ReadFile(view("data", "application.db", "000002.log")); string(got) != "wal at halt" {
		t.Errorf("WAL not restored on the data volume: %q", got)
	}
	if _, err := os.Stat(view("data", "application.db", "000003.ldb")); err == nil {
		t.Error("a file written after the backup survived the restore")
	}
	if old, _ := filepath.Glob(view("data.replaced-*", "application.db", "000003.ldb")); len(old) != 1 {
		t.Error("the replaced data is not kept on the data volume")
	}
	if left, _ := filepath.Glob(h.path("data.*")); len(left) != 0 {
		t.Errorf("restore left %q on the home's filesystem", left)
	}
}
