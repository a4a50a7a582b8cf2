package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/observe"
)

// Upgrades scheduled at a height, through the binary, with the fake node
// keeping real heights in data/application.db (goleveldb, as the SDK does)
// and honouring --halt-height: the old binary's last block must be exactly
// the plan's height and the new one's first the next.

// blockTime is the fake chain's block interval: short, yet long enough that
// a restart of the node (a few ms) never races a block on a loaded machine,
// since exactness never depends on it.
const blockTime = "20ms"

func chainCfg(extra obj) obj {
	c := obj{"blocks": blockTime}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// assertHandover checks that from made blocks up to exactly at and to made
// the next one: never a block past at on the old binary, none skipped.
func (h *nodeHome) assertHandover(from, to string, at int64) {
	h.t.Helper()
	old, next := h.commits(from), h.commits(to)
	if len(old) == 0 || len(next) == 0 {
		h.t.Fatalf("%s committed %v, %s committed %v\nlog:\n%s", from, old, to, next, strings.Join(h.fakeLog(), "\n"))
	}
	if last := old[len(old)-1]; last != at {
		h.t.Fatalf("%s's last block is %d, want exactly %d\nlog:\n%s", from, last, at, strings.Join(h.fakeLog(), "\n"))
	}
	for _, n := range old {
		if n > at {
			h.t.Fatalf("%s committed %d, past the scheduled height %d", from, n, at)
		}
	}
	if next[0] != at+1 {
		h.t.Fatalf("%s's first block is %d, want %d\nlog:\n%s", to, next[0], at+1, strings.Join(h.fakeLog(), "\n"))
	}
}

// lastCommit is the highest height any version committed, 0 before the first.
func (h *nodeHome) lastCommit() int64 {
	var top int64
	for _, l := range h.fakeLog() {
		if _, n, ok := strings.Cut(l, " commit "); ok {
			if v, err := strconv.ParseInt(n, 10, 64); err == nil && v > top {
				top = v
			}
		}
	}
	return top
}

// cli runs a vigil command that must succeed beside a running vigil (h.run
// checks that no node is left running: that is for vigil's runs).
func (h *nodeHome) cli(args ...string) {
	h.t.Helper()
	v := h.start(args)
	<-v.done
	if code := v.state.ExitCode(); code != 0 {
		v.dump()
		h.t.Fatalf("vigil %q: exit %d", args, code)
	}
}

// mustRun runs a vigil command that must succeed.
func (h *nodeHome) mustRun(args ...string) {
	h.t.Helper()
	if v, code := h.run(args); code != 0 {
		v.dump()
		h.t.Fatalf("vigil %q: exit %d", args, code)
	}
}

func (h *nodeHome) assertScheduled(want string) {
	h.t.Helper()
	v, code := h.run([]string{"show-manual-upgrades"})
	got := strings.Join(strings.Fields(v.stdoutText()), "")
	if code != 0 || got != want {
		h.t.Fatalf("show-manual-upgrades = %q (exit %d), want %q", got, code, want)
	}
}

// TestE2EScheduledUpgradeExact: add-upgrade --upgrade-height 8 before the
// start; the old binary runs with --halt-height=8, commits 8 and stops; v2
// starts without the flag and commits 9.
func TestE2EScheduledUpgradeExact(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": chainCfg(obj{"halt_exit_code": 130}), "v2": chainCfg(v2Quiet())})
	h.mustRun("add-upgrade", "v2", fakeBin, "--upgrade-height", "8", "--force")
	h.assertScheduled(`[{"name":"v2","time":"0001-01-01T00:00:00Z","height":8}]`)
	v := h.start([]string{"run", "start"})
	v.waitFor("v2 at height 12", func() bool { return h.lastCommit() >= 12 })
	h.assertHandover("genesis", "v2", 8)
	h.assertOrder("genesis start start --halt-height=8", "genesis halt at 8", "v2 start start")
	h.assertCurrent("upgrades/v2")
	h.assertMarker("v2", "v2", 8)
	v.stopWant(v2TermCode)
	h.assertScheduled(`[]`)
}

// TestE2EScheduledBatch: add-batch-upgrade with two plans; the node runs
// through both unattended, each handover exact.
func TestE2EScheduledBatch(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": chainCfg(nil), "v2": chainCfg(nil), "v3": chainCfg(v2Quiet())})
	list := fmt.Sprintf("v2:%s:6,v3:%s:11", fakeBin, fakeBin)
	h.mustRun("add-batch-upgrade", "--upgrade-list", list)
	v := h.start([]string{"run", "start"})
	v.waitFor("v3 at height 14", func() bool { return h.lastCommit() >= 14 && len(h.commits("v3")) > 0 })
	h.assertHandover("genesis", "v2", 6)
	h.assertHandover("v2", "v3", 11)
	h.assertOrder("genesis start start --halt-height=6", "v2 start start --halt-height=11", "v3 start start")
	h.assertCurrent("upgrades/v3")
	v.stopWant(v2TermCode)
	h.assertScheduled(`[]`)
}

// TestE2EScheduledWhileRunning: a plan added while the node runs restarts it
// with the new halt height; the handover is still exact.
func TestE2EScheduledWhileRunning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"event", nil},
		{"poll", []string{"VIGIL_WATCH_MODE=poll", "DAEMON_POLL_INTERVAL=100ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{"genesis": chainCfg(nil), "v2": chainCfg(v2Quiet())})
			v := h.start([]string{"run", "start"}, tc.env...)
			v.waitFor("genesis at height 3", func() bool { return h.lastCommit() >= 3 })
			at := h.lastCommit() + 40
			h.cli("add-upgrade", "v2", fakeBin, "--force", "--upgrade-height="+strconv.FormatInt(at, 10))
			v.waitMsg("schedule changed: restarting the node with its new halt height")
			v.waitFor("v2 committing", func() bool { return len(h.commits("v2")) > 2 })
			h.assertHandover("genesis", "v2", at)
			h.assertOrder("genesis start start", fmt.Sprintf("genesis start start --halt-height=%d", at), "v2 start start")
			v.stopWant(v2TermCode)
		})
	}
}

