package watcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

func TestWriteInPlace(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			dir := newDataDir(t)
			h := start(t, testConfig(dir, be.poll), hooks{}, be.name)
			// What x/upgrade does: os.WriteFile (truncate, then write).
			writeFile(t, h.path, `{"name":"v2","height":100}`)
			h.waitContent(`{"name":"v2","height":100}`)
			// Written in place again, over the existing file.
			writeFile(t, h.path, `{"name":"v3","height":200}`)
			c := h.waitContent(`{"name":"v3","height":200}`)
			want := ReasonEvent
			if be.poll {
				want = ReasonPoll
			}
			if c.Reason != want {
				t.Errorf("Reason = %q, want %q", c.Reason, want)
			}
			if !be.poll && !strings.Contains(h.logs.String(), `"msg":"fsnotify event"`) {
				t.Errorf("raw events not logged at Debug")
			}
		})
	}
}

func TestWriteInTwoHalves(t *testing.T) {
	const full = `{"name":"v2","height":100,"info":"some padding to split"}`
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			dir := newDataDir(t)
			h := start(t, testConfig(dir, be.poll), hooks{}, be.name)
			recs := h.collect()
			f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(full[:len(full)/2]); err != nil {
				t.Fatal(err)
			}
			// The first half is noticed, the consumer reads cut-off JSON...
			waitRec(t, recs, "a Change for the first half", func(rec) bool { return true })
			drainQuiet(t, recs)
			// ...and the rest of the write must bring another Change.
			if _, err := f.WriteString(full[len(full)/2:]); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			waitRec(t, recs, "a Change after the final write", hasContent(full))
		})
	}
}

func TestRenameIntoPlace(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			dir := newDataDir(t)
			h := start(t, testConfig(dir, be.poll), hooks{}, be.name)
			tmp := filepath.Join(dir, ".upgrade-info.json.tmp")
			for _, content := range []string{`{"name":"v2"}`, `{"name":"v3","height":7}`} {
				writeFile(t, tmp, content)
				if err := os.Rename(tmp, h.path); err != nil {
					t.Fatal(err)
				}
				h.waitContent(content)
			}
		})
	}
}

// CometBFT rewrites priv_validator_state.json through a temp file and a
// rename several times per block; indexers chmod files. None of it may reach
// the consumer.
func TestNoiseProducesNoChange(t *testing.T) {
	dir := newDataDir(t)
	h := start(t, testConfig(dir, false), hooks{}, "fsnotify")
	recs := h.collect()
	writeFile(t, h.path, "v1")
	waitRec(t, recs, "v1", hasContent("v1"))
	h.barrier("barrier-0")
	// Every Change caused by v1 was stamped before this point.
	churnStart := time.Now()
	pvs := filepath.Join(dir, "priv_validator_state.json")
	for i := range 300 {
		tmp := filepath.Join(dir, fmt.Sprintf("write-file-atomic-%09d", i))
		writeFile(t, tmp, fmt.Sprintf(`{"height":"%d","round":0,"step":3}`, i))
		if err := os.Rename(tmp, pvs); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if err := os.Chmod(h.path, os.FileMode(0o600|(i/50%2)*0o044)); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.barrier("barrier-1")
	// Every event of the churn has been handled by now; a Change made by any
	// of them carries an At in [churnStart, realWrite).
	realWrite := time.Now()
	writeFile(t, h.path, "v2")
	waitRec(t, recs, "v2", func(r rec) bool {
		if !r.At.Before(churnStart) && r.At.Before(realWrite) {
			t.Errorf("Change %+v was caused by noise", r.Change)
		}
		return r.exists && r.content == "v2"
	})
}

// The noise path must stay cheap: no allocation to decide "not ours".
func TestClassifyIsCheap(t *testing.T) {
	r := &runner{cfg: Config{File: fileName}, abs: "/home/n/data"}
	b := &inotifyBackend{r: r, real: "/home/n/data", realBase: "data", absBase: "data"}
	cases := []struct {
		name string
		want eventKind
	}{
		{"/home/n/data/priv_validator_state.json", kindNoise},
		{"/home/n/data/write-file-atomic-12345", kindNoise},
		{"/home/n/data/application.db", kindNoise},
		{"/home/n/other/upgrade-info.json", kindNoise},
		{"/home/n/config", kindNoise},
		{"/home/n/data/upgrade-info.json", kindFile},
		{"/home/n/data", kindDir},
	}
	for _, c := range cases {
		if got := b.classify(c.name); got != c.want {
			t.Errorf("classify(%q) = %v, want %v", c.name, got, c.want)
		}
		if c.want != kindNoise {
			continue
		}
		if n := testing.AllocsPerRun(100, func() { b.classify(c.name) }); n != 0 {
			t.Errorf("classify(%q) allocates %v times", c.name, n)
		}
	}
}

func TestDirRemovedAndRecreated(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			dir := newDataDir(t)
			h := start(t, testConfig(dir, be.poll), hooks{}, be.name)
			// No waiting for a ReasonRearm Change: when the Change for the
			// file's removal is still pending, the re-arm is folded into it.
			// The watch must work on the new directory: v2 arrives (by the
			// re-arm's Change or an event), and so does v3, written after
			// everything has settled.
			h.followsReplacement("v2", func() {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, h.path, "v2")
			})
			if !be.poll && !strings.Contains(h.logs.String(), "re-armed the watch") {
				t.Errorf("re-arm not logged:\n%s", h.logs)
			}
		})
	}
}

