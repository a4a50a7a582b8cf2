package reactor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/plan"
	"github.com/vigilhq/vigil/process"
)

// The swap with real processes and files but no home of real binaries: the
// node is a shell started through the injected spawn, the upgrade binary a
// script whose pre-upgrade exit code the test picks.

// swapEnv is a reactor ready to swap genesis → v2, with what it did recorded.
type swapEnv struct {
	t      *testing.T
	r      *reactor
	rd     ready
	sigs   chan os.Signal
	mu     sync.Mutex
	spawns int
	events []event.Event
}

// nodeScript is the stand-in node: it ignores HUP, exits 0 on TERM after a delay ($1),
// and creates $2 once its trap is set.
const nodeScript = `trap "" HUP; trap "sleep $1; exit 0" TERM; touch "$2"; while :; do sleep 0.02; done`

func newSwapEnv(t *testing.T, preUpgradeExit int) *swapEnv {
	t.Helper()
	e := &swapEnv{t: t, r: testReactor(t), sigs: make(chan os.Signal, 4)}
	l := e.r.l
	bin := l.Bin(l.UpgradeDir("v2"))
	must(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	must(t, os.WriteFile(bin, []byte("#!/bin/sh\nexit "+strconv.Itoa(preUpgradeExit)+"\n"), 0o755))
	p := plan.Plan{Name: "v2", Height: 100}
	must(t, os.WriteFile(l.UpgradeInfoFile(), p.Marshal(), 0o644))
	e.rd = ready{target: target{plan: p, dir: "v2", seen: time.Now()}, bin: bin}
	e.r.cfg = Config{ShutdownGrace: 5 * time.Second, RestartAfterUpgrade: true, PreupgradeRetryPause: time.Millisecond,
		Observe: func(ev event.Event) { e.mu.Lock(); e.events = append(e.events, ev); e.mu.Unlock() }}
	e.r.spawn = func() (*process.Child, error) {
		e.mu.Lock()
		e.spawns++
		e.mu.Unlock()
		return e.node("0")
	}
	return e
}

// node starts a stand-in node that takes stopDelay to stop.
func (e *swapEnv) node(stopDelay string) (*process.Child, error) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		e.t.Skip("no sh:", err)
	}
	ready := filepath.Join(e.t.TempDir(), "ready")
	c, err := process.Start(process.Spec{Path: sh, Args: []string{"-c", nodeScript, "node", stopDelay, ready}})
	if err != nil {
		return nil, err
	}
	e.t.Cleanup(func() { c.Kill(); <-c.Done() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			return c, nil
		}
	}
	return nil, errors.New("the stand-in node did not start")
}

func (e *swapEnv) upgrade(child *process.Child) (*process.Child, process.Exit, error) {
	return e.r.upgrade(context.Background(), child, e.rd, e.sigs)
}

func (e *swapEnv) current() string {
	got, err := os.Readlink(e.r.l.Current())
	must(e.t, err)
	return got
}

