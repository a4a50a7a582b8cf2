//go:build linux

package main

// End-to-end tests: the real vigil binary supervising testdata/fakeapp in a temporary
// $DAEMON_HOME. They assert on what an operator can observe: the order of events in
// fakeapp.log (written by every fake binary), the `current` symlink, the marker, backups, vigil's
// JSON log records and its exit status. No assertion depends on timing; every wait is bounded
// and only fails on a hang.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/testutil"
	"github.com/vigilhq/vigil/observe"
)

var (
	vigilBin string // built by TestMain
	fakeBin  string
)

const (
	daemonName  = "app"
	waitTimeout = 15 * time.Second // for a line to show up
	exitTimeout = 20 * time.Second // for vigil to exit
)

// nodeArgs are passed to `vigil run`; the space inside an argument checks they reach the node
// verbatim.
var nodeArgs = []string{"start", "--home", "/some where", "--x=1"}

func startLine(version string) string {
	return version + " start " + strings.Join(nodeArgs, " ")
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vigil-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	vigilBin = filepath.Join(dir, "vigil")
	fakeBin = filepath.Join(dir, daemonName)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, b := range []struct{ out, pkg string }{
		{vigilBin, "github.com/vigilhq/vigil/cmd/vigil"},
		{fakeBin, "github.com/vigilhq/vigil/testdata/fakeapp"},
	} {
		wg.Go(func() {
			out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// ---- home ----

type nodeHome struct {
	t   testing.TB
	dir string
	out string // vigil's stdout/stderr files live here, outside the home
}

func (h *nodeHome) path(elem ...string) string {
	return filepath.Join(append([]string{h.dir}, elem...)...)
}
func (h *nodeHome) root(elem ...string) string {
	return filepath.Join(append([]string{h.dir, "cosmovisor"}, elem...)...)
}

// newHome lays out a home as `vigil init` + `vigil add-upgrade v2` would: genesis and v2 binaries,
// current → genesis, data/, and the fake's behaviour file (nil = no file, a quiet node).
func newHome(t testing.TB, cfg map[string]any) *nodeHome {
	t.Helper()
	h := &nodeHome{t: t, dir: t.TempDir(), out: t.TempDir()}
	installBin(t, h.root("genesis", "bin", daemonName))
	installBin(t, h.root("upgrades", "v2", "bin", daemonName))
	must(t, os.Symlink("genesis", h.root("current")))
	must(t, os.Mkdir(h.path("data"), 0o755))
	if cfg != nil {
		h.writeConfig(cfg)
	}
	return h
}

// writeHook writes an executable script to cosmovisor/hooks/name (COSMOVISOR_CUSTOM_PREUPGRADE=hooks/name).
func (h *nodeHome) writeHook(name, script string) {
	must(h.t, os.MkdirAll(h.root("hooks"), 0o755))
	must(h.t, os.WriteFile(h.root("hooks", name), []byte(script), 0o755))
}

func (h *nodeHome) writeConfig(cfg map[string]any) {
	b, err := json.Marshal(cfg)
	must(h.t, err)
	must(h.t, os.WriteFile(h.path("fakeapp.json"), b, 0o644))
}

// installBin copies the fake app to dst through a temporary name and a rename, so a watcher never
// sees a half-written executable.
func installBin(t testing.TB, dst string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	src, err := os.Open(fakeBin)
	must(t, err)
	defer src.Close()
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	must(t, err)
	_, err = io.Copy(f, src)
	must(t, err)
	must(t, f.Close())
	must(t, os.Rename(tmp, dst))
}

// writeInfo installs data/upgrade-info.json atomically, as the test's own "valid write".
func (h *nodeHome) writeInfo(name string, height int64) {
	h.t.Helper()
	b, err := json.Marshal(map[string]any{"name": name, "time": "0001-01-01T00:00:00Z", "height": height, "info": ""})
	must(h.t, err)
	tmp := h.path("data", ".upgrade-info.tmp")
	must(h.t, os.WriteFile(tmp, b, 0o644))
	must(h.t, os.Rename(tmp, h.path("data", "upgrade-info.json")))
}

func (h *nodeHome) current() string {
	h.t.Helper()
	s, err := os.Readlink(h.root("current"))
	if err != nil {
		h.t.Fatalf("readlink current: %v", err)
	}
	return s
}

// listBackups lists the data backups in dir by name: the complete ones and the partial ones.
func listBackups(t testing.TB, dir string) (done, partial []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range ents {
		switch n := e.Name(); {
		case !strings.HasPrefix(n, "data-backup-"):
		case strings.HasSuffix(n, ".partial"):
			partial = append(partial, n)
		default:
			done = append(done, n)
		}
	}
	return done, partial
}

func (h *nodeHome) fakeLog() []string {
	b, err := os.ReadFile(h.path("fakeapp.log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		h.t.Fatalf("reading fakeapp.log: %v", err)
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// logWhere lists the fakeapp.log lines for which match holds.
func (h *nodeHome) logWhere(match func(line string) bool) []string {
	var out []string
	for _, l := range h.fakeLog() {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

func (h *nodeHome) countLog(line string) int {
	return len(h.logWhere(func(l string) bool { return l == line }))
}

// logPrefixed lists the fakeapp.log lines that start with prefix.
func (h *nodeHome) logPrefixed(prefix string) []string {
	return h.logWhere(func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// assertOrder checks that want appear in fakeapp.log in this order (other lines may interleave).
func (h *nodeHome) assertOrder(want ...string) {
	h.t.Helper()
	lines := h.fakeLog()
	i := 0
	for _, l := range lines {
		if i < len(want) && l == want[i] {
			i++
		}
	}
	if i < len(want) {
		h.t.Fatalf("fakeapp.log: expected %q in order; missing from %q on\nlog:\n%s", want, want[i], strings.Join(lines, "\n"))
	}
}

func (h *nodeHome) assertNoLog(line string) {
	h.t.Helper()
	if n := h.countLog(line); n != 0 {
		h.t.Fatalf("fakeapp.log has %q %d times, want none\nlog:\n%s", line, n, strings.Join(h.fakeLog(), "\n"))
	}
}

func (h *nodeHome) assertCurrent(want string) {
	h.t.Helper()
	if got := h.current(); got != want {
		h.t.Fatalf("current -> %q, want %q", got, want)
	}
}

// assertMarker checks upgrades/<dir>/upgrade-info.json names the plan.
func (h *nodeHome) assertMarker(dir, name string, height int64) {
	h.t.Helper()
	b, err := os.ReadFile(h.root("upgrades", dir, "upgrade-info.json"))
	if err != nil {
		h.t.Fatalf("marker: %v", err)
	}
	var m struct {
		Name   string `json:"name"`
		Height int64  `json:"height"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		h.t.Fatalf("marker %s: %v", b, err)
	}
	if m.Name != name || m.Height != height {
		h.t.Fatalf("marker = %s, want name %q height %d", b, name, height)
	}
}

// appPIDs lists running processes whose executable lives under this home's cosmovisor/.
func (h *nodeHome) appPIDs() []int {
	prefix := h.root() + "/"
	return livePIDs(func(pid int) bool {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		return err == nil && strings.HasPrefix(exe, prefix)
	})
}

// pidAlive reports whether pid runs and is not a zombie.
func pidAlive(pid int) bool { return syscall.Kill(pid, 0) == nil && !testutil.IsZombie(pid) }

// livePIDs lists the running (not zombie) processes other than this test for which keep holds.
func livePIDs(keep func(pid int) bool) []int {
	var out []int
	for _, pid := range testutil.PIDs() {
		if pid != os.Getpid() && keep(pid) && !testutil.IsZombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// ---- vigil process ----

type vigilProc struct {
	t      testing.TB
	h      *nodeHome
	cmd    *exec.Cmd
	stdout string
	stderr string
	done   chan struct{}
	state  *os.ProcessState
}

// baseEnv is a clean environment: only PATH, HOME and what the test adds.
func (h *nodeHome) baseEnv(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"DAEMON_HOME=" + h.dir,
		"DAEMON_NAME=" + daemonName,
		"COSMOVISOR_LOG_FORMAT=json",
	}
	return append(env, extra...)
}

var procSeq struct {
	sync.Mutex
	n int
}

// start runs `vigil <args...>` with the clean env plus extra (later entries win).
func (h *nodeHome) start(args []string, extra ...string) *vigilProc {
	h.t.Helper()
	return h.startWrapped(nil, args, extra...)
}

// startWrapped is start with vigil run under a wrapper command (unshare, a
// shell that mounts something first): wrapper… vigil args…. nil runs vigil
// itself. Signals sent with v.signal reach the wrapper.
func (h *nodeHome) startWrapped(wrapper, args []string, extra ...string) *vigilProc {
	h.t.Helper()
	return h.startArgv(append(append(slices.Clone(wrapper), vigilBin), args...), extra...)
}

// startArgv runs argv (vigil, or a program standing in for it) as start does.
func (h *nodeHome) startArgv(argv []string, extra ...string) *vigilProc {
	h.t.Helper()
	procSeq.Lock()
	procSeq.n++
	n := procSeq.n
	procSeq.Unlock()
	v := &vigilProc{
		t: h.t, h: h, done: make(chan struct{}),
		stdout: filepath.Join(h.out, fmt.Sprintf("vigil-%d.stdout", n)),
		stderr: filepath.Join(h.out, fmt.Sprintf("vigil-%d.stderr", n)),
	}
	so, err := os.Create(v.stdout)
	must(h.t, err)
	se, err := os.Create(v.stderr)
	must(h.t, err)
	v.cmd = exec.Command(argv[0], argv[1:]...)
	v.cmd.Env = h.baseEnv(extra...)
	v.cmd.Dir = h.out
	v.cmd.Stdout, v.cmd.Stderr = so, se
	// If the test binary dies, so does vigil (and, through vigil's own Pdeathsig, the node).
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		h.t.Fatalf("starting %v: %v", v.cmd.Args, err)
	}
	so.Close()
	se.Close()
	go func() {
		v.cmd.Wait()
		v.state = v.cmd.ProcessState
		close(v.done)
	}()
	h.t.Cleanup(func() {
		if v.exited() {
			return
		}
		v.kill()
		<-v.done
	})
	h.t.Cleanup(func() {
		if h.t.Failed() {
			v.dump()
		}
	})
	return v
}

// run starts vigil and waits for it to exit, returning its exit code.
func (h *nodeHome) run(args []string, extra ...string) (*vigilProc, int) {
	h.t.Helper()
	v := h.start(args, extra...)
	return v, v.wait()
}

func (v *vigilProc) exited() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the node(s) of this home and vigil: used only to clean up after a failure.
func (v *vigilProc) kill() {
	for _, pid := range v.h.appPIDs() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	v.cmd.Process.Kill()
}

func (v *vigilProc) dump() {
	so, _ := os.ReadFile(v.stdout)
	se, _ := os.ReadFile(v.stderr)
	v.t.Logf("vigil %q\n--- stdout ---\n%s--- stderr ---\n%s--- fakeapp.log ---\n%s",
		v.cmd.Args[1:], so, se, strings.Join(v.h.fakeLog(), "\n"))
}

// wait waits (bounded) for vigil to exit and returns its exit code (-1 if killed by a signal). It
// also checks that vigil did not leave a node running behind it.
func (v *vigilProc) wait() int {
	v.t.Helper()
	select {
	case <-v.done:
	case <-time.After(exitTimeout):
		v.kill()
		<-v.done
		v.t.Fatalf("vigil did not exit within %v", exitTimeout)
	}
	if pids := v.h.appPIDs(); len(pids) > 0 {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		v.t.Fatalf("vigil exited (%v) but left the node running: pids %v", v.state, pids)
	}
	return v.state.ExitCode()
}

func (v *vigilProc) signal(s syscall.Signal) {
	v.t.Helper()
	if err := v.cmd.Process.Signal(s); err != nil {
		v.t.Fatalf("signal %v to vigil: %v", s, err)
	}
}

// stop sends SIGTERM and returns vigil's exit code.
func (v *vigilProc) stop() int {
	v.t.Helper()
	v.signal(syscall.SIGTERM)
	return v.wait()
}

// stopWant stops vigil (SIGTERM) and fails the test unless it exits with code.
func (v *vigilProc) stopWant(code int) {
	v.t.Helper()
	if got := v.stop(); got != code {
		v.t.Fatalf("vigil exit code %d, want %d", got, code)
	}
}

// killVigil SIGKILLs vigil alone (not its node) and waits until it is reaped.
func (v *vigilProc) killVigil() {
	v.t.Helper()
	if err := v.cmd.Process.Kill(); err != nil {
		v.t.Fatalf("SIGKILL vigil: %v", err)
	}
	select {
	case <-v.done:
	case <-time.After(exitTimeout):
		v.t.Fatal("vigil not reaped after SIGKILL")
	}
}

func (v *vigilProc) stderrText() string {
	b, _ := os.ReadFile(v.stderr)
	return string(b)
}

func (v *vigilProc) stdoutText() string {
	b, _ := os.ReadFile(v.stdout)
	return string(b)
}

// records parses vigil's JSON log lines; other lines are skipped.
func (v *vigilProc) records() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(v.stderrText()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func (v *vigilProc) countMsg(msg string) int {
	n := 0
	for _, r := range v.records() {
		if r["msg"] == msg {
			n++
		}
	}
	return n
}

func (v *vigilProc) hasLevel(level string) bool {
	for _, r := range v.records() {
		if r["level"] == level {
			return true
		}
	}
	return false
}

func (v *vigilProc) assertMsgs(msgs ...string) {
	v.t.Helper()
	for _, m := range msgs {
		if v.countMsg(m) == 0 {
			v.t.Errorf("vigil logged no %q record", m)
		}
	}
}

// waitFor polls cond until it holds; it fails the test on timeout or if vigil exits first.
func (v *vigilProc) waitFor(desc string, cond func() bool) {
	v.t.Helper()
	v.waitForT(desc, waitTimeout, cond)
}

func (v *vigilProc) waitForT(desc string, limit time.Duration, cond func() bool) {
	v.t.Helper()
	if pollUntil(v, limit, cond) {
		return
	}
	if v.exited() {
		v.t.Fatalf("vigil exited (%v) while waiting for %s", v.state, desc)
	}
	v.t.Fatalf("timed out after %v waiting for %s", limit, desc)
}

// pollUntil checks cond every 10 ms until it holds (true) or limit has passed (false). Once v
// has exited cond is checked one last time; a nil v is a wait that does not depend on a vigil.
func pollUntil(v *vigilProc, limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if v != nil && v.exited() {
			return cond()
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitUntil polls cond (bounded), for waits that do not depend on a running vigil.
func waitUntil(t testing.TB, desc string, cond func() bool) {
	t.Helper()
	if !pollUntil(nil, waitTimeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, desc)
	}
}

func (v *vigilProc) waitLog(line string) {
	v.t.Helper()
	v.waitFor(fmt.Sprintf("fakeapp.log line %q", line), func() bool { return v.h.countLog(line) > 0 })
}

func (v *vigilProc) waitMsg(msg string) {
	v.t.Helper()
	v.waitFor(fmt.Sprintf("vigil log record %q", msg), func() bool { return v.countMsg(msg) > 0 })
}

func (v *vigilProc) assertRunning() {
	v.t.Helper()
	if v.exited() {
		v.t.Fatalf("vigil exited (%v), want it running", v.state)
	}
}

// assertHeld checks that vigil runs on without having touched the node: genesis got no SIGTERM
// and `current` still names it.
func (v *vigilProc) assertHeld() {
	v.t.Helper()
	v.assertRunning()
	v.h.assertNoLog("genesis got TERM")
	v.h.assertCurrent("genesis")
}

// applyV2 writes the plan for v2 at height 100 and checks that v2 starts and is current, and that
// vigil then stops with v2's exit status.
func (v *vigilProc) applyV2() {
	v.t.Helper()
	v.h.writeInfo("v2", 100)
	v.waitLog(startLine("v2"))
	v.h.assertCurrent("upgrades/v2")
	v.stopWant(v2TermCode)
}

// recordIndex is the index of the first vigil log record with msg, or -1.
func (v *vigilProc) recordIndex(msg string) int {
	return slices.IndexFunc(v.records(), func(r map[string]any) bool { return r["msg"] == msg })
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ---- behaviours ----

type obj = map[string]any

const v2TermCode = 7 // distinctive: proves vigil returns the node's own status

func haltCfg(write, then string) obj {
	return obj{"name": "v2", "height": 100, "after": "50ms", "write": write, "then": then}
}

func v2Quiet() obj { return obj{"term_exit_code": v2TermCode} }

// ---- tests ----

func TestE2EUpgrade(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		write string
		env   []string
	}{
		{"inplace", "inplace", nil},
		{"rename", "rename", nil},
		{"halves", "halves", nil},
		{"poll", "inplace", []string{"VIGIL_WATCH_MODE=poll", "DAEMON_POLL_INTERVAL=100ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{"genesis": obj{"halt": haltCfg(tc.write, "stay")}, "v2": v2Quiet()})
			v := h.start(append([]string{"run"}, nodeArgs...), append([]string{"UNSAFE_SKIP_BACKUP=true"}, tc.env...)...)
			v.waitLog(startLine("v2"))
			h.assertOrder(startLine("genesis"), "genesis got TERM", "v2 pre-upgrade", startLine("v2"))
			h.assertCurrent("upgrades/v2")
			h.assertMarker("v2", "v2", 100)
			// The node prints this right after logging its start line.
			v.waitFor("v2's stdout on vigil's stdout", func() bool { return strings.Contains(v.stdoutText(), "v2 running") })
			v.assertMsgs("upgrade detected", "stopping app", "app stopped", "switched", "app started")
			v.stopWant(v2TermCode)
			h.assertOrder(startLine("v2"), "v2 got TERM")
			if n := h.countLog(startLine("v2")); n != 1 {
				t.Fatalf("v2 started %d times, want 1", n)
			}
			if _, err := os.Stat(h.path("data", "upgrade-info.json")); err != nil {
				t.Fatalf("data/upgrade-info.json: %v", err)
			}

			if tc.name != "inplace" {
				return
			}
			// A restart after the upgrade must not upgrade again: the marker says v2 is applied.
			v = h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
			v.waitFor("v2 started a second time", func() bool { return h.countLog(startLine("v2")) == 2 })
			if n := h.countLog("v2 pre-upgrade"); n != 1 {
				t.Fatalf("v2 pre-upgrade ran %d times, want 1 (restart re-applied the upgrade)", n)
			}
			h.assertCurrent("upgrades/v2")
			v.stopWant(v2TermCode)
		})
	}
}

func TestE2ENoRestartAfterUpgrade(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
	v, code := h.run(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true", "DAEMON_RESTART_AFTER_UPGRADE=false")
	if code != 0 {
		t.Fatalf("vigil exit code %d, want 0", code)
	}
	h.assertOrder(startLine("genesis"), "genesis got TERM", "v2 pre-upgrade")
	h.assertNoLog(startLine("v2"))
	h.assertCurrent("upgrades/v2")
	h.assertMarker("v2", "v2", 100)
	v.assertMsgs("switched")
	// The upgrade counts as done although no new binary was started.
	st, err := observe.ReadStatus((home.Layout{Home: h.dir}).StatusFile())
	must(t, err)
	if st.LastUpgrade == nil || st.LastUpgrade.Name != "v2" || st.LastUpgrade.Result != observe.UpgradeDone {
		t.Fatalf("status file's last upgrade = %+v, want v2 done", st.LastUpgrade)
	}
}

func TestE2EBackup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		backupDir bool
	}{{"home", false}, {"backup-dir", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
			must(t, os.MkdirAll(h.path("data", "blockstore.db"), 0o755))
			payload := bytes.Repeat([]byte("block\n"), 10000)
			must(t, os.WriteFile(h.path("data", "blockstore.db", "000001.log"), payload, 0o644))
			dest := h.dir
			var extra []string
			if tc.backupDir {
				dest = t.TempDir()
				extra = append(extra, "DAEMON_DATA_BACKUP_DIR="+dest)
			}
			v := h.start(append([]string{"run"}, nodeArgs...), extra...)
			v.waitLog(startLine("v2"))
			h.assertCurrent("upgrades/v2")
			v.assertMsgs("backup done")

			backups, err := filepath.Glob(filepath.Join(dest, "data-backup-v2-100-*"))
			must(t, err)
			var done []string
			for _, b := range backups {
				if strings.HasSuffix(b, ".partial") {
					t.Errorf("a .partial backup was left behind: %s", b)
				} else {
					done = append(done, b)
				}
			}
			if len(done) != 1 {
				t.Fatalf("backups in %s: %q, want exactly one data-backup-v2-100-*", dest, backups)
			}
			got, err := os.ReadFile(filepath.Join(done[0], "blockstore.db", "000001.log"))
			if err != nil {
				t.Fatalf("backup lacks data/blockstore.db/000001.log: %v", err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("backup copy differs: %d bytes, want %d", len(got), len(payload))
			}
			if _, err := os.Stat(filepath.Join(done[0], "upgrade-info.json")); err != nil {
				t.Fatalf("backup lacks upgrade-info.json: %v", err)
			}
			// The backup is taken after the node stopped: genesis' TERM precedes v2's pre-upgrade.
			h.assertOrder("genesis got TERM", "v2 pre-upgrade", startLine("v2"))
			v.stopWant(v2TermCode)
		})
	}
}

func TestE2EPreUpgrade(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		codes      []int
		maxRetries string
		ok         bool
		calls      int
	}{
		{"not-implemented", []int{1}, "", true, 1},
		{"fail-30", []int{30}, "", false, 1},
		{"retry-31-then-ok", []int{31, 31, 0}, "2", true, 3},
		{"retry-31-exhausted", []int{31, 31, 31}, "1", false, 2},
		{"killed-by-signal", []int{-1}, "", false, 1},
		{"other-code", []int{2}, "", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v2 := v2Quiet()
			v2["pre_upgrade"] = tc.codes
			h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2})
			env := []string{"UNSAFE_SKIP_BACKUP=true"}
			if tc.maxRetries != "" {
				env = append(env, "DAEMON_PREUPGRADE_MAX_RETRIES="+tc.maxRetries)
			}
			v := h.start(append([]string{"run"}, nodeArgs...), env...)
			if tc.ok {
				v.waitLog(startLine("v2"))
				h.assertCurrent("upgrades/v2")
				if n := h.countLog("v2 pre-upgrade"); n != tc.calls {
					t.Fatalf("pre-upgrade ran %d times, want %d", n, tc.calls)
				}
				v.stopWant(v2TermCode)
				return
			}
			if code := v.wait(); code != 1 {
				t.Fatalf("vigil exit code %d, want 1 for a failed pre-upgrade", code)
			}
			h.assertOrder(startLine("genesis"), "genesis got TERM", "v2 pre-upgrade")
			h.assertNoLog(startLine("v2"))
			h.assertCurrent("genesis")
			if n := h.countLog("v2 pre-upgrade"); n != tc.calls {
				t.Fatalf("pre-upgrade ran %d times, want %d", n, tc.calls)
			}
			v.assertMsgs("upgrade failed")
		})
	}
}

func TestE2ECustomPreUpgrade(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" > custom.out\npwd >> custom.out\necho \"custom $1 $2\" >> fakeapp.log\n"
	h.writeHook("pre.sh", script)
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true", "COSMOVISOR_CUSTOM_PREUPGRADE=hooks/pre.sh")
	v.waitLog(startLine("v2"))
	b, err := os.ReadFile(h.path("custom.out"))
	if err != nil {
		t.Fatalf("custom pre-upgrade did not run in $DAEMON_HOME: %v", err)
	}
	if got, want := string(b), "v2 100\n"+h.dir+"\n"; got != want {
		t.Fatalf("custom.out = %q, want %q (args <name> <height>, cwd $DAEMON_HOME)", got, want)
	}
	h.assertOrder("genesis got TERM", "custom v2 100", "v2 pre-upgrade", startLine("v2"))
	v.stopWant(v2TermCode)
}

func TestE2EPendingAtStart(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"v2": v2Quiet()})
	h.writeInfo("v2", 100)
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
	v.waitLog(startLine("v2"))
	h.assertNoLog(startLine("genesis"))
	h.assertOrder("v2 pre-upgrade", startLine("v2"))
	h.assertCurrent("upgrades/v2")
	h.assertMarker("v2", "v2", 100)
	v.stopWant(v2TermCode)
}

func TestE2EAlreadyApplied(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"v2": v2Quiet()})
	h.writeInfo("v2", 100)
	b, _ := os.ReadFile(h.path("data", "upgrade-info.json"))
	must(t, os.WriteFile(h.root("upgrades", "v2", "upgrade-info.json"), b, 0o644))
	must(t, os.Remove(h.root("current")))
	must(t, os.Symlink("upgrades/v2", h.root("current")))
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
	v.waitLog(startLine("v2"))
	h.assertNoLog("v2 pre-upgrade")
	h.assertNoLog(startLine("genesis"))
	v.stopWant(v2TermCode)
}

func TestE2EAppExitsAfterHalt(t *testing.T) {
	t.Parallel()
	for _, code := range []int{1, 0} {
		t.Run(fmt.Sprintf("exit-%d", code), func(t *testing.T) {
			t.Parallel()
			halt := haltCfg("inplace", "exit")
			halt["after"] = "0s"
			// The node ignores TERM so that it exits on its own with code, however fast vigil
			// reacts to the file it wrote just before (vigil's stop would otherwise end it).
			h := newHome(t, obj{"genesis": obj{"halt": halt, "exit_code": code, "on_term": "ignore"}, "v2": v2Quiet()})
			v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
			v.waitLog(startLine("v2"))
			h.assertOrder(startLine("genesis"), "genesis halt v2", "v2 pre-upgrade", startLine("v2"))
			h.assertCurrent("upgrades/v2")
			h.assertMarker("v2", "v2", 100)
			if got := v.stop(); got != v2TermCode {
				t.Fatalf("vigil exit code %d, want %d", got, v2TermCode)
			}
		})
	}
}

func TestE2EAppExitsWithoutUpgrade(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"exit_after": "100ms", "exit_code": 3}})
	_, code := h.run(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
	if code != 3 {
		t.Fatalf("vigil exit code %d, want the node's 3", code)
	}
	h.assertCurrent("genesis")
	h.assertNoLog("v2 pre-upgrade")
	if n := h.countLog(startLine("genesis")); n != 1 {
		t.Fatalf("genesis started %d times, want 1 (no restart on a crash)", n)
	}
}

func TestE2EGraceKill(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay"), "on_term": "ignore"}, "v2": v2Quiet()})
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true", "DAEMON_SHUTDOWN_GRACE=500ms")
	v.waitLog(startLine("v2"))
	h.assertOrder(startLine("genesis"), "genesis got TERM", "v2 pre-upgrade", startLine("v2"))
	h.assertCurrent("upgrades/v2")
	v.stopWant(v2TermCode)
}

// TestE2EBadUpgradeInfo: garbage in upgrade-info.json gets one warning and changes nothing; a
// later valid write still triggers the upgrade.
func TestE2EBadUpgradeInfo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, content string }{
		{"malformed", `{"name":"v2","height":`},
		{"empty", ``},
		{"height-0", `{"name":"v2","time":"0001-01-01T00:00:00Z","height":0,"info":""}`},
		{"no-name", `{"time":"0001-01-01T00:00:00Z","height":100,"info":""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Renamed into place, so vigil sees exactly one bad version of the file.
			halt := obj{"name": "bad", "height": 100, "after": "50ms", "write": "rename", "then": "stay", "content": tc.content}
			h := newHome(t, obj{"genesis": obj{"halt": halt}, "v2": v2Quiet()})
			v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
			v.waitLog("genesis halt bad")
			v.waitMsg("invalid upgrade-info.json")
			v.assertHeld()
			if pids := h.appPIDs(); len(pids) != 1 {
				t.Fatalf("node processes %v, want exactly one (genesis)", pids)
			}

			h.writeInfo("v2", 100)
			v.waitLog(startLine("v2"))
			h.assertOrder(startLine("genesis"), "genesis got TERM", "v2 pre-upgrade", startLine("v2"))
			h.assertCurrent("upgrades/v2")
			if n := v.countMsg("invalid upgrade-info.json"); n != 1 {
				t.Errorf("%d \"invalid upgrade-info.json\" warnings, want 1", n)
			}
			v.stopWant(v2TermCode)
		})
	}
}

func TestE2EEscapingName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"..", "../v2"} {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			t.Parallel()
			content, _ := json.Marshal(obj{"name": name, "time": "0001-01-01T00:00:00Z", "height": 100, "info": ""})
			halt := obj{"name": "bad", "height": 100, "after": "50ms", "write": "rename", "then": "stay", "content": string(content)}
			h := newHome(t, obj{"genesis": obj{"halt": halt}, "v2": v2Quiet()})
			v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
			v.waitLog("genesis halt bad")
			v.waitFor("an ERROR record refusing the name", func() bool { return v.hasLevel("ERROR") })
			v.assertHeld()
			if _, err := os.Lstat(h.path("cosmovisor", "upgrades", "..", "upgrade-info.json")); err == nil {
				t.Errorf("a marker was written outside upgrades/")
			}
			v.applyV2()
		})
	}
}

func TestE2EMissingBinary(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
	must(t, os.RemoveAll(h.root("upgrades", "v2")))
	want := h.root("upgrades", "v2", "bin", daemonName)
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true")
	v.waitLog("genesis halt v2")
	v.waitFor("an error naming "+want, func() bool { return strings.Contains(v.stderrText(), want) })
	v.assertHeld()
	if pids := h.appPIDs(); len(pids) != 1 {
		t.Fatalf("node processes %v, want exactly one (genesis)", pids)
	}

	installBin(t, want)
	// vigil retries with backoff; allow for a long-ish retry interval.
	v.waitForT("v2 to start after the binary was installed", 45*time.Second, func() bool { return h.countLog(startLine("v2")) > 0 })
	h.assertOrder(startLine("genesis"), "genesis got TERM", "v2 pre-upgrade", startLine("v2"))
	h.assertCurrent("upgrades/v2")
	v.stopWant(v2TermCode)
}

func TestE2ESignals(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"term_exit_code": 5}})
	v := h.start(append([]string{"run"}, nodeArgs...))
	v.waitLog(startLine("genesis"))
	for _, s := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGHUP, "HUP"}, {syscall.SIGUSR1, "USR1"}, {syscall.SIGUSR2, "USR2"}, {syscall.SIGQUIT, "QUIT"}, {syscall.SIGINT, "INT"}} {
		v.signal(s.sig)
		v.waitLog("genesis got " + s.name)
		v.assertRunning()
	}
	v.stopWant(5)
	h.assertOrder("genesis got INT", "genesis got TERM")
}

func TestE2ESecondTermKills(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"on_term": "ignore"}})
	v := h.start(append([]string{"run"}, nodeArgs...), "DAEMON_SHUTDOWN_GRACE=1m")
	v.waitLog(startLine("genesis"))
	v.signal(syscall.SIGTERM)
	v.waitLog("genesis got TERM")
	v.assertRunning() // the node ignores TERM and the grace is long: vigil must still wait for it
	// A repeat within a second counts as the same request (`kill; kill`); a deliberate second
	// TERM comes later than that.
	time.Sleep(1200 * time.Millisecond)
	v.signal(syscall.SIGTERM)
	if code := v.wait(); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("vigil exit code %d, want %d (node killed by SIGKILL)", code, 128+int(syscall.SIGKILL))
	}
}

