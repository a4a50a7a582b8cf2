package inspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/observe"
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
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app", "current", "home", "name", "pending", "staged", "vigil"}
	if got := keys(t, b); !slices.Equal(got, want) {
		t.Errorf("top-level keys %q, want %q", got, want)
	}
	var back struct {
		Current, Pending json.RawMessage
		Staged           []json.RawMessage
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
}

func TestWriteText(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.Local)
	r := healthy()
	r.Vigil = Vigil{Running: true, Pid: 42, Version: "v1.0.0", Started: now.Add(-90 * time.Minute)}
	r.Current.Version = "fakeapp genesis"
	r.Staged = append(r.Staged, Staged{Dir: "v3", OK: false, Error: "not executable"})
	r.App = &observe.AppStatus{Running: true, Pid: 43, Installed: "genesis", Started: now.Add(-time.Hour), Restarts: 1,
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
		"staged         v2           ok",
		"               v3           BAD: not executable",
		"app            running, pid 43, genesis, since " + now.Add(-time.Hour).Format("2006-01-02 15:04:05 MST") + " (1h0m0s ago)",
		"restarts       1",
		"last exit      code 143 (SIGTERM), expected, " + now.Add(-time.Hour).Format("2006-01-02 15:04:05 MST") + " (1h0m0s ago)",
		"last backup    /h/data-backup (copy, 3 files, 3.0 MiB, took 1.5s) " + now.Add(-72*time.Hour).Format("2006-01-02 15:04:05 MST") + " (3d ago)",
	}
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