func (e *swapEnv) steps() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, ev := range e.events {
		if ev.Kind == event.UpgradeStep {
			s = append(s, ev.Step)
		}
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSwapApplies(t *testing.T) {
	e := newSwapEnv(t, 0)
	old, err := e.node("0")
	must(t, err)
	next, exit, err := e.upgrade(old)
	if err != nil || next == nil || exit.Code != 0 {
		t.Fatalf("upgrade = %v, %v, %v; want a new node", next, exit, err)
	}
	if !old.Exit().Success() {
		t.Errorf("old node exit %v, want a graceful 0", old.Exit())
	}
	if got := e.current(); got != "upgrades/v2" {
		t.Errorf("current -> %s, want upgrades/v2", got)
	}
	m, err := readMarker(e)
	if err != nil || m == nil || m.Height != 100 {
		t.Errorf("marker = %+v, %v", m, err)
	}
	if e.spawns != 1 {
		t.Errorf("spawned %d nodes, want 1", e.spawns)
	}
	want := "stopping the node,running pre-upgrade hooks,switching current,starting the new binary"
	if got := strings.Join(e.steps(), ","); got != want {
		t.Errorf("steps %q, want %q", got, want)
	}
}

func readMarker(e *swapEnv) (*plan.Plan, error) {
	p, err := plan.Load(filepath.Join(e.r.l.UpgradeDir("v2"), plan.FileName))
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// A plan gone before the stop leaves the node alone; gone after it, the
// installed version starts again. Nothing is switched either way.
func TestSwapWithdrawn(t *testing.T) {
	t.Run("before the stop", func(t *testing.T) {
		e := newSwapEnv(t, 0)
		old, err := e.node("0")
		must(t, err)
		must(t, os.Remove(e.r.l.UpgradeInfoFile()))
		next, _, err := e.upgrade(old)
		if err != nil || next != old {
			t.Fatalf("upgrade = %v, %v; want the same node back", next, err)
		}
		select {
		case <-old.Done():
			t.Fatal("the node was stopped for a withdrawn plan")
		default:
		}
		if e.current() != "genesis" || e.spawns != 0 {
			t.Fatalf("current -> %s, %d spawns", e.current(), e.spawns)
		}
	})
	t.Run("after the stop", func(t *testing.T) {
		e := newSwapEnv(t, 0)
		script := filepath.Join(t.TempDir(), "pre.sh")
		must(t, os.WriteFile(script, []byte("#!/bin/sh\nrm '"+e.r.l.UpgradeInfoFile()+"'\n"), 0o755))
		e.r.cfg.CustomPreupgrade = script
		old, err := e.node("0")
		must(t, err)
		next, _, err := e.upgrade(old)
		if err != nil || next == nil || next == old {
			t.Fatalf("upgrade = %v, %v; want the installed version started again", next, err)
		}
		if e.current() != "genesis" || e.spawns != 1 {
			t.Fatalf("current -> %s, %d spawns; want genesis, 1", e.current(), e.spawns)
		}
	})
}

// A failed pre-upgrade leaves current where it was and starts nothing.
func TestSwapPreUpgradeFails(t *testing.T) {
	e := newSwapEnv(t, preUpgradeFailed)
	old, err := e.node("0")
	must(t, err)
	next, exit, err := e.upgrade(old)
	if err == nil || next != nil || exit.Code != 1 {
		t.Fatalf("upgrade = %v, %v, %v; want an error and exit 1", next, exit, err)
	}
	if e.current() != "genesis" || e.spawns != 0 {
		t.Fatalf("current -> %s, %d spawns; want genesis, 0", e.current(), e.spawns)
	}
}

// The operator's stop while the node stops aborts the upgrade: the node is
// not killed (a single stop), nothing is switched, nothing starts.
func TestSwapStopDuringStopAborts(t *testing.T) {
	e := newSwapEnv(t, 0)
	old, err := e.node("0.3")
	must(t, err)
	e.sigs <- syscall.SIGTERM
	next, exit, err := e.upgrade(old)
	if err != nil || next != nil {
		t.Fatalf("upgrade = %v, %v; want no node and no error", next, err)
	}
	if exit.Code != 0 || !old.Exit().Success() {
		t.Fatalf("exit %v, node %v; want the node's own graceful 0", exit, old.Exit())
	}
	if e.current() != "genesis" || e.spawns != 0 {
		t.Fatalf("current -> %s, %d spawns; want genesis, 0", e.current(), e.spawns)
	}
}

// The operator's stop during the steps (a slow hook) cancels them: the
// hook is ended, nothing is switched, vigil ends as by the signal.
func TestSwapStopDuringStepsCancels(t *testing.T) {
	e := newSwapEnv(t, 0)
	script := filepath.Join(t.TempDir(), "pre.sh")
	started := filepath.Join(t.TempDir(), "started")
	must(t, os.WriteFile(script, []byte("#!/bin/sh\ntouch '"+started+"'\nexec sleep 30\n"), 0o755))
	e.r.cfg.CustomPreupgrade = script
	go func() {
		for range 500 {
			if _, err := os.Stat(started); err == nil {
				e.sigs <- syscall.SIGINT
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	next, exit, err := e.upgrade(nil)
	if err != nil || next != nil || exit.Signal != syscall.SIGINT {
		t.Fatalf("upgrade = %v, %v, %v; want ended by SIGINT", next, exit, err)
	}
	if e.current() != "genesis" || e.spawns != 0 {
		t.Fatalf("current -> %s, %d spawns; want genesis, 0", e.current(), e.spawns)
	}
}

// The stop policy on a running node: a repeat within the debounce changes
// nothing, the grace kills a node that does not stop.
func TestStopperGraceKills(t *testing.T) {
	e := newSwapEnv(t, 0)
	e.r.cfg.ShutdownGrace = 200 * time.Millisecond
	c, err := e.node("30") // takes far longer than the grace
	must(t, err)
	st := e.r.newStopper(c)
	defer st.close()
	if !st.signal(syscall.SIGTERM) || st.signal(syscall.SIGHUP) {
		t.Fatal("TERM must count as a stop, HUP not")
	}
	if st.signal(syscall.SIGTERM); st.killed {
		t.Fatal("a TERM within the debounce killed the node")
	}
	select {
	case <-st.expired():
		st.expire()
	case <-time.After(10 * time.Second):
		t.Fatal("the grace never expired")
	}
	<-c.Done()
	if c.Exit().Signal != syscall.SIGKILL || !st.killed {
		t.Fatalf("node exit %v, killed %v; want SIGKILL after the grace", c.Exit(), st.killed)
	}
}
