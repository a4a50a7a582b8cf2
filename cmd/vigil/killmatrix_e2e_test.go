//go:build linux

package main

// The kill -9 fault-injection matrix of issue 12: vigil is SIGKILLed at each logged step of an
// upgrade, with nodes that are slow to stop and hold a LevelDB-style lock on data/LOCK, then
// started again on the same home. Whatever step the kill hit, the upgrade must end applied once,
// with never two nodes at once, one complete backup for the halt, `current` right and nothing
// left behind. Like the other e2e tests, no assertion depends on timing: the kill is triggered by
// what vigil logged (or the hook's marker file), the step it actually landed on is read back from
// the log and reported, and every wait is bounded and only fails on a hang.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	kmStopDelay    = "5s"  // every node, after SIGTERM (a slow node); well inside the grace
	kmGrace        = "30s" // DAEMON_SHUTDOWN_GRACE: no node is ever SIGKILLed for being slow
	kmRestartDelay = "1s"  // DAEMON_RESTART_DELAY, between "app stopped" and the backup: a kill lands there
	kmDataFiles    = 6000  // files in data/: the backup takes a while (a kill lands inside it)

	kmWait = 60 * time.Second
)

// kmHook is the COSMOVISOR_CUSTOM_PREUPGRADE script. It is slow to begin (0.5s: a kill at
// "backup done" lands before it works), then its work is a child process, as a real hook's
// migration tool would be; hook.started appears once that work is under way. The work takes 6s,
// so the pre-upgrade step is wide enough to land a kill in, and 0.5s once the test has created
// hook.fast before restarting vigil, so that the resumed upgrade is quick (a node the killed
// vigil left stopping is still there when it ends). First of all, the hook records in
// fakeapp.log whether the work of an earlier run is still alive: a hook that outlived the vigil
// that ran it, checked in place when the next run starts, without timing.
const kmHook = `#!/bin/sh
n=$(( $(cat hook.runs 2>/dev/null || echo 0) + 1 ))
echo "$n" > hook.runs
if [ -s hook.work.pid ]; then
	p=$(cat hook.work.pid)
	s=$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)
	if [ -n "$s" ] && [ "$s" != Z ] && [ "$(readlink /proc/$p/cwd)" = "$(pwd -P)" ]; then
		echo "hook overlap: run $n started while pid $p of an earlier run still works" >> fakeapp.log
	fi
fi
sleep 0.5
echo "hook start $1 $2 run $n" >> fakeapp.log
d=6
[ -e hook.fast ] && d=0.5
sh -c 'echo $$ > hook.work.pid; : > hook.started; sleep '"$d"'; echo "hook work done run '"$n"'" >> fakeapp.log'
echo "hook end run $n" >> fakeapp.log
`

// kmSteps are the progress points of an upgrade in vigil's log, in order; "hook running" has no
// record (the hook's marker file shows it).
var kmSteps = []struct{ label, msg string }{
	{"detected", "upgrade detected"},
	{"stopping", "stopping app"},
	{"stopped", "app stopped"},
	{"backup-started", "backup started"},
	{"backup-done", "backup done"},
	{"pre-upgrade", ""},
	{"hook-done", "custom pre-upgrade done"},
	{"switched", "switched"},
	{"started", "upgrade done"},
}

const kmPreUpgrade = 5 // index of the hook step in kmSteps

type kmRow struct {
	step, landed, atRestart, nodes, backups, run2, result string
}

func TestE2EKillMatrix(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		rows = map[string]kmRow{}
	)
	t.Cleanup(func() {
		t.Logf("kill matrix (node stop_delay %s, grace %s):", kmStopDelay, kmGrace)
		t.Logf("%-15s %-27s %-17s %-30s %-18s %-18s %s", "STEP", "LANDED", "AT RESTART", "NODES (fakeapp.log)", "BACKUPS", "RUN 2", "RESULT")
		for _, s := range kmSteps {
			if s.label == "hook-done" {
				continue
			}
			r, ok := rows[s.label]
			if !ok {
				continue
			}
			t.Logf("%-15s %-27s %-17s %-30s %-18s %-18s %s", r.step, r.landed, r.atRestart, r.nodes, r.backups, r.run2, r.result)
		}
	})
	// The scenarios mostly wait on slow nodes and hooks (little CPU): they all run side by side,
	// more of them than -parallel (GOMAXPROCS, 2 here) would allow, through concurrent t.Run.
	var wg sync.WaitGroup
	for _, s := range kmSteps {
		if s.label == "hook-done" {
			continue // not a kill point: the switch follows it at once
		}
		wg.Go(func() {
			t.Run(s.label, func(t *testing.T) {
				row := kmRow{step: s.label}
				defer func() {
					if row.result == "" {
						row.result = "FAIL: aborted (see the log)"
					}
					mu.Lock()
					rows[s.label] = row
					mu.Unlock()
				}()
				killMatrixCase(t, s.label, s.msg, &row)
			})
		})
	}
	wg.Wait()
}

