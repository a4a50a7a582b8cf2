//go:build linux

package main

// Metrics, probes, the status file and `vigil status`, end to end: the real vigil binary (built by
// TestMain in e2e_test.go) and the fake node.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/testutil"
	"github.com/vigilhq/vigil/observe"
)

// cliRun runs `vigil args...` to completion with only PATH and HOME plus env: no DAEMON_*
// unless the test passes them, as an operator on another shell would.
func cliRun(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vigilBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("vigil %q did not finish within %v\nstdout:\n%s\nstderr:\n%s", args, exitTimeout, so.String(), se.String())
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("vigil %q: %v", args, err)
	}
	return so.String(), se.String(), cmd.ProcessState.ExitCode()
}

func statusJSON(t *testing.T, env []string, args ...string) statusReport {
	t.Helper()
	out, errOut, code := cliRun(t, env, append([]string{"status", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("vigil status --json: exit %d\n%s", code, errOut)
	}
	var r statusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("vigil status --json printed invalid JSON: %v\n%s", err, out)
	}
	return r
}

// field finds the line of `vigil status` with this label and returns the rest of it.
func field(t *testing.T, text, label string) string {
	t.Helper()
	for l := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(l, label+" "); ok && strings.HasPrefix(l, fmt.Sprintf("%-14s ", label)) {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("no %q line in:\n%s", label, text)
	return ""
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// samples reads the text exposition format into "name{labels}" → value.
func samples(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for l := range strings.SplitSeq(text, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", l)
		}
		out[l[:i]] = v
	}
	return out
}

// One upgrade under a vigil serving VIGIL_LISTEN: the probes while the node runs, the metrics
// after the upgrade, and `vigil status` against the running vigil and after it stopped.
// Depends on the reactor emitting AppStarted, AppExited, UpgradeDetected, UpgradeStep and
// UpgradeDone, and Stopping on the way out.
func TestE2EObserveUpgrade(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"v2": v2Quiet()}) // genesis stays up until upgrade-info.json appears
	addr := freeAddr(t)
	base := "http://" + addr
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true", "VIGIL_LISTEN="+addr)
	v.waitLog(startLine("genesis"))

	ready := func() bool { code, _ := testutil.HTTPGet(t, base+"/readyz"); return code == 200 }
	v.waitFor("/readyz 200 with genesis running", ready)
	if code, body := testutil.HTTPGet(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d %q while vigil runs", code, body)
	}

	h.writeInfo("v2", 100)
	v.waitLog(startLine("v2"))
	v.waitFor("/readyz 200 with v2 running", ready)
	code, text := testutil.HTTPGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	m := samples(t, text)
	for k, want := range map[string]float64{
		`vigil_upgrades_done_total{upgrade="v2"}`: 1,
		`vigil_upgrade_pickup_seconds_count`:      1,
		`vigil_current_upgrade{name="v2"}`:        1,
		`vigil_app_up`:                            1,
		`vigil_upgrade_in_progress`:               0,
		`vigil_app_exits_total{kind="expected"}`:  1,
		`vigil_app_exits_total{kind="crash"}`:     0,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("/metrics %s = %v (present: %v), want %v", k, got, ok, want)
		}
	}
	if _, ok := m[`vigil_current_upgrade{name="genesis"}`]; ok {
		t.Errorf(`/metrics still reports vigil_current_upgrade{name="genesis"}`)
	}
	if m["process_resident_memory_bytes"] <= 0 {
		t.Errorf("no process collector: process_resident_memory_bytes = %v", m["process_resident_memory_bytes"])
	}

	// `vigil status` from another shell: only the home, no DAEMON_NAME (inferred from genesis/bin).
	// The status file is written once a burst of events has settled (50 ms), so it may still be
	// on its way.
	var r statusReport
	v.waitFor("the status file to show the upgrade done and v2 running", func() bool {
		r = statusJSON(t, nil, "--home", h.dir)
		return r.App != nil && r.App.Installed == "v2" && r.LastUpgrade != nil
	})
	if !r.Vigil.Running || r.Vigil.Pid != v.cmd.Process.Pid {
		t.Errorf("vigil = %+v, want running with pid %d", r.Vigil, v.cmd.Process.Pid)
	}
	if r.Name != daemonName || r.Current.Installed != "v2" || r.Current.Version != "fakeapp v2" || r.Current.Marker == nil || r.Current.Marker.Height != 100 {
		t.Errorf("name %q, current = %+v", r.Name, r.Current)
	}
	if r.App == nil || !r.App.Running || r.App.Installed != "v2" || r.App.Pid == 0 {
		t.Fatalf("app = %+v", r.App)
	}
	if pids := h.appPIDs(); len(pids) != 1 || pids[0] != r.App.Pid {
		t.Errorf("status says the app is pid %d, the running node is %v", r.App.Pid, pids)
	}
	if x := r.App.LastExit; x == nil || !x.Expected {
		t.Errorf("last exit = %+v, want genesis' expected stop", x)
	}
	if u := r.LastUpgrade; u == nil || u.Name != "v2" || u.Result != observe.UpgradeDone || u.PickupSeconds <= 0 {
		t.Errorf("last upgrade = %+v", u)
	}
	if r.Pending == nil || r.Pending.State != planApplied {
		t.Errorf("pending = %+v, want the applied v2", r.Pending)
	}
	text, _, _ = cliRun(t, nil, "status", "--home", h.dir)
	if got := field(t, text, "vigil"); !strings.HasPrefix(got, fmt.Sprintf("running, pid %d", v.cmd.Process.Pid)) {
		t.Errorf("vigil line %q", got)
	}
	if got := field(t, text, "last upgrade"); !strings.HasPrefix(got, "v2 at height 100: done") {
		t.Errorf("last upgrade line %q", got)
	}

	v.stopWant(v2TermCode)
	r = statusJSON(t, nil, "--home", h.dir, "--name", daemonName)
	if r.Vigil.Running || r.Vigil.Stopped.IsZero() {
		t.Errorf("after the stop: vigil = %+v, want not running with a stop time", r.Vigil)
	}
	if r.App == nil || r.App.Running || r.App.LastExit == nil || r.App.LastExit.Code != v2TermCode {
		t.Errorf("after the stop: app = %+v, last exit %+v", r.App, r.App.LastExit)
	}
	if c, err := net.DialTimeout("tcp", addr, 10*time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after vigil exited", addr)
	}
}