// TestE2EScheduledPastRunningNode: a height the running node is past, by
// its RPC, is refused by add-upgrade; written into the batch by hand, the
// running vigil leaves the node running rather than restart it into a
// refusal.
func TestE2EScheduledPastRunningNode(t *testing.T) {
	t.Parallel()
	rpc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":-1,"result":{"sync_info":{"latest_block_height":"1000"}}}`)
	}))
	defer rpc.Close()
	env := "VIGIL_RPC_ADDRESS=" + rpc.URL
	h := newHome(t, obj{"genesis": chainCfg(v2Quiet())})
	v := h.start([]string{"run", "start"}, env)
	v.waitFor("genesis at height 3", func() bool { return h.lastCommit() >= 3 })
	past := h.start([]string{"add-upgrade", "v3", fakeBin, "--upgrade-height", "20"}, env)
	<-past.done
	if code := past.state.ExitCode(); code == 0 || !strings.Contains(past.stderrText(), "upgrade v3 cannot be scheduled at height 20: the running node has committed at least height 999") {
		t.Fatalf("add-upgrade past the running node's height: exit %d, stderr %q", code, past.stderrText())
	}
	must(t, os.WriteFile(h.path("data", "upgrade-info.json.batch"), []byte(`[{"name":"v2","height":20}]`), 0o600))
	v.waitMsg("a scheduled upgrade is below the running node's height: the node is not restarted for it; remove it from the schedule")
	v.assertRunning()
	h.assertNoLog("genesis got TERM")
	v.stopWant(v2TermCode)
}

// TestE2EScheduledKilled: vigil is SIGKILLed after the plan is scheduled and
// before the height. A node that ignores the parent-death SIGTERM runs on to
// its halt height alone and stops there: the next vigil finds the height
// committed and upgrades, never starting the old binary again. A node that
// obeys it stops early: the next vigil starts it again with the same halt.
func TestE2EScheduledKilled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		genesis obj
		at      int64
		starts  int // of genesis, with the halt flag
	}{
		{"node halts alone", chainCfg(obj{"on_term": "ignore"}), 15, 1},
		{"node stops", chainCfg(nil), 25, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{"genesis": tc.genesis, "v2": chainCfg(v2Quiet())})
			at := strconv.FormatInt(tc.at, 10)
			h.mustRun("add-upgrade", "v2", fakeBin, "--force", "--upgrade-height", at)
			v := h.start([]string{"run", "start"})
			v.waitFor("genesis at height 3", func() bool { return h.lastCommit() >= 3 })
			v.killVigil()
			waitUntil(t, "the node exits", func() bool { return len(h.appPIDs()) == 0 })
			if halted := h.countLog("genesis halt at " + at); halted != 2-tc.starts {
				t.Fatalf("the orphaned node halted %d times at %s before the restart, want %d", halted, at, 2-tc.starts)
			}
			v = h.start([]string{"run", "start"})
			v.waitFor("v2 committing", func() bool { return len(h.commits("v2")) > 2 })
			h.assertHandover("genesis", "v2", tc.at)
			if n := len(h.logPrefixed("genesis start start --halt-height=" + at)); n != tc.starts || n != len(h.logPrefixed("genesis start start")) {
				t.Fatalf("genesis started %d times with --halt-height=%s, want %d (and never without)", n, at, tc.starts)
			}
			v.stopWant(v2TermCode)
		})
	}
}

