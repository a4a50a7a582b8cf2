package watcher

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/vigilhq/vigil/internal/testutil"
)

const (
	fileName = "upgrade-info.json"
	// hang is how long a wait may take before the test calls it a hang. It
	// is never a latency assertion: the box is shared and slow at times.
	hang = 10 * time.Second
	// quiet is how long without a Change counts as "nothing more pending".
	// Only used to settle before the next step or for "no Change" checks, so a
	// slow machine can make such a check weaker, never make it fail wrongly.
	quiet = 300 * time.Millisecond
)

type backend struct {
	name string
	poll bool
}

var backends = []backend{{"fsnotify", false}, {"poll", true}}

func newDataDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testConfig: a short poll interval, and a safety poll so slow it never fires
// during a test, so that in fsnotify mode only events can produce Changes.
func testConfig(dir string, poll bool) Config {
	return Config{
		Dir:            dir,
		File:           fileName,
		PollInterval:   10 * time.Millisecond,
		SafetyInterval: time.Hour,
		ForcePoll:      poll,
	}
}

type traceEv struct{ kind, name string }

type harness struct {
	t      *testing.T
	dir    string // cfg.Dir
	path   string // cfg.Dir/File
	out    chan Change
	cancel context.CancelFunc
	done   chan error
	logs   *testutil.Buffer
	traces chan traceEv

	stopOnce sync.Once
	runErr   error
}

