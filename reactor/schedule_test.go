package reactor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/plan"
	"github.com/vigilhq/vigil/process"
	"github.com/vigilhq/vigil/watcher"
)

// scheduleEnv is a reactor over a home with a schedule, whose node reports
// the committed height the test sets and is never really started.
type scheduleEnv struct {
	r         *reactor
	committed int64
	readErr   error
	reads     int
	spawns    int
}

func newScheduleEnv(t *testing.T, operatorHalt int64, scheduled ...plan.Plan) *scheduleEnv {
	t.Helper()
	e := &scheduleEnv{r: testReactor(t)}
	e.r.cfg = Config{Args: []string{"start", "--home", "/h"}, HaltHeight: operatorHalt}
	e.r.cfg.Committed = func() (int64, error) { e.reads++; return e.committed, e.readErr }
	e.r.spawn = func() (*process.Child, error) { e.spawns++; return nil, nil }
	if len(scheduled) > 0 {
		must(t, e.r.l.Schedule(scheduled, false))
	}
	return e
}

func TestGateHaltHeight(t *testing.T) {
	v2 := plan.Plan{Name: "v2", Height: 10}
	v3 := plan.Plan{Name: "v3", Height: 20}
	for _, tc := range []struct {
		desc      string
		operator  int64
		scheduled []plan.Plan
		want      int64
		forPlan   string // "" = the operator's halt
		args      []string
	}{
		{desc: "nothing scheduled", args: []string{"start", "--home", "/h"}},
		{desc: "nothing scheduled, operator's halt", operator: 7, want: 7, args: []string{"start", "--home", "/h"}},
		{desc: "the lowest plan", scheduled: []plan.Plan{v3, v2}, want: 10, forPlan: "v2",
			args: []string{"start", "--home", "/h", "--halt-height=10"}},
		{desc: "operator's halt below", operator: 6, scheduled: []plan.Plan{v2}, want: 6,
			args: []string{"start", "--home", "/h"}},
		{desc: "operator's halt above", operator: 50, scheduled: []plan.Plan{v2}, want: 10, forPlan: "v2",
			args: []string{"start", "--home", "/h", "--halt-height=10"}},
		{desc: "operator's halt at the plan: the plan applies", operator: 10, scheduled: []plan.Plan{v2}, want: 10, forPlan: "v2",
			args: []string{"start", "--home", "/h", "--halt-height=10"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			e := newScheduleEnv(t, tc.operator, tc.scheduled...)
			e.committed = 3
			if _, err := e.r.launch(); err != nil {
				t.Fatal(err)
			}
			h := e.r.halt
			if h.height != tc.want || (h.plan == nil) != (tc.forPlan == "") || (h.plan != nil && h.plan.Name != tc.forPlan) {
				t.Errorf("halt = %d for %v, want %d for %q", h.height, h.plan, tc.want, tc.forPlan)
			}
			if got := e.r.nodeArgs(); !slices.Equal(got, tc.args) {
				t.Errorf("node args = %q, want %q", got, tc.args)
			}
			if !slices.Equal(e.r.cfg.Args, []string{"start", "--home", "/h"}) {
				t.Errorf("the operator's args were changed: %q", e.r.cfg.Args)
			}
			if e.spawns != 1 {
				t.Errorf("%d starts, want 1", e.spawns)
			}
			if len(tc.scheduled) == 0 && e.reads != 0 {
				t.Errorf("the height was read %d times with nothing scheduled; want none (any backend works then)", e.reads)
			}
		})
	}
}

func TestGateDuePromotes(t *testing.T) {
	v2 := plan.Plan{Name: "v2", Height: 10, Info: "manual"}
	v3 := plan.Plan{Name: "v3", Height: 20}
	e := newScheduleEnv(t, 0, v2, v3)
	e.committed = 10
	if _, err := e.r.launch(); !errors.Is(err, errDue) {
		t.Fatalf("launch at the scheduled height = %v, want errDue", err)
	}
	if e.spawns != 0 {
		t.Fatalf("the old binary was started at its scheduled height")
	}
	got, err := plan.Load(e.r.l.UpgradeInfoFile())
	if err != nil || got != v2 {
		t.Fatalf("upgrade-info.json = %+v, %v; want %+v", got, err, v2)
	}
	left, err := e.r.l.Scheduled()
	if err != nil || len(left) != 1 || left[0] != v3 {
		t.Fatalf("schedule after the promotion = %v, %v; want only v3", left, err)
	}
}

