package observe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/internal/prom"
	"github.com/vigilhq/vigil/internal/testutil"
	"github.com/vigilhq/vigil/plan"
	"github.com/vigilhq/vigil/process"
)

var v2 = plan.Plan{Name: "v2", Height: 100}

// upgradeSequence is what the reactor emits for one upgrade with a backup.
func upgradeSequence() []event.Event {
	return []event.Event{
		{Kind: event.AppStarted, Bin: "/h/cosmovisor/genesis/bin/app", Pid: 10, Installed: "genesis"},
		{Kind: event.UpgradeDetected, Plan: v2},
		{Kind: event.UpgradeStep, Plan: v2, Step: "stopping the node"},
		{Kind: event.AppExited, Exit: process.Exit{Code: 143, Signal: syscall.SIGTERM}, Expected: true},
		{Kind: event.UpgradeStep, Plan: v2, Step: "backing up data"},
		{Kind: event.BackupDone, Plan: v2, Path: "/h/data-backup-v2", Strategy: "copy", Files: 3, Bytes: 4096, Took: 2 * time.Second},
		{Kind: event.AppStarted, Bin: "/h/cosmovisor/upgrades/v2/bin/app", Pid: 11, Installed: "v2"},
		{Kind: event.UpgradeDone, Plan: v2, Took: 20 * time.Millisecond},
	}
}

// ---- reading the registry ----

func gather(t *testing.T, o *Observer) map[string]prom.Family {
	t.Helper()
	fams, err := o.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]prom.Family{}
	for _, f := range fams {
		out[f.Name] = f
	}
	return out
}

// sample finds the sample of name with that suffix whose labels are exactly
// labels ("k=v" pairs).
func sample(t *testing.T, o *Observer, name, suffix string, labels ...string) (prom.Sample, string, bool) {
	t.Helper()
	f, ok := gather(t, o)[name]
	if !ok {
		return prom.Sample{}, "", false
	}
	for _, s := range f.Samples {
		var got []string
		for _, l := range s.Labels {
			got = append(got, l.Name+"="+l.Value)
		}
		if s.Suffix == suffix && strings.Join(got, ",") == strings.Join(labels, ",") {
			return s, f.Type, true
		}
	}
	return prom.Sample{}, "", false
}

// value is the value of a counter or gauge sample; it fails the test if the sample is absent.
func value(t *testing.T, o *Observer, name string, labels ...string) float64 {
	t.Helper()
	s, typ, ok := sample(t, o, name, "", labels...)
	if !ok {
		t.Fatalf("no sample %s%v", name, labels)
	}
	if typ != "counter" && typ != "gauge" {
		t.Fatalf("%s is neither a counter nor a gauge", name)
	}
	return s.Value
}

func histogram(t *testing.T, o *Observer, name string) (count uint64, sum float64) {
	t.Helper()
	c, typ, ok := sample(t, o, name, "_count")
	s, _, ok2 := sample(t, o, name, "_sum")
	if !ok || !ok2 || typ != "histogram" {
		t.Fatalf("no histogram %s", name)
	}
	return uint64(c.Value), s.Value
}