func killMatrixCase(t *testing.T, step, msg string, row *kmRow) {
	// fail reports a broken invariant; the matrix shows its tag, (a)…(d) as in the issue.
	var problems []string
	fail := func(tag, format string, args ...any) {
		t.Helper()
		if !slices.Contains(problems, tag) {
			problems = append(problems, tag)
		}
		t.Errorf(format, args...)
	}

	genesis := obj{"halt": haltCfg("inplace", "stay"), "db_lock": true, "stop_delay": kmStopDelay}
	v2 := obj{"db_lock": true, "stop_delay": kmStopDelay, "term_exit_code": v2TermCode}
	h := newHome(t, obj{"genesis": genesis, "v2": v2})
	must(t, os.MkdirAll(h.path("data", "blockstore.db"), 0o755))
	block := []byte(strings.Repeat("block\n", 200))
	for i := range kmDataFiles {
		must(t, os.WriteFile(h.path("data", "blockstore.db", fmt.Sprintf("%06d.ldb", i)), block, 0o644))
	}
	h.writeHook("pre.sh", kmHook)
	env := []string{
		"UNSAFE_SKIP_BACKUP=false",
		"VIGIL_BACKUP_KEEP=0", // retention must not hide a second backup
		"DAEMON_SHUTDOWN_GRACE=" + kmGrace,
		"DAEMON_RESTART_DELAY=" + kmRestartDelay,
		"COSMOVISOR_CUSTOM_PREUPGRADE=hooks/pre.sh",
	}
	t.Cleanup(func() { kmKillHooks(h) })
	args := append([]string{"run"}, nodeArgs...)

	// Run 1: kill -9 vigil, and only vigil, the moment the step shows.
	v1 := h.start(args, env...)
	trigger := func() bool {
		switch step {
		case "pre-upgrade":
			_, err := os.Stat(h.path("hook.started"))
			return err == nil
		case "started":
			// The node is up, not only spawned: a node killed before it installed its
			// signal handlers dies at once, which would not test a slow stop.
			return v1.countMsg(msg) > 0 && h.countLog(startLine("v2")) > 0
		}
		return v1.countMsg(msg) > 0
	}
	if !pollUntil(v1, kmWait, trigger) {
		row.landed = "never"
		row.result = "FAIL: step not reached"
		t.Fatalf("vigil (%v) never reached step %s within %v", v1.state, step, kmWait)
	}
	must(t, v1.cmd.Process.Kill())
	select {
	case <-v1.done:
	case <-time.After(exitTimeout):
		t.Fatalf("SIGKILLed vigil not reaped within %v", exitTimeout)
	}
	row.landed = kmLanded(v1, h)
	t.Logf("kill at %s landed at %s", step, row.landed)
	pid1 := kmV2Pid(v1) // the v2 node the killed vigil started, 0 if none
	switchedRun1 := v1.countMsg("switched") > 0
	hookRunsRun1 := kmHookRuns(h)
	preRun1 := h.countLog("v2 pre-upgrade")
	nodesAlive, hooksAlive := kmNodePIDs(h), kmHookPIDs(h)
	row.atRestart = fmt.Sprintf("node %d, hook %d", len(nodesAlive), len(hooksAlive))

	// Run 2: same home, same environment, until v2 runs (or vigil gives up).
	must(t, os.WriteFile(h.path("hook.fast"), nil, 0o644))
	v := h.start(args, env...)
	lockHeld := func() int { return kmCountPrefix(h, "db lock held") }
	// vigil starts v2, then v2 logs its pid, or fails on the lock (only run 2's node can).
	ok := pollUntil(v, kmWait, func() bool { return kmV2Pid(v) != 0 }) &&
		pollUntil(v, kmWait, func() bool { return h.countLog(fmt.Sprintf("v2 pid %d", kmV2Pid(v))) > 0 || lockHeld() > 0 })
	if !ok && !v.exited() {
		fail("(b) v2 not up", "run 2: v2 not started within %v", kmWait)
	}
	code := -1
	if !v.exited() {
		v.signal(syscall.SIGTERM)
	}
	select {
	case <-v.done:
		code = v.state.ExitCode()
	case <-time.After(exitTimeout + 10*time.Second):
		v.kill()
		<-v.done
		fail("run 2 hung", "run 2: vigil did not exit within %v of SIGTERM", exitTimeout+10*time.Second)
	}
	row.run2 = fmt.Sprintf("exit %d", code)
	if code != v2TermCode {
		fail("run 2 exit code", "run 2: vigil exit code %d, want v2's %d (stopped by SIGTERM while v2 ran)", code, v2TermCode)
	}

	// (a) Never two nodes at once.
	lines := h.fakeLog()
	for _, l := range lines {
		if strings.Contains(l, "db lock held") {
			fail("(a) 2 nodes (db lock)", "two nodes at once: %q", l)
		}
	}
	for _, o := range kmOverlaps(lines) {
		fail("(a) 2 nodes (lifetimes)", "two nodes at once: %s", o)
	}
	gStarts, v2Starts := h.countLog(startLine("genesis")), h.countLog(startLine("v2"))
	pid2 := kmV2Pid(v)
	// The v2 nodes that got as far as logging their pid, by pid; a node the killed vigil had
	// just spawned may die of vigil's death signal before it logs anything.
	v2pids := map[string]int{}
	for _, l := range lines {
		if p, ok := strings.CutPrefix(l, "v2 pid "); ok {
			v2pids[p]++
		}
	}
	row.nodes = fmt.Sprintf("genesis %d, v2 %d, lock-fail %d", gStarts, v2Starts, lockHeld())
	if pid1 != 0 && v2pids[strconv.Itoa(pid1)] == 0 {
		row.landed += " (v2 died unlogged)"
	}

	// (b) The upgrade applied once.
	if got := h.current(); got != "upgrades/v2" {
		fail("(b) current", "current -> %q, want upgrades/v2", got)
	}
	var marker struct {
		Name   string `json:"name"`
		Height int64  `json:"height"`
	}
	if b, err := os.ReadFile(h.root("upgrades", "v2", "upgrade-info.json")); err != nil {
		fail("(b) marker", "marker: %v", err)
	} else if err := json.Unmarshal(b, &marker); err != nil || marker.Name != "v2" || marker.Height != 100 {
		fail("(b) marker", "marker = %s (%v), want name v2 height 100", b, err)
	}
	if gStarts != 1 {
		fail("(b) genesis restarted", "genesis started %d times, want 1 (never again once the halt is seen)", gStarts)
	}
	// v2 started once per vigil run that started it: run 2 always, run 1 if the kill came after.
	if pid2 == 0 || v2pids[strconv.Itoa(pid2)] != 1 {
		fail("(b) v2 of run 2 not started", "the v2 node of run 2 (pid %d) did not start (its pid line %d times, want 1)", pid2, v2pids[strconv.Itoa(pid2)])
	}
	for p, n := range v2pids {
		if (p != strconv.Itoa(pid1) && p != strconv.Itoa(pid2)) || n != 1 {
			fail("(b) v2 started twice", "v2 node pid %s started %d times; vigil started pids %d (run 1) and %d (run 2)", p, n, pid1, pid2)
		}
	}
	if len(v2pids) != v2Starts {
		fail("(b) v2 starts", "%d v2 start lines for %d v2 pids", v2Starts, len(v2pids))
	}
	if n := v1.countMsg("switched") + v.countMsg("switched"); n != 1 {
		fail("(b) switched twice", "switched %d times, want 1", n)
	}
	if switchedRun1 {
		if n := kmHookRuns(h); n != hookRunsRun1 {
			fail("(b) hook after switch", "custom pre-upgrade ran again after the switch (%d runs, %d before the restart)", n, hookRunsRun1)
		}
		if n := h.countLog("v2 pre-upgrade"); n != preRun1 {
			fail("(b) pre-upgrade after switch", "v2 pre-upgrade ran again after the switch (%d runs, %d before the restart)", n, preRun1)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "hook overlap") {
			fail("(d) hook outlived vigil", "the hook of the killed vigil outlived it: %q", l)
		}
	}

	// (c) One complete backup for the halt.
	done, partial := listBackups(t, h.dir)
	row.backups = fmt.Sprintf("%d done, %d partial", len(done), len(partial))
	if len(done) != 1 {
		fail("(c) backups", "%d complete backups for one halt %q, want 1 (backup done records: run 1 %d, run 2 %d)",
			len(done), done, v1.countMsg("backup done"), v.countMsg("backup done"))
	}

	// (d) No leftovers.
	if len(partial) > 0 {
		fail("(d) partial backup", "partial backups left: %q", partial)
	}
	for _, pat := range []string{
		h.root("upgrades", "*", ".upgrade-info.json.tmp-*"),
		h.root(".staging", "*", "lock"),
	} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			fail("(d) temp files", "leftovers: %q", m)
		}
	}
	if pids := kmNodePIDs(h); len(pids) > 0 {
		fail("(d) node left", "node processes left after vigil exited: %v", pids)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if pids := kmHookPIDs(h); len(pids) > 0 {
		fail("(d) hook left", "hook processes left after vigil exited: %v", pids)
	}

	if len(problems) == 0 {
		row.result = "ok"
	} else {
		row.result = "FAIL " + strings.Join(problems, ", ")
	}
}

