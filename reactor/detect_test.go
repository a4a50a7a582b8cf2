package reactor

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/testutil"
	"github.com/vigilhq/vigil/plan"
)

func testReactor(t *testing.T) *reactor {
	t.Helper()
	l := home.Layout{Home: t.TempDir(), Name: "appd", Recase: true}
	for _, d := range []string{l.GenesisDir(), l.UpgradeDir("v2"), l.UpgradeDir("v3"), l.DataDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.EnsureCurrent(); err != nil {
		t.Fatal(err)
	}
	return &reactor{l: l, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		desc      string
		installed string     // "" = genesis, else upgrade dir to switch to
		marker    *plan.Plan // marker written in the installed dir
		badMarker bool       // write an unreadable marker instead
		file      string     // upgrade-info.json content; "-" = absent
		before    bool       // the file predates the switch of current
		want      string     // dir of the upgrade to apply, "" = none
		wantErr   bool
	}{
		{desc: "no file", file: "-"},
		{desc: "genesis, new plan", file: `{"name":"V2","height":100}`, want: "v2"},
		{desc: "already installed", installed: "v2", marker: &plan.Plan{Name: "v2", Height: 100}, file: `{"name":"v2","height":100}`},
		{desc: "installed without marker (linked by hand) is not redone", installed: "v2", file: `{"name":"v2","height":100}`},
		{desc: "next upgrade", installed: "v2", marker: &plan.Plan{Name: "v2", Height: 100}, file: `{"name":"v3","height":200}`, want: "v3"},
		{desc: "stale older plan is not a downgrade", installed: "v3", marker: &plan.Plan{Name: "v3", Height: 200}, file: `{"name":"v2","height":100}`},
		{desc: "same height other name ignored", installed: "v2", marker: &plan.Plan{Name: "v2", Height: 100}, file: `{"name":"v3","height":100}`},
		{desc: "linked by hand without marker, plan written before: not a downgrade", installed: "v3", file: `{"name":"v2","height":100}`, before: true},
		{desc: "linked by hand without marker, halt written after: applied", installed: "v2", file: `{"name":"v3","height":200}`, want: "v3"},
		{desc: "unreadable marker: no decision, so no downgrade", installed: "v3", badMarker: true, file: `{"name":"v2","height":100}`, wantErr: true},
		{desc: "half written", file: `{"name":"v2",`, wantErr: true},
		{desc: "empty", file: ``, wantErr: true},
		{desc: "dotdot refused", file: `{"name":"..","height":5}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			r := testReactor(t)
			if tt.installed != "" {
				if tt.marker != nil {
					if err := r.l.WriteMarker(tt.installed, *tt.marker); err != nil {
						t.Fatal(err)
					}
				}
				if tt.badMarker {
					if err := os.WriteFile(filepath.Join(r.l.UpgradeDir(tt.installed), plan.FileName), []byte("{garbage"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if err := r.l.Switch(tt.installed); err != nil {
					t.Fatal(err)
				}
			}
			if tt.file != "-" {
				if err := os.WriteFile(r.l.UpgradeInfoFile(), []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.before {
				old := time.Now().Add(-time.Hour)
				if err := os.Chtimes(r.l.UpgradeInfoFile(), old, old); err != nil {
					t.Fatal(err)
				}
			}
			var said string
			got, err := r.check(&said)
			if (err != nil) != tt.wantErr {
				t.Fatalf("check err = %v, wantErr %v", err, tt.wantErr)
			}
			gotDir := ""
			if got != nil {
				gotDir = got.dir
			}
			if gotDir != tt.want {
				t.Fatalf("check = %q, want %q", gotDir, tt.want)
			}
		})
	}
}

func TestCheckLogsAProblemOnce(t *testing.T) {
	r := testReactor(t)
	var buf testutil.Buffer
	r.log = slog.New(slog.NewTextHandler(&buf, nil))
	if err := os.WriteFile(r.l.UpgradeInfoFile(), []byte(`{"name":"v2"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var said string
	for range 3 {
		r.check(&said)
	}
	if n := buf.Count(`msg="invalid upgrade-info.json"`); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, buf.String())
	}
	if err := os.WriteFile(r.l.UpgradeInfoFile(), []byte(`{"height":3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r.check(&said)
	if n := buf.Count(`msg="invalid upgrade-info.json"`); n != 2 {
		t.Fatalf("a different problem must be logged again; got %d lines", n)
	}
}

func TestCurrentIsDirectoryStopsBeforeStarting(t *testing.T) {
	l := home.Layout{Home: t.TempDir(), Name: "appd", Recase: true}
	if err := os.MkdirAll(filepath.Join(l.Current(), "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Run(t.Context(), Config{Layout: l, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err == nil {
		t.Fatal("Run must refuse a current that is a directory")
	}
}