// TestE2EScheduledOperatorHalt: the operator's own lower halt-height (in
// app.toml) wins and is a normal stop (exit 0, nothing switched, the plan
// kept); started again with a higher --halt-height (which overrides
// app.toml), the scheduled upgrade applies at its height. A plan the
// node is already past is refused with both heights, the node not started.
func TestE2EScheduledOperatorHalt(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": chainCfg(nil), "v2": chainCfg(v2Quiet())})
	h.mustRun("add-upgrade", "v2", fakeBin, "--force", "--upgrade-height", "10")
	// The operator's halt in app.toml: vigil's own flag would override it.
	must(t, os.MkdirAll(h.path("config"), 0o755))
	must(t, os.WriteFile(h.path("config", "app.toml"), []byte("pruning = \"default\"\nhalt-height = 5\n"), 0o644))
	v, code := h.run([]string{"run", "start"})
	if code != 0 {
		v.dump()
		t.Fatalf("vigil exit %d after the operator's halt, want 0", code)
	}
	if got := h.commits("genesis"); len(got) == 0 || got[len(got)-1] != 5 {
		t.Fatalf("genesis committed %v, want up to 5", got)
	}
	h.assertCurrent("genesis")
	h.assertScheduled(`[{"name":"v2","time":"0001-01-01T00:00:00Z","height":10}]`)

	v = h.start([]string{"run", "start", "--halt-height", "50"})
	v.waitFor("v2 committing", func() bool { return len(h.commits("v2")) > 1 })
	h.assertHandover("genesis", "v2", 10)
	v.stopWant(v2TermCode)

	// Past it: a plan at 3 with the chain at 12 or more. add-upgrade reads
	// the stopped node's height and refuses it; written by hand, vigil does.
	top := h.lastCommit()
	a, code := h.run([]string{"add-upgrade", "v3", fakeBin, "--upgrade-height", "3"})
	if code == 0 || !strings.Contains(a.stderrText(), fmt.Sprintf("upgrade v3 cannot be scheduled at height 3: the node has already committed height %d", top)) {
		t.Fatalf("add-upgrade below the node's height: exit %d, stderr %q", code, a.stderrText())
	}
	must(t, os.WriteFile(h.path("data", "upgrade-info.json.batch"), []byte(`[{"name":"v3","height":3}]`), 0o600))
	starts := len(h.logPrefixed("v2 start start"))
	v, code = h.run([]string{"run", "start"})
	if code == 0 || !strings.Contains(v.stderrText(), "v3") || !strings.Contains(v.stderrText(), "height 3") ||
		!strings.Contains(v.stderrText(), strconv.FormatInt(top, 10)) {
		v.dump()
		t.Fatalf("vigil exit %d; want a refusal naming v3, height 3 and %d", code, top)
	}
	if n := len(h.logPrefixed("v2 start start")); n != starts {
		t.Fatalf("the node was started past a scheduled height")
	}
}

// TestE2EScheduledBesideGovernance: a governance upgrade comes first (genesis
// → v2); v2 starts with the schedule's halt height and hands over to v3
// exactly there.
func TestE2EScheduledBesideGovernance(t *testing.T) {
	t.Parallel()
	gov := obj{"name": "v2", "height": 4, "after": "100ms", "write": "rename", "then": "stay"}
	h := newHome(t, obj{"genesis": chainCfg(obj{"halt": gov}), "v2": chainCfg(nil), "v3": chainCfg(v2Quiet())})
	h.mustRun("add-upgrade", "v3", fakeBin, "--upgrade-height", "30")
	v := h.start([]string{"run", "start"}, "UNSAFE_SKIP_BACKUP=true")
	v.waitFor("v3 committing", func() bool { return len(h.commits("v3")) > 1 })
	h.assertOrder("genesis start start --halt-height=30", "genesis got TERM", "v2 start start --halt-height=30", "v2 halt at 30", "v3 start start")
	h.assertHandover("v2", "v3", 30)
	h.assertCurrent("upgrades/v3")
	h.assertMarker("v2", "v2", 4)
	h.assertMarker("v3", "v3", 30)
	v.stopWant(v2TermCode)
}

// TestE2EScheduledHaltInStatus: the running vigil says which halt its node
// runs with, and for which plan, in the status that `vigil status` prints.
func TestE2EScheduledHaltInStatus(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": chainCfg(v2Quiet())})
	h.mustRun("add-upgrade", "v2", fakeBin, "--force", "--upgrade-height", "1000000")
	v := h.start([]string{"run", "start"})
	v.waitFor("the status to name the halt", func() bool {
		st, err := observe.ReadStatus((home.Layout{Home: h.dir}).StatusFile())
		return err == nil && st.App.Running && st.App.HaltHeight == 1000000 && st.App.HaltFor == "v2"
	})
	s := h.start([]string{"status"})
	<-s.done
	if code := s.state.ExitCode(); code != 0 || !strings.Contains(s.stdoutText(), "halts at       1000000, for the scheduled upgrade v2") {
		t.Fatalf("vigil status (exit %d):\n%s", code, s.stdoutText())
	}
	v.stopWant(v2TermCode)
}