// kmLanded is the last step a killed vigil reached, from its log and the hook's marker file.
func kmLanded(v *vigilProc, h *nodeHome) string {
	last := -1
	for _, r := range v.records() {
		for i, s := range kmSteps {
			if s.msg != "" && r["msg"] == s.msg && i > last {
				last = i
			}
		}
	}
	if _, err := os.Stat(h.path("hook.started")); err == nil && last < kmPreUpgrade {
		last = kmPreUpgrade
	}
	if last < 0 {
		return "before detection"
	}
	return kmSteps[last].label
}

// kmV2Pid is the pid of the v2 node this vigil logged starting, 0 if none.
func kmV2Pid(v *vigilProc) int {
	for _, r := range v.records() {
		if p, _ := r["path"].(string); r["msg"] == "app started" && strings.Contains(p, "/upgrades/v2/") {
			pid, _ := r["pid"].(float64)
			return int(pid)
		}
	}
	return 0
}

// kmCountPrefix counts the fakeapp.log lines that contain sub.
func kmCountPrefix(h *nodeHome, sub string) int {
	return len(h.logWhere(func(l string) bool { return strings.Contains(l, sub) }))
}

func kmHookRuns(h *nodeHome) int {
	b, _ := os.ReadFile(h.path("hook.runs"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

var kmLifeLine = regexp.MustCompile(`^(genesis|v2) (start|pid|exit)\b ?(.*)$`)

// kmOverlaps reads node lifetimes from fakeapp.log (start … exit N) and reports each start that
// came while another node had not logged its exit. Every node here stops on SIGTERM well within
// the grace, so each one logs its exit.
func kmOverlaps(lines []string) []string {
	var out []string
	var open []string // "<version> pid N" of the nodes started and not exited
	var last string
	for _, l := range lines {
		m := kmLifeLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		switch m[2] {
		case "start":
			if len(open) > 0 {
				out = append(out, fmt.Sprintf("%s started while %v had not exited", m[1], open))
			}
			last = m[1]
			open = append(open, m[1])
		case "pid":
			if len(open) > 0 && last == m[1] {
				open[len(open)-1] = m[1] + " pid " + m[3]
			}
		case "exit":
			i := slices.IndexFunc(open, func(o string) bool { return o == m[1] || strings.HasPrefix(o, m[1]+" ") })
			if i >= 0 {
				open = slices.Delete(open, i, i+1)
			}
		}
	}
	return out
}

// kmNodePIDs are the node processes of h (not `app pre-upgrade` runs).
func kmNodePIDs(h *nodeHome) []int {
	var out []int
	for _, pid := range h.appPIDs() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if a := strings.Split(string(b), "\x00"); len(a) > 1 && a[1] == "pre-upgrade" {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// kmHookPIDs are the live processes of the custom pre-upgrade hook: it alone runs in
// $DAEMON_HOME (vigil and the node run in h.out), and its children inherit that.
func kmHookPIDs(h *nodeHome) []int {
	dir, err := filepath.EvalSymlinks(h.dir)
	if err != nil {
		dir = h.dir
	}
	return livePIDs(func(pid int) bool {
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		return err == nil && cwd == dir
	})
}

func kmKillHooks(h *nodeHome) {
	for _, pid := range kmHookPIDs(h) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
