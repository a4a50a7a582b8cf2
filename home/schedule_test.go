package home

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/plan"
)

func scheduled(t *testing.T, l Layout) []plan.Plan {
	t.Helper()
	ps, err := l.Scheduled()
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func homeWithData(t *testing.T) Layout {
	t.Helper()
	l := newHome(t)
	if err := os.MkdirAll(l.DataDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestScheduleWritesSortedBatch(t *testing.T) {
	l := homeWithData(t)
	if ps := scheduled(t, l); ps != nil {
		t.Fatalf("fresh home: %+v scheduled", ps)
	}
	if err := l.Schedule([]plan.Plan{{Name: "v3", Height: 300}}, false); err != nil {
		t.Fatal(err)
	}
	if err := l.Schedule([]plan.Plan{{Name: "v2", Height: 200, Info: "i"}}, false); err != nil {
		t.Fatal(err)
	}
	want := []plan.Plan{{Name: "v2", Height: 200, Info: "i"}, {Name: "v3", Height: 300}}
	if got := scheduled(t, l); !reflect.DeepEqual(got, want) {
		t.Fatalf("Scheduled = %+v, want %+v", got, want)
	}
	b, err := os.ReadFile(l.BatchFile())
	if err != nil || string(b) != string(plan.MarshalBatch(want)) {
		t.Fatalf("%s = %s (%v), want MarshalBatch's output", l.BatchFile(), b, err)
	}
	if st, _ := os.Stat(l.BatchFile()); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestScheduleConflicts(t *testing.T) {
	l := homeWithData(t)
	if err := l.Schedule([]plan.Plan{{Name: "v2", Height: 100}, {Name: "v3", Height: 200}}, false); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(l.BatchFile())
	for _, tc := range []struct {
		desc  string
		ps    []plan.Plan
		force bool
		want  string
	}{
		{"same name", []plan.Plan{{Name: "v2", Height: 150}}, false, "upgrade v2 is already scheduled at height 100"},
		{"same name in another case (recase)", []plan.Plan{{Name: "V2", Height: 150}}, false, "upgrade v2 is already scheduled at height 100"},
		{"same height", []plan.Plan{{Name: "v4", Height: 200}}, true, "upgrades v3 and v4 cannot both be scheduled at height 200"},
		{"same height within the call", []plan.Plan{{Name: "v4", Height: 400}, {Name: "v5", Height: 400}}, false, "upgrades v4 and v5"},
		{"same name within the call", []plan.Plan{{Name: "v4", Height: 400}, {Name: "v4", Height: 500}}, true, "upgrade v4 is given twice"},
		{"height zero", []plan.Plan{{Name: "v4"}}, false, "height must be greater than 0"},
		{"name that cannot be a directory", []plan.Plan{{Name: "..", Height: 400}}, false, "outside"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := l.Schedule(tc.ps, tc.force)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Schedule(%+v) = %v, want an error containing %q", tc.ps, err, tc.want)
			}
			if after, _ := os.ReadFile(l.BatchFile()); string(after) != string(before) {
				t.Fatalf("a refused Schedule changed the batch:\n%s", after)
			}
		})
	}
	if err := l.Schedule([]plan.Plan{{Name: "v2", Height: 150}}, true); err != nil {
		t.Fatalf("force: %v", err)
	}
	want := []plan.Plan{{Name: "v2", Height: 150}, {Name: "v3", Height: 200}}
	if got := scheduled(t, l); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a forced reschedule: %+v, want %+v", got, want)
	}
}

func TestScheduleRefusesMalformedBatch(t *testing.T) {
	l := homeWithData(t)
	if err := os.WriteFile(l.BatchFile(), []byte(`[{"name":"v2"`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"Schedule":   func() error { return l.Schedule([]plan.Plan{{Name: "v3", Height: 9}}, true) },
		"Unschedule": func() error { return l.Unschedule(plan.Plan{Name: "v2", Height: 9}) },
	} {
		if err := f(); err == nil || !strings.Contains(err.Error(), l.BatchFile()) {
			t.Fatalf("%s over a malformed batch: %v, want an error naming %s", name, err, l.BatchFile())
		}
	}
	if b, _ := os.ReadFile(l.BatchFile()); string(b) != `[{"name":"v2"` {
		t.Fatalf("the malformed batch was replaced: %s", b)
	}
}

func TestUnschedule(t *testing.T) {
	l := homeWithData(t)
	if err := l.Unschedule(plan.Plan{Name: "v2", Height: 100}); err != nil {
		t.Fatalf("no batch file: %v", err)
	}
	if err := l.Schedule([]plan.Plan{{Name: "v2", Height: 100}, {Name: "v3", Height: 200}}, false); err != nil {
		t.Fatal(err)
	}
	if err := l.Unschedule(plan.Plan{Name: "v2", Height: 101}); err != nil {
		t.Fatal(err)
	}
	if got := scheduled(t, l); len(got) != 2 {
		t.Fatalf("a plan at another height was removed: %+v", got)
	}
	if err := l.Unschedule(plan.Plan{Name: "v2", Height: 100}); err != nil {
		t.Fatal(err)
	}
	if got := scheduled(t, l); !reflect.DeepEqual(got, []plan.Plan{{Name: "v3", Height: 200}}) {
		t.Fatalf("after Unschedule(v2): %+v", got)
	}
	if err := l.Unschedule(plan.Plan{Name: "v3", Height: 200}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.BatchFile()); !os.IsNotExist(err) {
		t.Fatalf("empty batch left a file: %v", err)
	}
}

// TestScheduleConcurrent: read-modify-writes from many writers lose nothing
// (each goroutine opens the lock file itself, so flock serializes them as
// it does processes).
func TestScheduleConcurrent(t *testing.T) {
	l := homeWithData(t)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- l.Schedule([]plan.Plan{{Name: fmt.Sprintf("v%d", i), Height: int64(i + 1)}}, false) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := scheduled(t, l); len(got) != n {
		t.Fatalf("%d plans scheduled, want %d: updates were lost", len(got), n)
	}
}

func TestCleanTempsRemovesBatchTempsUnderTheLock(t *testing.T) {
	l := homeWithData(t)
	left := []string{
		filepath.Join(l.Root(), ".current.tmp-1"),
		filepath.Join(l.UpgradeDir("v2"), ".upgrade-info.json.tmp-2"),
		filepath.Join(l.DataDir(), ".upgrade-info.json.batch.tmp-3"),
	}
	kept := []string{filepath.Join(l.DataDir(), ".upgrade-info.json.tmp-4"), l.BatchFile()}
	for _, p := range append(left, kept...) {
		if err := os.WriteFile(p, []byte("["), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A Schedule in another process holds the lock: CleanTemps must wait
	// for it rather than delete the temporary file it is writing.
	lf, err := os.OpenFile(l.BatchLock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- l.CleanTemps(slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	select {
	case err := <-done:
		t.Fatalf("CleanTemps ran while the batch lock was held (%v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := os.Stat(left[2]); err != nil {
		t.Fatalf("the batch temp was removed under a held lock: %v", err)
	}
	lf.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, p := range left {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left in place", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}