func wantValue(t *testing.T, o *Observer, want float64, name string, labels ...string) {
	t.Helper()
	if got := value(t, o, name, labels...); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// ---- metrics ----

func TestMetricsFollowAnUpgrade(t *testing.T) {
	o := New(Options{Version: "v9.9.9"})
	wantValue(t, o, 1, "vigil_build_info", "goversion="+runtime.Version(), "version=v9.9.9")
	wantValue(t, o, 0, "vigil_app_up")
	wantValue(t, o, 0, "vigil_app_exits_total", "kind=crash")

	seq := upgradeSequence()
	o.Observe(seq[0])
	wantValue(t, o, 1, "vigil_app_up")
	wantValue(t, o, 1, "vigil_current_upgrade", "name=genesis")
	o.Observe(seq[1])
	wantValue(t, o, 1, "vigil_upgrade_in_progress")
	for _, e := range seq[2:] {
		o.Observe(e)
	}
	wantValue(t, o, 1, "vigil_upgrades_done_total", "upgrade=v2")
	wantValue(t, o, 0, "vigil_upgrade_in_progress")
	wantValue(t, o, 1, "vigil_app_up")
	wantValue(t, o, 1, "vigil_app_exits_total", "kind=expected")
	wantValue(t, o, 0, "vigil_app_exits_total", "kind=crash")
	wantValue(t, o, 1, "vigil_current_upgrade", "name=v2")
	if m, _, ok := sample(t, o, "vigil_current_upgrade", "", "name=genesis"); ok {
		t.Errorf("vigil_current_upgrade{name=genesis} still exported after the switch: %v", m)
	}
	if n, sum := histogram(t, o, "vigil_upgrade_pickup_seconds"); n != 1 || sum != 0.02 {
		t.Errorf("pickup histogram count %d sum %v, want 1 and 0.02", n, sum)
	}
	if n, sum := histogram(t, o, "vigil_backup_duration_seconds"); n != 1 || sum != 2 {
		t.Errorf("backup histogram count %d sum %v, want 1 and 2", n, sum)
	}
	wantValue(t, o, 4096, "vigil_backup_last_size_bytes")
	if ts := value(t, o, "vigil_backup_last_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Hour {
		t.Errorf("vigil_backup_last_timestamp_seconds = %v, want about now", ts)
	}
	if m, _, ok := sample(t, o, "vigil_upgrades_failed_total", "", "upgrade=v2"); ok {
		t.Errorf("a failed-upgrade sample exists after a good upgrade: %v", m)
	}
}

func TestMetricsCrashesDownloadsFailures(t *testing.T) {
	o := New(Options{})
	v3 := plan.Plan{Name: "v3", Height: 200}
	for _, e := range []event.Event{
		{Kind: event.AppStarted, Pid: 1, Installed: "genesis"},
		{Kind: event.AppExited, Exit: process.Exit{Code: 2}},
		{Kind: event.AppRestarting, Attempt: 1, Wait: time.Second},
		{Kind: event.AppStarted, Pid: 2, Installed: "genesis"},
		{Kind: event.AppExited, Exit: process.Exit{Code: 137, Signal: syscall.SIGKILL}},
		{Kind: event.AppRestarting, Attempt: 2, Wait: 2 * time.Second},
		{Kind: event.AppStarted, Pid: 3, Installed: "genesis"},
		{Kind: event.AppExited, Exit: process.Exit{}}, // ended on its own, status 0
		{Kind: event.UpgradeDetected, Plan: v3},
		{Kind: event.DownloadDone, Plan: v3, Took: 3 * time.Second, Err: errors.New("404")},
		{Kind: event.DownloadDone, Plan: v3, Took: time.Second},
		{Kind: event.UpgradeFailed, Plan: v3, Err: errors.New("pre-upgrade exited 30")},
	} {
		o.Observe(e)
	}
	wantValue(t, o, 2, "vigil_app_restarts_total")
	wantValue(t, o, 2, "vigil_app_exits_total", "kind=crash")
	wantValue(t, o, 1, "vigil_app_exits_total", "kind=clean")
	wantValue(t, o, 0, "vigil_app_exits_total", "kind=expected")
	wantValue(t, o, 0, "vigil_app_up")
	wantValue(t, o, 1, "vigil_download_failures_total")
	if n, sum := histogram(t, o, "vigil_download_duration_seconds"); n != 2 || sum != 4 {
		t.Errorf("download histogram count %d sum %v, want 2 and 4", n, sum)
	}
	wantValue(t, o, 1, "vigil_upgrades_failed_total", "upgrade=v3")
	wantValue(t, o, 0, "vigil_upgrade_in_progress")
	if n, _ := histogram(t, o, "vigil_upgrade_pickup_seconds"); n != 0 {
		t.Errorf("pickup histogram has %d samples after a failed upgrade, want 0", n)
	}
	s := o.Snapshot()
	if s.Vigil.Failure == "" || !strings.Contains(s.Vigil.Failure, "pre-upgrade exited 30") {
		t.Errorf("failure = %q, want the upgrade's error", s.Vigil.Failure)
	}
	if s.App.Restarts != 2 || s.App.LastExit == nil || s.App.LastExit.Code != 0 || s.App.LastExit.Expected {
		t.Errorf("app = %+v, last exit %+v", s.App, s.App.LastExit)
	}
}

// The Go and process collectors are there and gather without error (they read at scrape time).
func TestRuntimeCollectors(t *testing.T) {
	mfs := gather(t, New(Options{}))
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
}

// ---- HTTP ----

type server struct {
	base    string
	cancel  context.CancelFunc
	done    chan error
	stopped bool // Run's result was taken
}

func serve(t *testing.T, o *Observer) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{base: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- o.Run(ctx, ln) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	if s.stopped {
		return nil
	}
	s.stopped = true
	return testutil.Returned(t, s.done, "Run")
}

func wantStatus(t *testing.T, url string, want int) string {
	t.Helper()
	code, body := testutil.HTTPGet(t, url)
	if code != want {
		t.Errorf("GET %s = %d %q, want %d", url, code, body, want)
	}
	return body
}

// parseMetrics reads the text exposition format into "name{labels}" → value.
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestHTTPEndpoints(t *testing.T) {
	o := New(Options{Version: "test"})
	s := serve(t, o)
	seq := upgradeSequence()

	wantStatus(t, s.base+"/healthz", 200)
	if body := wantStatus(t, s.base+"/readyz", 503); !strings.Contains(body, "not running") {
		t.Errorf("readyz body %q should say the app is not running", body)
	}
	o.Observe(seq[0]) // app started
	wantStatus(t, s.base+"/readyz", 200)
	o.Observe(seq[1]) // upgrade detected
	if body := wantStatus(t, s.base+"/readyz", 503); !strings.Contains(body, "v2") {
		t.Errorf("readyz body %q should name the upgrade", body)
	}
	for _, e := range seq[2:7] { // up to the new app started: the upgrade is not done yet
		o.Observe(e)
	}
	wantStatus(t, s.base+"/readyz", 503)
	o.Observe(seq[7]) // upgrade done
	wantStatus(t, s.base+"/readyz", 200)
	wantStatus(t, s.base+"/healthz", 200)

	m := parseMetrics(t, wantStatus(t, s.base+"/metrics", 200))
	for k, want := range map[string]float64{
		`vigil_upgrades_done_total{upgrade="v2"}`:         1,
		`vigil_upgrade_pickup_seconds_count`:              1,
		`vigil_upgrade_pickup_seconds_bucket{le="0.025"}`: 1,
		`vigil_upgrade_pickup_seconds_bucket{le="0.01"}`:  0,
		`vigil_current_upgrade{name="v2"}`:                1,
		`vigil_app_up`:                                    1,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("/metrics %s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if _, ok := m[`vigil_current_upgrade{name="genesis"}`]; ok {
		t.Error(`/metrics still has vigil_current_upgrade{name="genesis"}`)
	}

	var st Status
	body := wantStatus(t, s.base+"/status", 200)
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.LastUpgrade == nil || st.LastUpgrade.Name != "v2" {
		t.Errorf("/status = %s (err %v), want last_upgrade v2", body, err)
	}

	o.Observe(event.Event{Kind: event.Stopping})
	wantStatus(t, s.base+"/readyz", 503)
	wantStatus(t, s.base+"/healthz", 200) // a shutdown is not a failure
	o.Fail(errors.New("boom"))
	if body := wantStatus(t, s.base+"/healthz", 503); !strings.Contains(body, "boom") {
		t.Errorf("healthz body %q should carry the failure", body)
	}
	code, _ := testutil.HTTPGet(t, s.base+"/nope")
	if code != 404 {
		t.Errorf("GET /nope = %d, want 404", code)
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.base, "http://"), 10*time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts after Run returned")
	}
}

// A slow client cannot keep Run from returning: Shutdown waits a bounded time, then closes.
func TestRunReturnsWithAnOpenConnection(t *testing.T) {
	o := New(Options{})
	s := serve(t, o)
	c, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n") // headers never finish
	if err := s.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// ---- status file ----

func TestStatusFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil-status.json")
	o := New(Options{StatusFile: path, Version: "v1.2.3"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, nil) }()

	// The first write happens before any event.
	waitFile(t, path, func(s Status) bool { return s.Vigil.Pid == os.Getpid() })
	for _, e := range upgradeSequence() {
		o.Observe(e)
	}
	o.Observe(event.Event{Kind: event.DownloadDone, Plan: v2, Took: 1500 * time.Millisecond, Err: errors.New("checksum mismatch")})
	waitFile(t, path, func(s Status) bool { return s.LastDownload != nil })

	o.Observe(event.Event{Kind: event.Stopping})
	o.Observe(event.Event{Kind: event.AppExited, Exit: process.Exit{Code: 143, Signal: syscall.SIGTERM}, Expected: true})
	cancel()
	if err := testutil.Returned(t, done, "Run"); err != nil {
		t.Fatal(err)
	}

	s, err := ReadStatus(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Schema != StatusSchema || s.Vigil.Pid != os.Getpid() || s.Vigil.Version != "v1.2.3" || s.Vigil.Started.IsZero() {
		t.Errorf("vigil = %+v", s.Vigil)
	}
	if s.Vigil.Stopped.IsZero() || s.Vigil.Stopped.Before(s.Vigil.Started) || !s.Vigil.Stopping {
		t.Errorf("the final write should carry the stop: %+v", s.Vigil)
	}
	if s.App.Running || s.App.Pid != 11 || s.App.Installed != "v2" || s.App.Bin != "/h/cosmovisor/upgrades/v2/bin/app" || s.App.Started.IsZero() {
		t.Errorf("app = %+v", s.App)
	}
	if x := s.App.LastExit; x == nil || x.Code != 143 || x.Signal != "SIGTERM" || !x.Expected || x.At.IsZero() {
		t.Errorf("last exit = %+v", x)
	}
	if u := s.LastUpgrade; u == nil || u.Name != "v2" || u.Height != 100 || u.Result != UpgradeDone || u.PickupSeconds != 0.02 || u.Error != "" {
		t.Errorf("last upgrade = %+v", u)
	}
	if s.Upgrading != nil {
		t.Errorf("upgrade still in progress: %+v", s.Upgrading)
	}
	if b := s.LastBackup; b == nil || b.Path != "/h/data-backup-v2" || b.Strategy != "copy" || b.Bytes != 4096 || b.Files != 3 || b.TookSeconds != 2 {
		t.Errorf("last backup = %+v", b)
	}
	if d := s.LastDownload; d == nil || d.OK || d.Error != "checksum mismatch" || d.TookSeconds != 1.5 || d.Upgrade != "v2" {
		t.Errorf("last download = %+v", d)
	}
	// Written atomically: no temporary file is left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("status dir holds %d entries, want only the file: %v", len(ents), ents)
	}
}

func waitFile(t *testing.T, path string, cond func(Status) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := ReadStatus(path)
		if err == nil && cond(s) {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("status file never matched; last content (err %v):\n%s", err, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Observe never waits for the writer: with nobody writing, a burst returns.
func TestObserveDoesNotBlock(t *testing.T) {
	o := New(Options{StatusFile: filepath.Join(t.TempDir(), "vigil-status.json")})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			o.Observe(event.Event{Kind: event.AppRestarting})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Observe blocked without a writer")
	}
	wantValue(t, o, 1000, "vigil_app_restarts_total")
}

// Concurrent events from several goroutines while the writer and the server run (for -race), and
// the file ends at the final state.
func TestConcurrentObservers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil-status.json")
	o := New(Options{StatusFile: path})
	s := serve(t, o)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				o.Observe(event.Event{Kind: event.AppRestarting})
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			testutil.HTTPGet(t, s.base+"/metrics")
		}
	})
	wg.Wait()
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStatus(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.App.Restarts != 800 {
		t.Errorf("restarts in file = %d, want 800", st.App.Restarts)
	}
	wantValue(t, o, 800, "vigil_app_restarts_total")
}