// start runs run() in a goroutine, waits for ReasonStart and checks the mode
// that was logged. Cleanup cancels, checks that Run returned nil, closed out,
// and left no goroutine behind.
func start(t *testing.T, cfg Config, h hooks, wantMode string) *harness {
	t.Helper()
	baseline := runtime.NumGoroutine()
	if h.newWatcher == nil {
		h.newWatcher = defaultHooks.newWatcher
	}
	if h.fsType == nil {
		h.fsType = defaultHooks.fsType
	}
	hs := &harness{
		t:      t,
		dir:    cfg.Dir,
		path:   filepath.Join(cfg.Dir, cfg.File),
		out:    make(chan Change),
		done:   make(chan error, 1),
		logs:   &testutil.Buffer{},
		traces: make(chan traceEv, 1<<16),
	}
	h.trace = func(kind, name string) {
		select {
		case hs.traces <- traceEv{kind, name}:
		default:
			// Never stall the loop under test; a test that needs every trace
			// sizes its work well below the buffer.
		}
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(hs.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	hs.cancel = cancel
	go func() { hs.done <- run(ctx, cfg, hs.out, h) }()
	t.Cleanup(func() {
		if err := hs.stop(); err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
		drainClosed(t, hs.out)
		waitGoroutines(t, baseline)
	})
	c := hs.next()
	if c.Reason != ReasonStart {
		t.Fatalf("first Change has Reason %q, want %q", c.Reason, ReasonStart)
	}
	if got := hs.mode(); got != wantMode {
		t.Fatalf("watching in mode %q, want %q; logs:\n%s", got, wantMode, hs.logs)
	}
	return hs
}

// stop cancels Run and returns what it returned (once; later calls repeat it).
func (h *harness) stop() error {
	h.stopOnce.Do(func() {
		h.cancel()
		select {
		case h.runErr = <-h.done:
		case <-time.After(hang):
			h.t.Fatalf("Run did not return within %v of cancel", hang)
		}
	})
	return h.runErr
}

func drainClosed(t testing.TB, out <-chan Change) {
	t.Helper()
	deadline := time.After(hang)
	for {
		select {
		case _, ok := <-out:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("out not closed within %v", hang)
		}
	}
}

func waitGoroutines(t testing.TB, baseline int) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines: %d, baseline %d; leak?\n%s", runtime.NumGoroutine(), baseline, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// next receives one Change, failing on a hang or a closed channel.
func (h *harness) next() Change {
	h.t.Helper()
	select {
	case c, ok := <-h.out:
		if !ok {
			h.t.Fatal("out closed while waiting for a Change")
		}
		return c
	case <-time.After(hang):
		h.t.Fatalf("no Change within %v; logs:\n%s", hang, h.logs)
	}
	panic("unreachable")
}

// expectNone fails if a Change arrives within quiet.
func (h *harness) expectNone() {
	h.t.Helper()
	select {
	case c, ok := <-h.out:
		if ok {
			h.t.Fatalf("unexpected Change %+v", c)
		}
	case <-time.After(quiet):
	}
}

// waitContent receives Changes until one is followed by a read of the file
// returning want, like the real consumer would do.
func (h *harness) waitContent(want string) Change {
	h.t.Helper()
	for {
		c := h.next()
		if b, err := os.ReadFile(h.path); err == nil && string(b) == want {
			return c
		}
	}
}

// rec is one Change as a consumer saw it: what the file held at receipt.
type rec struct {
	Change
	exists  bool
	content string
}

// collect starts an eager consumer so that Changes never wait in Run. It
// stops when out is closed.
func (h *harness) collect() <-chan rec {
	recs := make(chan rec, 1<<12)
	go func() {
		defer close(recs)
		for c := range h.out {
			r := rec{Change: c}
			if b, err := os.ReadFile(h.path); err == nil {
				r.exists, r.content = true, string(b)
			}
			recs <- r
		}
	}()
	return recs
}

// followsReplacement writes v1 and waits for it; runs replace, which puts a
// data directory whose file holds v2 in place of the watched one, and waits
// for v2 (what); then checks that the watch is on the new directory: v3,
// written once everything has settled, arrives too.
func (h *harness) followsReplacement(what string, replace func()) {
	h.t.Helper()
	recs := h.collect()
	writeFile(h.t, h.path, "v1")
	waitRec(h.t, recs, "v1", hasContent("v1"))
	replace()
	waitRec(h.t, recs, what, hasContent("v2"))
	drainQuiet(h.t, recs)
	writeFile(h.t, h.path, "v3")
	waitRec(h.t, recs, "v3 in the new directory", hasContent("v3"))
}

func waitRec(t testing.TB, recs <-chan rec, what string, ok func(rec) bool) rec {
	t.Helper()
	deadline := time.After(hang)
	for {
		select {
		case r, open := <-recs:
			if !open {
				t.Fatalf("waiting for %s: consumer stopped", what)
			}
			if ok(r) {
				return r
			}
		case <-deadline:
			t.Fatalf("waiting for %s: nothing within %v", what, hang)
		}
	}
}

func hasContent(want string) func(rec) bool {
	return func(r rec) bool { return r.exists && r.content == want }
}

// drainQuiet swallows Changes until none has come for quiet.
func drainQuiet(t testing.TB, recs <-chan rec) {
	t.Helper()
	deadline := time.After(hang)
	for {
		select {
		case <-recs:
		case <-time.After(quiet):
			return
		case <-deadline:
			t.Fatalf("Changes kept coming for %v", hang)
		}
	}
}

// waitTrace waits for a trace event the loop reported.
func (h *harness) waitTrace(ok func(traceEv) bool) {
	h.t.Helper()
	deadline := time.After(hang)
	for {
		select {
		case e := <-h.traces:
			if ok(e) {
				return
			}
		case <-deadline:
			h.t.Fatalf("trace not seen within %v", hang)
		}
	}
}

// barrier creates a noise file and waits until the loop has read its event.
// inotify delivers events in order, so every earlier event has been handled.
func (h *harness) barrier(name string) {
	h.t.Helper()
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		h.t.Fatal(err)
	}
	h.waitTrace(func(e traceEv) bool { return e.kind == "event" && filepath.Base(e.name) == name })
}

func (h *harness) records() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			h.t.Fatalf("bad log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func (h *harness) mode() string {
	for _, r := range h.records() {
		if r["msg"] == "watching" {
			s, _ := r["mode"].(string)
			return s
		}
	}
	return ""
}

func (h *harness) countLevel(level string) int {
	n := 0
	for _, r := range h.records() {
		if r["level"] == level {
			n++
		}
	}
	return n
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeAtomic replaces path by rename, so a poll never sees a half-written
// state. Tests that count Changes use it; os.WriteFile (truncate, then write)
// can legitimately give two.
func writeAtomic(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// fakeWatcher stands in for fsnotify: Add succeeds, and only what the test
// puts on ev/er is delivered. With nothing put, it is a watcher that drops
// every event.
type fakeWatcher struct {
	ev     chan fsnotify.Event
	er     chan error
	once   sync.Once
	closed chan struct{}
}

func newFake() *fakeWatcher {
	return &fakeWatcher{ev: make(chan fsnotify.Event), er: make(chan error), closed: make(chan struct{})}
}

func (f *fakeWatcher) Add(string) error              { return nil }
func (f *fakeWatcher) Remove(string) error           { return nil }
func (f *fakeWatcher) Close() error                  { f.once.Do(func() { close(f.closed) }); return nil }
func (f *fakeWatcher) events() <-chan fsnotify.Event { return f.ev }
func (f *fakeWatcher) errs() <-chan error            { return f.er }

// addFails wraps a real watcher whose Add fails, as with ENOSPC.
type addFails struct {
	fsWatcher
	err    error
	closed chan struct{}
}

func (a *addFails) Add(string) error { return a.err }
func (a *addFails) Close() error {
	close(a.closed)
	return a.fsWatcher.Close()
}

var errTest = errors.New("test")