// A VIGIL_LISTEN port that is taken stops vigil before the node starts, naming the setting.
func TestE2EListenInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	h := newHome(t, nil)
	v, code := h.run(append([]string{"run"}, nodeArgs...), "VIGIL_LISTEN="+ln.Addr().String())
	if code != exitError {
		t.Fatalf("vigil exit code %d, want %d", code, exitError)
	}
	if se := v.stderrText(); !strings.Contains(se, "VIGIL_LISTEN") || !strings.Contains(se, "address already in use") {
		t.Fatalf("stderr does not name VIGIL_LISTEN and the cause:\n%s", se)
	}
	h.assertNoLog(startLine("genesis"))
}

// `vigil status` on a home no vigil runs on: a pending plan with its binary, a staged upgrade
// that is not executable, the last backup from the status file a stopped vigil left.
func TestStatusPreparedHome(t *testing.T) {
	t.Parallel()
	h := newHome(t, nil)
	installBin(t, h.root("upgrades", "v3", "bin", daemonName))
	must(t, os.Chmod(h.root("upgrades", "v3", "bin", daemonName), 0o644))
	h.writeInfo("v2", 100)
	started := time.Now().Add(-time.Hour).Round(0)
	st := observe.Status{
		Schema: observe.StatusSchema,
		Vigil:  observe.VigilStatus{Pid: 999999999, Version: "v0.1.0", Started: started, Stopped: started.Add(time.Minute)},
		App:    observe.AppStatus{Running: true, Pid: 999999998, Installed: "genesis", Restarts: 2},
		LastBackup: &observe.BackupEnd{Upgrade: "v1", Path: filepath.Join(h.dir, "data-backup-v1"), Strategy: "copy",
			Files: 3, Bytes: 3 << 20, TookSeconds: 1.5, At: started},
	}
	b, err := json.Marshal(st)
	must(t, err)
	must(t, os.WriteFile((home.Layout{Home: h.dir}).StatusFile(), b, 0o644))

	r := statusJSON(t, nil, "--home", h.dir)
	if r.Vigil.Running || r.Vigil.Pid != 999999999 {
		t.Errorf("vigil = %+v, want not running", r.Vigil)
	}
	if r.App == nil || r.App.Running || r.App.Restarts != 2 {
		t.Errorf("app = %+v: a stopped vigil's app cannot be running", r.App)
	}
	if r.Current.Installed != "genesis" || r.Current.Version != "fakeapp genesis" || r.Current.Link != "genesis" {
		t.Errorf("current = %+v", r.Current)
	}
	if p := r.Pending; p == nil || p.State != planPending || p.Name != "v2" || p.Height != 100 || !p.BinaryOK || p.Dir != "v2" {
		t.Errorf("pending = %+v", p)
	}
	if len(r.Staged) != 2 || r.Staged[0].Dir != "v2" || !r.Staged[0].OK || r.Staged[1].Dir != "v3" || r.Staged[1].OK || !strings.Contains(r.Staged[1].Error, "not executable") {
		t.Errorf("staged = %+v", r.Staged)
	}
	if b := r.LastBackup; b == nil || b.Bytes != 3<<20 || b.TookSeconds != 1.5 || b.Strategy != "copy" {
		t.Errorf("last backup = %+v", b)
	}

	text, _, code := cliRun(t, nil, "status", "--home", h.dir, "--name", daemonName)
	if code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	for label, want := range map[string]string{
		"vigil":       "not running (pid 999999999 stopped",
		"version":     "fakeapp genesis",
		"installed":   "genesis",
		"pending":     "v2 at height 100 -> upgrades/v2; binary ready",
		"restarts":    "2",
		"last backup": filepath.Join(h.dir, "data-backup-v1") + " (copy, 3 files, 3.0 MiB, took 1.5s)",
	} {
		if got := field(t, text, label); !strings.HasPrefix(got, want) {
			t.Errorf("%s line %q, want it to start with %q", label, got, want)
		}
	}
	if !strings.Contains(text, "v3           BAD: ") {
		t.Errorf("staged v3 is not reported bad:\n%s", text)
	}

	// The environment works too, and flags win over it.
	r = statusJSON(t, []string{"DAEMON_HOME=" + h.dir, "DAEMON_NAME=" + daemonName})
	if r.Home != h.dir {
		t.Errorf("home from the environment = %q", r.Home)
	}
	other := newHome(t, nil)
	r = statusJSON(t, []string{"DAEMON_HOME=" + other.dir, "DAEMON_NAME=" + daemonName}, "--home", h.dir)
	if r.Home != h.dir {
		t.Errorf("--home did not win over DAEMON_HOME: %q", r.Home)
	}
}