// A status file that cannot be written is logged once, not per event, and vigil goes on.
func TestStatusFileUnwritable(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	path := filepath.Join(t.TempDir(), "missing-dir", "vigil-status.json")
	o := New(Options{StatusFile: path, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, nil) }()
	for range 5 {
		o.Observe(event.Event{Kind: event.AppRestarting})
		time.Sleep(2 * time.Millisecond) // let the writer take some of them
	}
	cancel()
	if err := testutil.Returned(t, done, "Run"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "cannot write the status file"); n != 1 {
		t.Errorf("logged the write failure %d times, want once:\n%s", n, logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// The halt height the app runs with is in the status and a gauge: a
// scheduled upgrade's, the operator's own, or none after a start without.
func TestHaltHeight(t *testing.T) {
	o := New(Options{})
	for _, tc := range []struct {
		e    event.Event
		want float64
		for_ string // HaltFor
	}{
		{event.Event{Kind: event.AppStarted, Pid: 1, Installed: "genesis", Halt: 8, HaltFor: "v2"}, 8, "v2"},
		{event.Event{Kind: event.AppStarted, Pid: 2, Installed: "v2", Halt: 50}, 50, ""},
		{event.Event{Kind: event.AppStarted, Pid: 3, Installed: "v2"}, 0, ""},
	} {
		o.Observe(tc.e)
		wantValue(t, o, tc.want, "vigil_app_halt_height")
		st := o.Snapshot()
		if st.App.HaltHeight != int64(tc.want) || st.App.HaltFor != tc.for_ {
			t.Errorf("after %+v: status app halt %d for %q, want %v for %q", tc.e, st.App.HaltHeight, st.App.HaltFor, tc.want, tc.for_)
		}
	}
}