// Snapshot restore: mv data data.old && mv new data.
func TestDirSwappedByRename(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			dir := newDataDir(t)
			h := start(t, testConfig(dir, be.poll), hooks{}, be.name)
			h.followsReplacement("v2 from the restored directory", func() {
				restored := dir + ".new"
				if err := os.Mkdir(restored, 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(restored, fileName), "v2")
				if err := os.Rename(dir, dir+".old"); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(restored, dir); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestSymlinkedDir(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			// $HOME/data -> ../store/a-data: the link and its target live
			// in different directories, as with a data disk mounted elsewhere.
			root := t.TempDir()
			for _, d := range []string{"home", "store/a-data", "store/b-data"} {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			link := filepath.Join(root, "home", "data")
			if err := os.Symlink("../store/a-data", link); err != nil {
				t.Fatal(err)
			}
			h := start(t, testConfig(link, be.poll), hooks{}, be.name)
			wantTarget, err := filepath.EvalSymlinks(filepath.Join(root, "store", "a-data"))
			if err != nil {
				t.Fatal(err)
			}
			logged := false
			for _, r := range h.records() {
				if r["msg"] == "watch directory is a symlink; watching its target" && r["target"] == wantTarget {
					logged = true
				}
			}
			if !logged {
				t.Errorf("symlink target %s not logged:\n%s", wantTarget, h.logs)
			}
			// Re-point the link atomically to a directory that holds v2.
			h.followsReplacement("v2 through the re-pointed link", func() {
				writeFile(t, filepath.Join(root, "store", "b-data", fileName), "v2")
				tmpLink := filepath.Join(root, "home", "data.tmp")
				if err := os.Symlink("../store/b-data", tmpLink); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmpLink, link); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestCoalescing(t *testing.T) {
	t.Run("fsnotify", func(t *testing.T) {
		dir := newDataDir(t)
		h := start(t, testConfig(dir, false), hooks{}, "fsnotify")
		// The consumer is busy: nobody reads out while 50 writes happen.
		before := time.Now()
		writeFile(t, h.path, "v0")
		h.barrier("barrier-0")
		// The first write's events are handled: its Change is pending. All
		// later events are handled after this instant.
		mid := time.Now()
		for i := range 49 {
			writeFile(t, h.path, fmt.Sprintf("v%d", i+1))
		}
		h.barrier("barrier-1")
		c := h.next()
		if c.Reason != ReasonEvent {
			t.Errorf("Reason = %q, want %q", c.Reason, ReasonEvent)
		}
		// The pending Change is the one made by the first write, with later
		// events folded in, not replaced by each of them.
		if c.At.Before(before) || !c.At.Before(mid) {
			t.Errorf("pending Change At %v not from the first write (between %v and %v)", c.At, before, mid)
		}
		h.expectNone()
	})
	t.Run("poll", func(t *testing.T) {
		dir := newDataDir(t)
		h := start(t, testConfig(dir, true), hooks{}, "poll")
		for i := range 10 {
			writeAtomic(t, h.path, strings.Repeat("x", i+1))
			// Wait until the poller has seen this version, so that each write
			// is a separate difference while nobody reads.
			h.waitTrace(func(e traceEv) bool { return e.kind == "poll-change" })
		}
		if c := h.next(); c.Reason != ReasonPoll {
			t.Errorf("Reason = %q, want %q", c.Reason, ReasonPoll)
		}
		h.expectNone()
	})
}

func TestCancel(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			dir := newDataDir(t)
			h := start(t, testConfig(dir, be.poll), hooks{}, be.name)
			// Leave a Change pending: cancel must not block on the send.
			writeFile(t, h.path, "v1")
			if !be.poll {
				h.barrier("barrier")
			} else {
				h.waitTrace(func(e traceEv) bool { return e.kind == "poll-change" })
			}
			if err := h.stop(); err != nil {
				t.Fatalf("Run returned %v, want nil", err)
			}
			select {
			case _, ok := <-h.out:
				if ok {
					t.Fatal("a Change was sent after Run returned")
				}
			default:
				t.Fatal("out not closed after Run returned")
			}
			waitGoroutines(t, baseline)
		})
	}
}

func TestRunErrors(t *testing.T) {
	root := t.TempDir()
	notDir := filepath.Join(root, "file")
	writeFile(t, notDir, "x")
	cases := []struct {
		name   string
		cfg    Config
		wantIs error
	}{
		{"missing dir", Config{Dir: filepath.Join(root, "nope"), File: fileName}, fs.ErrNotExist},
		{"not a directory", Config{Dir: notDir, File: fileName}, nil},
		{"empty dir", Config{File: fileName}, nil},
		{"file not a base name", Config{Dir: root, File: "sub/" + fileName}, nil},
		{"empty file", Config{Dir: root}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, be := range backends {
				cfg := c.cfg
				cfg.ForcePoll = be.poll
				out := make(chan Change)
				errc := make(chan error, 1)
				go func() { errc <- Run(context.Background(), cfg, out) }()
				select {
				case err := <-errc:
					if err == nil {
						t.Fatalf("%s: Run returned nil", be.name)
					}
					if c.wantIs != nil && !errors.Is(err, c.wantIs) {
						t.Errorf("%s: error %v is not %v", be.name, err, c.wantIs)
					}
				case <-time.After(hang):
					t.Fatalf("%s: Run did not return", be.name)
				}
				if _, ok := <-out; ok {
					t.Errorf("%s: out not closed", be.name)
				}
			}
		})
	}
	if err := Run(context.Background(), Config{Dir: root, File: fileName}, nil); err == nil {
		t.Error("Run with a nil channel returned nil")
	}
}

func TestFallbackToPoll(t *testing.T) {
	cases := []struct {
		name       string
		hooks      func(t *testing.T) hooks
		wantReason string
	}{
		{
			name: "EMFILE",
			hooks: func(t *testing.T) hooks {
				return hooks{newWatcher: func() (fsWatcher, error) {
					return nil, fmt.Errorf("couldn't initialize inotify: %w", syscall.EMFILE)
				}}
			},
			wantReason: syscall.EMFILE.Error(),
		},
		{
			name: "ENOSPC",
			hooks: func(t *testing.T) hooks {
				return hooks{newWatcher: func() (fsWatcher, error) {
					w, err := newFSNotify()
					if err != nil {
						return nil, err
					}
					a := &addFails{fsWatcher: w, err: syscall.ENOSPC, closed: make(chan struct{})}
					t.Cleanup(func() {
						select {
						case <-a.closed:
						default:
							t.Error("the watcher whose Add failed was not closed")
						}
					})
					return a, nil
				}}
			},
			wantReason: syscall.ENOSPC.Error(),
		},
		{
			name: "NFS",
			hooks: func(t *testing.T) hooks {
				return hooks{fsType: func(string) (uint32, error) { return 0x6969, nil }}
			},
			wantReason: "nfs",
		},
		{
			name: "CIFS",
			hooks: func(t *testing.T) hooks {
				return hooks{fsType: func(string) (uint32, error) { return 0xFF534D42, nil }}
			},
			wantReason: "cifs",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := newDataDir(t)
			h := start(t, testConfig(dir, false), c.hooks(t), "poll")
			writeFile(t, h.path, "v1")
			if got := h.waitContent("v1"); got.Reason != ReasonPoll {
				t.Errorf("Reason = %q, want %q", got.Reason, ReasonPoll)
			}
			if n := h.countLevel("WARN"); n != 1 {
				t.Errorf("%d Warn records, want 1:\n%s", n, h.logs)
			}
			found := false
			for _, r := range h.records() {
				if s, _ := r["reason"].(string); r["level"] == "WARN" && strings.Contains(s, c.wantReason) {
					found = true
				}
			}
			if !found {
				t.Errorf("no Warn with a reason containing %q:\n%s", c.wantReason, h.logs)
			}
		})
	}
}

// A watcher that drops every event: only the safety poll can notice.
func TestSafetyPollCatchesMissedChange(t *testing.T) {
	dir := newDataDir(t)
	cfg := testConfig(dir, false)
	cfg.SafetyInterval = 20 * time.Millisecond
	fake := newFake()
	h := start(t, cfg, hooks{newWatcher: func() (fsWatcher, error) { return fake, nil }}, "fsnotify")
	writeAtomic(t, h.path, "v1")
	if c := h.waitContent("v1"); c.Reason != ReasonSafety {
		t.Errorf("Reason = %q, want %q", c.Reason, ReasonSafety)
	}
	// Many more ticks without a difference: nothing more is reported.
	h.expectNone()
	writeAtomic(t, h.path, "v22")
	if c := h.waitContent("v22"); c.Reason != ReasonSafety {
		t.Errorf("Reason = %q, want %q", c.Reason, ReasonSafety)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fake.closed:
	default:
		t.Error("watcher not closed when Run returned")
	}
}

// A change that fsnotify did report must not be reported again by the
// safety poll.
func TestSafetyPollQuietAfterReportedChange(t *testing.T) {
	dir := newDataDir(t)
	cfg := testConfig(dir, false)
	cfg.SafetyInterval = 20 * time.Millisecond
	h := start(t, cfg, hooks{}, "fsnotify")
	recs := h.collect()
	writeFile(t, h.path, "v1")
	waitRec(t, recs, "v1", hasContent("v1"))
	// A tick may fall between two events of one write and report the state
	// in between; that is a real, unreported difference. Once every event is
	// handled, the ticks must stay quiet.
	h.barrier("barrier")
	settled := time.Now()
	deadline := time.After(quiet)
	for {
		select {
		case r := <-recs:
			if r.Reason == ReasonSafety && !r.At.Before(settled) {
				t.Fatalf("safety poll repeated a reported change: %+v", r.Change)
			}
			continue
		case <-deadline:
		}
		break
	}
}

func TestOverflowMeansRescan(t *testing.T) {
	dir := newDataDir(t)
	fake := newFake()
	h := start(t, testConfig(dir, false), hooks{newWatcher: func() (fsWatcher, error) { return fake, nil }}, "fsnotify")
	select {
	case fake.er <- fsnotify.ErrEventOverflow:
	case <-time.After(hang):
		t.Fatal("Errors not drained")
	}
	if c := h.next(); c.Reason != ReasonOverflow {
		t.Errorf("Reason = %q, want %q", c.Reason, ReasonOverflow)
	}
	// Other errors rescan too, but only report a real difference.
	select {
	case fake.er <- errTest:
	case <-time.After(hang):
		t.Fatal("Errors not drained")
	}
	h.expectNone()
}

// fsnotify closing its channels while running: switch to polling.
func TestEventsClosedFallsBackToPoll(t *testing.T) {
	dir := newDataDir(t)
	fake := newFake()
	h := start(t, testConfig(dir, false), hooks{newWatcher: func() (fsWatcher, error) { return fake, nil }}, "fsnotify")
	close(fake.ev)
	writeFile(t, h.path, "v1")
	if c := h.waitContent("v1"); c.Reason != ReasonPoll {
		t.Errorf("Reason = %q, want %q", c.Reason, ReasonPoll)
	}
	if n := h.countLevel("WARN"); n != 1 {
		t.Errorf("%d Warn records, want 1:\n%s", n, h.logs)
	}
}

func TestFileStateDiffers(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, fileName)
	absent := statFile(p)
	if absent.differs(statFile(p)) {
		t.Error("absent vs absent differs")
	}
	writeFile(t, p, "aaaa")
	st1 := statFile(p)
	if !st1.exists || !st1.differs(absent) || !absent.differs(st1) {
		t.Error("present vs absent does not differ")
	}
	if st1.differs(statFile(p)) {
		t.Error("same file differs from itself")
	}

	// mtime only.
	mt := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	st2 := statFile(p)
	if !st2.differs(st1) {
		t.Error("mtime change not seen")
	}

	// size only (same mtime).
	writeFile(t, p, "aaaaa")
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	st3 := statFile(p)
	if !st3.differs(st2) {
		t.Error("size change not seen")
	}

	// Rename-replace keeping size and mtime: only the inode tells.
	tmp := p + ".tmp"
	writeFile(t, tmp, "bbbbb")
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	st4 := statFile(p)
	if st4.size != st3.size || st4.mtime != st3.mtime {
		t.Fatalf("precondition: size/mtime should match: %+v vs %+v", st4, st3)
	}
	if !st4.differs(st3) {
		t.Error("rename-replace with equal size and mtime not seen")
	}
}

// Writes beside the file (the node's priv_validator_state.json in data/, a log
// file in the home above it) are not logged: vigil's own debug log written
// into the home would otherwise log an event for each of its lines, forever.
func TestNoiseIsNotLogged(t *testing.T) {
	dir := newDataDir(t)
	h := start(t, testConfig(dir, false), hooks{}, "fsnotify")
	writeFile(t, filepath.Join(dir, "priv_validator_state.json"), `{}`)
	writeFile(t, filepath.Join(filepath.Dir(dir), "vigil.log"), "a line\n")
	// One inotify queue: once the file's Change is out, the writes before it
	// have been handled.
	writeFile(t, h.path, `{"name":"v2","height":100}`)
	h.waitContent(`{"name":"v2","height":100}`)
	logs := h.logs.String()
	if !strings.Contains(logs, fileName) {
		t.Errorf("the file's own event not logged at Debug:\n%s", logs)
	}
	for _, noise := range []string{"priv_validator_state.json", "vigil.log"} {
		if strings.Contains(logs, noise) {
			t.Errorf("event for %s logged:\n%s", noise, logs)
		}
	}
}
