//go:build linux

package process

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// endStrayBounded runs EndStray and fails the test if it hangs.
func endStrayBounded(t *testing.T, id Ident, grace time.Duration) StrayResult {
	t.Helper()
	type out struct {
		res StrayResult
		err error
	}
	ch := make(chan out, 1)
	go func() {
		res, err := EndStray(context.Background(), id, grace)
		ch <- out{res, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			t.Fatalf("EndStray: %v", o.err)
		}
		return o.res
	case <-time.After(hangTimeout):
		t.Fatalf("EndStray did not return")
		return StrayResult{}
	}
}

func childIdent(t *testing.T, c *Child) Ident {
	t.Helper()
	id, ok := c.Ident()
	if !ok || id.Pid != c.Pid() || id.Start == 0 || id.Boot == "" {
		t.Fatalf("Ident() = %+v, %v; want the child's pid %d and a start time", id, ok, c.Pid())
	}
	return id
}

// A pid that now belongs to another process (another start time) is never
// signalled.
func TestEndStrayRefusesReusedPid(t *testing.T) {
	c, rec := startGroupLeader(t, "ignore-term")
	id := childIdent(t, c)
	id.Start-- // the recorded process started earlier: this pid was reused

	res := endStrayBounded(t, id, 0)
	if !res.NotOurs || len(res.Pids) != 0 || res.Killed {
		t.Fatalf("EndStray = %+v, want NotOurs and nothing signalled", res)
	}
	if fileHasLine(rec, "terminated") {
		t.Fatal("a process that is not ours got SIGTERM")
	}
	select {
	case <-c.Done():
		t.Fatalf("a process that is not ours was ended: %v", c.Exit())
	default:
	}

	// A record from another boot is not ours either.
	id = childIdent(t, c)
	id.Boot = "another-boot"
	if res := endStrayBounded(t, id, 0); len(res.Pids) != 0 {
		t.Fatalf("EndStray across a reboot = %+v, want nothing found", res)
	}
	if fileHasLine(rec, "terminated") {
		t.Fatal("a process from another boot's record got SIGTERM")
	}
}

// A stray that obeys SIGTERM is ended with its group, without SIGKILL.
func TestEndStrayEndsGroup(t *testing.T) {
	c, gc := startGroupWithGrandchild(t)

	res := endStrayBounded(t, childIdent(t, c), time.Minute)
	if res.Killed || !slices.Contains(res.Pids, c.Pid()) || !slices.Contains(res.Pids, gc.pid) {
		t.Fatalf("EndStray = %+v, want leader %d and grandchild %d found, no SIGKILL", res, c.Pid(), gc.pid)
	}
	if gc.alive() {
		t.Fatal("grandchild still alive after EndStray returned")
	}
	waitDone(t, c)
}

// A stray that ignores SIGTERM is killed after the grace, and EndStray
// returns only once it is gone.
func TestEndStrayEscalates(t *testing.T) {
	c, rec := startGroupLeader(t, "ignore-term")

	res := endStrayBounded(t, childIdent(t, c), 100*time.Millisecond)
	if !res.Killed {
		t.Fatalf("EndStray = %+v, want SIGKILL after the grace", res)
	}
	if !fileHasLine(rec, "terminated") {
		t.Fatal("no SIGTERM before the SIGKILL")
	}
	if got := waitDone(t, c); got.Signal.String() != "killed" {
		t.Fatalf("exit %v, want killed", got)
	}
}

// The leader is gone (as when the kernel's parent-death SIGTERM ended a hook)
// but a member of its group that ignores SIGTERM lingers: it is found through
// the group and killed after the grace.
func TestEndStrayLeaderGoneGroupLingers(t *testing.T) {
	dir := t.TempDir()
	pidFile, rec := filepath.Join(dir, "gc.pid"), filepath.Join(dir, "rec")
	spec := helperSpec(t, "stubborn-group", pidFile, rec, "exit")
	spec.OwnGroup = true
	c := startChild(t, spec)
	id := childIdent(t, c)
	gc := identify(t, readPidFile(t, pidFile))
	t.Cleanup(gc.killIfAlive)
	waitDone(t, c) // the leader is reaped; only the grandchild is left

	res := endStrayBounded(t, id, 100*time.Millisecond)
	if !res.Killed || !slices.Equal(res.Pids, []int{gc.pid}) {
		t.Fatalf("EndStray = %+v, want grandchild %d found and killed", res, gc.pid)
	}
	if !fileHasLine(rec, "terminated") {
		t.Fatal("the grandchild got no SIGTERM before the SIGKILL")
	}
	if gc.alive() {
		t.Fatal("grandchild still alive after EndStray returned")
	}
}

// An interrupted Output (a hook) stops its whole group: a descendant that
// ignores SIGTERM does not outlive a leader that obeyed it.
func TestOutputInterruptedEndsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile, rec := filepath.Join(dir, "gc.pid"), filepath.Join(dir, "rec")
	spec := helperSpec(t, "stubborn-group", pidFile, rec)
	spec.OwnGroup = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gcc := make(chan procID, 1)
	go func() {
		gc := identify(t, readPidFile(t, pidFile))
		gcc <- gc
		cancel()
	}()
	_, exit, err := Output(ctx, spec, 100*time.Millisecond)
	gc := <-gcc
	t.Cleanup(gc.killIfAlive)
	if err == nil {
		t.Fatalf("Output = %v, nil; want the cancellation", exit)
	}
	if gc.alive() {
		t.Fatal("the hook's descendant outlived the interrupted hook")
	}
	if !fileHasLine(rec, "terminated") {
		t.Fatal("the descendant got no SIGTERM before the SIGKILL")
	}
}

type recTracker struct {
	mu     sync.Mutex
	events []string
}

func (r *recTracker) Started(c *Child) { r.add("started", c) }
func (r *recTracker) Reaped(c *Child)  { r.add("reaped", c) }
func (r *recTracker) add(what string, c *Child) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := c.Ident(); !ok {
		what += " without ident"
	}
	r.events = append(r.events, what)
}

func (r *recTracker) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Started is called before Start returns and Reaped before Done is closed.
func TestTracker(t *testing.T) {
	tr := &recTracker{}
	spec := helperSpec(t, "exit", "0")
	spec.Track = tr
	c := startChild(t, spec)
	if got := tr.get(); !slices.Equal(got, []string{"started"}) && !slices.Equal(got, []string{"started", "reaped"}) {
		t.Fatalf("after Start: %q, want started first", got)
	}
	waitDone(t, c)
	if got := tr.get(); !slices.Equal(got, []string{"started", "reaped"}) {
		t.Fatalf("after Done: %q, want started, reaped", got)
	}
}