// The name cannot be guessed when genesis/bin holds two files, and the error says what to do.
func TestStatusNameNotInferable(t *testing.T) {
	t.Parallel()
	h := newHome(t, nil)
	installBin(t, h.root("genesis", "bin", "other"))
	_, errOut, code := cliRun(t, nil, "status", "--home", h.dir)
	if code == 0 || !strings.Contains(errOut, "DAEMON_NAME") || !strings.Contains(errOut, "--name") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if _, _, code := cliRun(t, nil, "status", "--home", h.dir, "--name", daemonName); code != 0 {
		t.Fatalf("with --name: exit %d", code)
	}
}

// BenchmarkIdleListen is BenchmarkIdle with VIGIL_LISTEN set: /metrics is scraped once (by a
// keep-alive client, as Prometheus does), then vigil's context switches are counted over 10 s.
// "after-scrape" starts the window 1 s after the scrape; "settled" 35 s after it, once the
// connection's read and write deadlines (10 s, 30 s) have passed: the Go runtime deletes a
// stopped deadline timer lazily and may wake once at its old expiry, so the first window shows
// that one-off cost of the scrape, the second what the listener itself costs.
func BenchmarkIdleListen(b *testing.B) {
	for _, mode := range []struct {
		name   string
		settle time.Duration
	}{{"after-scrape", time.Second}, {"settled", 35 * time.Second}} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				h := newHome(b, nil)
				addr := freeAddr(b)
				v := h.start([]string{"run", "start"}, "UNSAFE_SKIP_BACKUP=true", "VIGIL_LISTEN="+addr)
				v.waitLog("genesis start start")
				time.Sleep(time.Second) // let start-up settle
				if code, _ := testutil.HTTPGet(b, "http://"+addr+"/metrics"); code != 200 {
					b.Fatalf("/metrics = %d", code)
				}
				time.Sleep(mode.settle)
				ctxsw, rss := idleCost(b, v)
				v.stopWant(0)
				b.ReportMetric(float64(ctxsw), "ctxsw/10s")
				b.ReportMetric(float64(rss)/1024, "RSS-MiB")
			}
		})
	}
}