func TestE2EStartErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(h *nodeHome) []string // returns extra env
		inErr string
	}{
		{"current-is-dir", func(h *nodeHome) []string {
			must(h.t, os.Remove(h.root("current")))
			installBin(h.t, h.root("current", "bin", daemonName))
			return nil
		}, "/cosmovisor/current"},
		{"no-data-dir", func(h *nodeHome) []string {
			must(h.t, os.Remove(h.path("data")))
			return nil
		}, "/data"},
		{"relative-home", func(h *nodeHome) []string { return []string{"DAEMON_HOME=relative/home"} }, "DAEMON_HOME"},
		{"bad-bool", func(h *nodeHome) []string { return []string{"DAEMON_RESTART_AFTER_UPGRADE=maybe"} }, "DAEMON_RESTART_AFTER_UPGRADE"},
		{"bad-duration", func(h *nodeHome) []string { return []string{"DAEMON_POLL_INTERVAL=600"} }, "DAEMON_POLL_INTERVAL"},
		{"bad-watch-mode", func(h *nodeHome) []string { return []string{"VIGIL_WATCH_MODE=bogus"} }, "VIGIL_WATCH_MODE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{})
			extra := append([]string{"UNSAFE_SKIP_BACKUP=true"}, tc.setup(h)...)
			v, code := h.run(append([]string{"run"}, nodeArgs...), extra...)
			if code != 1 {
				t.Fatalf("vigil exit code %d, want 1", code)
			}
			if se := v.stderrText(); !strings.Contains(se, tc.inErr) {
				t.Fatalf("stderr does not mention %q:\n%s", tc.inErr, se)
			}
			if lines := h.fakeLog(); len(lines) != 0 {
				t.Fatalf("the node was started: %q", lines)
			}
		})
	}
}

