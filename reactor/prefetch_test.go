package reactor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/testutil"
	"github.com/vigilhq/vigil/plan"
)

// scriptedPlans answers CurrentPlan from a list, repeating the last answer.
type scriptedPlans struct {
	mu      sync.Mutex
	answers []func() (*plan.Plan, error)
	calls   int
}

func (s *scriptedPlans) CurrentPlan(context.Context) (*plan.Plan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.answers[min(s.calls, len(s.answers)-1)]
	s.calls++
	return a()
}

// fileFetcher writes a file at the binary's path; fails the first failN calls.
type fileFetcher struct {
	l     home.Layout
	mu    sync.Mutex
	calls []string
	failN int
}

func (f *fileFetcher) Fetch(ctx context.Context, p plan.Plan, dir string) error {
	f.mu.Lock()
	f.calls = append(f.calls, dir)
	n := len(f.calls)
	f.mu.Unlock()
	if n <= f.failN {
		return errors.New("mirror down")
	}
	bin := f.l.Bin(f.l.UpgradeDir(dir))
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	return os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
}

func (f *fileFetcher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPrefetch: RPC errors are logged once and stop nothing; a scheduled
// plan is fetched once into the directory detect would use (lower-cased);
// DownloadDone is emitted; the stage returns when ctx ends.
func TestPrefetch(t *testing.T) {
	t.Parallel()
	l := home.Layout{Home: t.TempDir(), Name: "app", Recase: true}
	v2 := &plan.Plan{Name: "V2", Height: 100, Info: "x"}
	src := &scriptedPlans{answers: []func() (*plan.Plan, error){
		func() (*plan.Plan, error) { return nil, errors.New("connection refused") },
		func() (*plan.Plan, error) { return nil, errors.New("connection refused") },
		func() (*plan.Plan, error) { return nil, nil },
		func() (*plan.Plan, error) { return v2, nil },
	}}
	f := &fileFetcher{l: l}
	var logs testutil.Buffer
	var mu sync.Mutex
	var events []event.Event
	r := &reactor{
		cfg: Config{Fetch: f, Plans: src, PrefetchInterval: 5 * time.Millisecond, Observe: func(e event.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}},
		l: l, log: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.prefetch(ctx) }()

	waitUntil(t, "the prefetched binary", func() bool {
		_, err := os.Stat(l.Bin(l.UpgradeDir("v2")))
		return err == nil
	})
	// Many more ticks with the binary in place: no second fetch.
	calls := func() int { src.mu.Lock(); defer src.mu.Unlock(); return src.calls }
	n := calls()
	waitUntil(t, "more polls", func() bool { return calls() > n+5 })
	cancel()
	if err := testutil.Returned(t, done, "prefetch"); err != nil {
		t.Fatal(err)
	}
	if f.count() != 1 || f.calls[0] != "v2" {
		t.Fatalf("fetch calls %v, want one for v2", f.calls)
	}
	if c := logs.Count("cannot ask the node"); c != 1 {
		t.Errorf("RPC error logged %d times at Info, want once:\n%s", c, logs.String())
	}
	if c := logs.Count("scheduled upgrade found"); c != 1 {
		t.Errorf("plan found logged %d times, want once:\n%s", c, logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].Kind != event.DownloadDone || events[0].Plan.Name != "V2" || events[0].Err != nil {
		t.Fatalf("events %+v, want one successful DownloadDone", events)
	}
}

// TestPrefetchRetriesLater: a failed prefetch is tried again after a wait,
// not at every tick, and the stage carries on.
func TestPrefetchRetriesLater(t *testing.T) {
	t.Parallel()
	l := home.Layout{Home: t.TempDir(), Name: "app", Recase: true}
	src := &scriptedPlans{answers: []func() (*plan.Plan, error){
		func() (*plan.Plan, error) { return &plan.Plan{Name: "v2", Height: 100}, nil },
	}}
	f := &fileFetcher{l: l, failN: 1}
	var logs testutil.Buffer
	r := &reactor{cfg: Config{Fetch: f, Plans: src, PrefetchInterval: 10 * time.Millisecond}, l: l, log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.prefetch(ctx) }()
	waitUntil(t, "the second, successful fetch", func() bool { return f.count() == 2 })
	cancel()
	<-done
	if c := logs.Count("prefetch of the upgrade binary failed"); c != 1 {
		t.Fatalf("failure logged %d times, want 1:\n%s", c, logs.String())
	}
	if _, err := os.Stat(l.Bin(l.UpgradeDir("v2"))); err != nil {
		t.Fatal(err)
	}
}

// TestPrefetchAsksSoonWhileRPCIsDown: the node's RPC is usually not up when
// vigil starts it; a failed question is asked again within seconds, not
// after the (long) interval.
func TestPrefetchAsksSoonWhileRPCIsDown(t *testing.T) {
	t.Parallel()
	l := home.Layout{Home: t.TempDir(), Name: "app", Recase: true}
	src := &scriptedPlans{answers: []func() (*plan.Plan, error){
		func() (*plan.Plan, error) { return nil, errors.New("connection refused") },
		func() (*plan.Plan, error) { return &plan.Plan{Name: "v2", Height: 100}, nil },
	}}
	f := &fileFetcher{l: l}
	r := &reactor{cfg: Config{Fetch: f, Plans: src, PrefetchInterval: time.Hour}, l: l, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.prefetch(ctx) }()
	waitUntil(t, "the prefetch after the RPC came up", func() bool { return f.count() == 1 })
	cancel()
	<-done
}
