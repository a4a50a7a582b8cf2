package inspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/observe"
	"github.com/vigilhq/vigil/plan"
)

func keys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The JSON of `vigil status --json` is documented and scripted against: the
// facts only doctor judges never leak into it.
func TestReportJSONShape(t *testing.T) {
	r := healthy()
	r.RootErr = errors.New("x")
	r.Current.Err, r.Current.BinErr, r.Current.Missing = errors.New("x"), errors.New("x"), true
	r.Staged[0].Err = errors.New("x")
	r.Scheduled = []Scheduled{{Name: "v3", Height: 300, Dir: "v3", Binary: "/b", BinaryOK: true, BinaryExists: true}}
	r.ScheduledErr = errors.New("x")
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app", "current", "home", "name", "pending", "scheduled", "staged", "vigil"}
	if got := keys(t, b); !slices.Equal(got, want) {
		t.Errorf("top-level keys %q, want %q", got, want)
	}
	var back struct {
		Current, Pending  json.RawMessage
		Staged, Scheduled []json.RawMessage
	}
	must(t, json.Unmarshal(b, &back))
	if got := keys(t, back.Current); !slices.Equal(got, []string{"bin", "installed", "link"}) {
		t.Errorf("current keys %q", got)
	}
	if got := keys(t, back.Pending); !slices.Equal(got, []string{"binary", "binary_ok", "dir", "file", "height", "name", "state"}) {
		t.Errorf("pending keys %q", got)
	}
	if got := keys(t, back.Staged[0]); !slices.Equal(got, []string{"bin", "current", "dir", "ok"}) {
		t.Errorf("staged keys %q", got)
	}
	if got := keys(t, back.Scheduled[0]); !slices.Equal(got, []string{"binary", "binary_ok", "dir", "height", "name"}) {
		t.Errorf("scheduled keys %q", got)
	}
}

func TestWriteText(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.Local)
	r := healthy()
	r.Vigil = Vigil{Running: true, Pid: 42, Version: "v1.0.0", Started: now.Add(-90 * time.Minute)}
	r.Current.Version = "fakeapp genesis"
	r.Staged = append(r.Staged, Staged{Dir: "v3", OK: false, Error: "not executable"})
	r.Scheduled = []Scheduled{{Name: "v3", Height: 300, Dir: "v3", BinaryError: "not executable"}, {Name: "v4", Height: 400, Dir: "v4", BinaryOK: true}}
	r.App = &observe.AppStatus{Running: true, Pid: 43, Installed: "genesis", Started: now.Add(-time.Hour), Restarts: 1,
		HaltHeight: 300, HaltFor: "v3",
		LastExit: &observe.Exit{Code: 143, Signal: "SIGTERM", At: now.Add(-time.Hour), Expected: true}}
	r.LastBackup = &Backup{Path: "/h/data-backup", Strategy: "copy", Files: 3, Bytes: 3 << 20, TookSeconds: 1.5, Time: now.Add(-72 * time.Hour)}
	var buf bytes.Buffer
	WriteText(&buf, r, now)
	want := []string{
		"vigil          running, pid 42, v1.0.0, since " + now.Add(-90*time.Minute).Format("2006-01-02 15:04:05 MST") + " (1h30m0s ago)",
		"home           /h (simd)",
		"current        genesis -> /h/cosmovisor/genesis/bin/simd",
		"version        fakeapp genesis",
		"installed      genesis",
		"pending        v2 at height 100 -> upgrades/v2; binary ready",
		"scheduled      v3 at height 300 -> upgrades/v3; binary NOT ready: not executable",
		"               v4 at height 400 -> upgrades/v4; binary ready",
		"staged         v2           ok",
		"               v3           BAD: not executable",
		"app            running, pid 43, genesis, since " + now.Add(-time.Hour).Format("2006-01-02 15:04:05 MST") + " (1h0m0s ago)",
		"halts at       300, for the scheduled upgrade v3",
		"restarts       1",
		"last exit      code 143 (SIGTERM), expected, " + now.Add(-time.Hour).Format("2006-01-02 15:04:05 MST") + " (1h0m0s ago)",
		"last backup    /h/data-backup (copy, 3 files, 3.0 MiB, took 1.5s) " + now.Add(-72*time.Hour).Format("2006-01-02 15:04:05 MST") + " (3d ago)",
	}
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWriteTextScheduled(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Report)
		want string
	}{
		{func(r *Report) {}, "scheduled      none\n"},
		{func(r *Report) { r.App = &observe.AppStatus{Running: true, HaltHeight: 50} }, "halts at       50 (the operator's own halt-height)\n"},
		{func(r *Report) { r.ScheduledError = "/h/data/upgrade-info.json.batch: invalid" }, "scheduled      UNREADABLE: /h/data/upgrade-info.json.batch: invalid\n"},
	} {
		r := healthy()
		tc.mod(&r)
		var buf bytes.Buffer
		WriteText(&buf, r, time.Now())
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("no %q in\n%s", tc.want, buf.String())
		}
	}
}

// Home reads the batch file of a real home: each plan with its binary.
func TestHomeScheduled(t *testing.T) {
	l := home.Layout{Home: t.TempDir(), Name: "simd", Recase: true}
	must(t, os.MkdirAll(filepath.Join(l.UpgradeDir("v3"), "bin"), 0o755))
	must(t, os.WriteFile(l.Bin(l.UpgradeDir("v3")), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.MkdirAll(l.DataDir(), 0o755))
	if r := Home(l, Options{}); r.Scheduled == nil || len(r.Scheduled) != 0 || r.ScheduledErr != nil {
		t.Fatalf("no batch: %+v, %v; want [] and no error", r.Scheduled, r.ScheduledErr)
	}
	must(t, l.Schedule([]plan.Plan{{Name: "v4", Height: 400}, {Name: "V3", Height: 300}}, false))
	r := Home(l, Options{})
	want := []Scheduled{
		{Name: "V3", Height: 300, Dir: "v3", Binary: l.Bin(l.UpgradeDir("v3")), BinaryOK: true, BinaryExists: true},
		{Name: "v4", Height: 400, Dir: "v4", Binary: l.Bin(l.UpgradeDir("v4"))},
	}
	if len(r.Scheduled) != 2 || r.Scheduled[0] != want[0] || r.Scheduled[1].Name != "v4" || r.Scheduled[1].BinaryOK || r.Scheduled[1].BinaryExists || r.Scheduled[1].BinaryError == "" {
		t.Fatalf("Scheduled = %+v, want %+v (v4 with its error)", r.Scheduled, want)
	}
	must(t, os.WriteFile(l.BatchFile(), []byte("[{"), 0o600))
	if r := Home(l, Options{}); r.ScheduledErr == nil || !strings.Contains(r.ScheduledError, l.BatchFile()) {
		t.Fatalf("malformed batch: %q, want an error naming %s", r.ScheduledError, l.BatchFile())
	}
}