// A run killed between the promotion's two writes leaves the plan in both
// files: the next start finishes the move, and the halt is the next plan's.
func TestGatePromotedLeftover(t *testing.T) {
	v2 := plan.Plan{Name: "v2", Height: 10}
	v3 := plan.Plan{Name: "v3", Height: 20}
	e := newScheduleEnv(t, 0, v2, v3)
	must(t, os.WriteFile(e.r.l.UpgradeInfoFile(), v2.Marshal(), 0o600))
	e.committed = 12
	if _, err := e.r.launch(); err != nil {
		t.Fatal(err)
	}
	if e.r.halt.height != 20 {
		t.Errorf("halt = %d, want 20 (v3)", e.r.halt.height)
	}
	left, err := e.r.l.Scheduled()
	if err != nil || len(left) != 1 || left[0] != v3 {
		t.Errorf("schedule = %v, %v; want only v3", left, err)
	}
}

func TestGateRefuses(t *testing.T) {
	v2 := plan.Plan{Name: "v2", Height: 10}
	t.Run("past the height", func(t *testing.T) {
		e := newScheduleEnv(t, 0, v2)
		e.committed = 11
		_, err := e.r.launch()
		if err == nil || !strings.Contains(err.Error(), "v2") || !strings.Contains(err.Error(), "10") || !strings.Contains(err.Error(), "11") {
			t.Fatalf("launch past the height = %v; want an error naming v2, 10 and 11", err)
		}
		if e.spawns != 0 {
			t.Fatal("the old binary was started past its scheduled height")
		}
		if _, err := os.Stat(e.r.l.UpgradeInfoFile()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("upgrade-info.json written for a missed plan: %v", err)
		}
	})
	t.Run("height unreadable", func(t *testing.T) {
		e := newScheduleEnv(t, 0, v2)
		e.readErr = errors.New("pebble database")
		if _, err := e.r.launch(); err == nil || !strings.Contains(err.Error(), "pebble database") || e.spawns != 0 {
			t.Fatalf("launch = %v with %d starts; want the read error and no start", err, e.spawns)
		}
	})
	t.Run("malformed schedule", func(t *testing.T) {
		e := newScheduleEnv(t, 0)
		must(t, os.WriteFile(e.r.l.BatchFile(), []byte(`[{"name":"v2","height":"x"}]`), 0o600))
		if _, err := e.r.launch(); err == nil || e.spawns != 0 {
			t.Fatalf("launch = %v with %d starts; want an error and no start", err, e.spawns)
		}
	})
}

type fixedChain struct {
	height int64
	err    error
}

func (c fixedChain) LatestHeight(context.Context) (int64, error) { return c.height, c.err }

// A schedule change restarts the running node with its new halt height,
// unless the node's latest block is already past it: restarted, the node
// would be refused.
func TestRescheduled(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		chain   ChainHeight
		restart bool
	}{
		{"no RPC", nil, true},
		{"RPC unreachable", fixedChain{err: errors.New("connection refused")}, true},
		{"below the plan", fixedChain{height: 5}, true},
		{"at the plan's next block: maybe not committed yet", fixedChain{height: 11}, true},
		{"past the plan", fixedChain{height: 12}, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			e := newScheduleEnv(t, 0)
			e.r.cfg.Chain = tc.chain
			sleep, err := exec.LookPath("sleep")
			must(t, err)
			c, err := process.Start(process.Spec{Path: sleep, Args: []string{"30"}})
			must(t, err)
			t.Cleanup(func() { c.Kill(); <-c.Done() })
			s := &supervision{r: e.r}
			s.setChild(c)
			defer s.setChild(nil)
			e.r.cfg.ShutdownGrace = time.Minute
			must(t, e.r.l.Schedule([]plan.Plan{{Name: "v2", Height: 10}}, false))
			s.rescheduled(watcher.Change{Reason: watcher.ReasonEvent})
			if s.reschedule != tc.restart {
				t.Fatalf("reschedule = %v, want %v", s.reschedule, tc.restart)
			}
			select {
			case <-c.Done():
				if !tc.restart {
					t.Fatal("the node was stopped for a plan it is past")
				}
			case <-time.After(time.Second):
				if tc.restart {
					t.Fatal("the node was not stopped for its new halt height")
				}
			}
		})
	}
}