func TestE2EInitAddUpgrade(t *testing.T) {
	t.Parallel()
	h := &nodeHome{t: t, dir: t.TempDir(), out: t.TempDir()}
	if _, code := h.run([]string{"init", fakeBin}); code != 0 {
		t.Fatalf("init: exit %d", code)
	}
	st, err := os.Stat(h.root("genesis", "bin", daemonName))
	if err != nil {
		t.Fatalf("init did not install genesis: %v", err)
	}
	if st.Mode()&0o111 == 0 {
		t.Fatalf("genesis binary not executable: %v", st.Mode())
	}
	h.assertCurrent("genesis")
	if st, err := os.Stat(h.path("data")); err != nil || !st.IsDir() {
		t.Fatalf("init did not create data/: %v", err)
	}

	v, code := h.run([]string{"version"})
	if code != 0 {
		t.Fatalf("version: exit %d", code)
	}
	v, code = h.run([]string{"config"})
	if code != 0 {
		t.Fatalf("config: exit %d", code)
	}
	if !strings.Contains(v.stdoutText()+v.stderrText(), h.dir) {
		t.Fatalf("config output does not show DAEMON_HOME")
	}

	v, code = h.run([]string{"add-upgrade", "V3", fakeBin, "--upgrade-height", "200"})
	if code != 0 {
		t.Fatalf("add-upgrade: exit %d", code)
	}
	if _, err := os.Stat(h.root("upgrades", "v3", "bin", daemonName)); err != nil {
		t.Fatalf("add-upgrade did not install upgrades/v3 (lowercased): %v", err)
	}
	if want := "upgrade v3 scheduled at height 200: the node will be started with --halt-height=200"; !strings.Contains(v.stdoutText(), want) {
		t.Fatalf("add-upgrade printed %q, want %q", v.stdoutText(), want)
	}
	// Scheduled, not pending: upgrade-info.json is the node's to write at
	// the halt (vigil applies one as soon as it reads it).
	if _, err := os.Stat(h.path("data", "upgrade-info.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("add-upgrade --upgrade-height wrote data/upgrade-info.json (%v)", err)
	}
	wantBatch := func(height int64) {
		t.Helper()
		b, err := os.ReadFile(h.path("data", "upgrade-info.json.batch"))
		want := fmt.Sprintf("[\n  {\n    \"name\": \"v3\",\n    \"time\": \"0001-01-01T00:00:00Z\",\n    \"height\": %d\n  }\n]\n", height)
		if err != nil || string(b) != want {
			t.Fatalf("data/upgrade-info.json.batch = %q (%v), want %q", b, err, want)
		}
		if v, code := h.run([]string{"show-manual-upgrades"}); code != 0 || v.stdoutText() != want {
			t.Fatalf("show-manual-upgrades: exit %d, printed %q, want %q", code, v.stdoutText(), want)
		}
	}
	wantBatch(200)
	if v, code := h.run([]string{"add-upgrade", "v3", fakeBin}); code == 0 || !strings.Contains(v.stderrText(), "file already exists") {
		t.Fatalf("add-upgrade over an existing binary without --force: exit %d, %s", code, v.stderrText())
	}
	if v, code := h.run([]string{"add-upgrade", "v3", fakeBin, "--force", "--upgrade-height=250"}); code != 0 {
		t.Fatalf("add-upgrade --force --upgrade-height=250: exit %d: %s", code, v.stderrText())
	}
	wantBatch(250)
	if v, code := h.run([]string{"add-upgrade", "v4", fakeBin, "--upgrade-height", "250"}); code == 0 || !strings.Contains(v.stderrText(), "upgrades v3 and v4 cannot both be scheduled at height 250") {
		t.Fatalf("a second upgrade at height 250: exit %d, %s", code, v.stderrText())
	}
	if _, err := os.Stat(h.root("upgrades", "v4")); err == nil {
		t.Fatal("the refused v4 was installed")
	}
	if _, code := h.run([]string{"add-upgrade", "v5", fakeBin, "--upgrade-height", "0"}); code == 0 {
		t.Fatal("add-upgrade --upgrade-height 0 succeeded")
	}
	if _, code := h.run([]string{"show-upgrade-info"}); code == 0 {
		t.Fatal("show-upgrade-info without data/upgrade-info.json succeeded")
	}
	h.writeInfo("v3", 250)
	if v, code := h.run([]string{"show-upgrade-info"}); code != 0 || !strings.Contains(v.stdoutText(), `"name":"v3"`) {
		t.Fatalf("show-upgrade-info: exit %d, printed %q", code, v.stdoutText())
	}
}
