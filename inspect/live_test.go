//go:build linux

package inspect

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/testutil"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A status file whose vigil was killed (no stop time, pid gone) is not taken for a running vigil,
// nor is a live pid that started at another time (a recycled pid).
func TestAlive(t *testing.T) {
	start, err := procStart(os.Getpid())
	must(t, err)
	if !Alive(os.Getpid(), start) {
		t.Errorf("this process, started %v, is not alive", start)
	}
	if Alive(os.Getpid(), start.Add(-time.Hour)) {
		t.Error("a pid that started an hour after the recorded start counts as the same process")
	}
	cmd := exec.Command("true")
	must(t, cmd.Run())
	if Alive(cmd.Process.Pid, time.Now()) {
		t.Errorf("the reaped pid %d is alive", cmd.Process.Pid)
	}
}

// `<bin> version` output is captured and a hang is cut at the timeout, with the whole process
// group (a script's sleeping child included) killed.
func TestAppVersion(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
		return p
	}
	v, err := RunVersion(script("ok", `[ "$1" = version ] && echo; echo "  v1.2.3  "; echo second line`), 10*time.Second)
	if err != nil || v != "v1.2.3" {
		t.Errorf("RunVersion = %q, %v; want v1.2.3", v, err)
	}
	v, err = RunVersion(script("stderr", `echo v0.45.0 >&2`), 10*time.Second)
	if err != nil || v != "v0.45.0" {
		t.Errorf("a version on stderr: %q, %v", v, err)
	}
	_, err = RunVersion(script("fails", `echo "error: libwasmvm.so: cannot open" ; exit 127`), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "libwasmvm") {
		t.Errorf("a failing version: err %v, want the output in it", err)
	}
	pidFile := filepath.Join(dir, "sleeper.pid")
	_, err = RunVersion(script("hang", "sleep 60 & echo $! > "+pidFile+"; wait"), 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not finish within 300ms") {
		t.Errorf("a hanging version: err %v", err)
	}
	b, err := os.ReadFile(pidFile)
	must(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	must(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for !testutil.IsZombie(pid) { // gone or a zombie waiting for init
		if time.Now().After(deadline) {
			t.Fatalf("the script's child %d survived the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
