package inspect

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/home"
)

// Doctor's rules on reports built by hand: no home, no process.

var testLayout = home.Layout{Home: "/h", Name: "simd", Recase: true}

// healthy is a home where nothing is wrong: genesis runs, v2 is staged and pending.
func healthy() Report {
	return Report{
		Home: "/h", Name: "simd", Layout: testLayout,
		Options: Options{BackupDir: "/h", BackupMode: backup.Auto},
		Current: Current{Link: "genesis", Installed: "genesis", Dir: "/h/cosmovisor/genesis", Bin: "/h/cosmovisor/genesis/bin/simd"},
		Staged:  []Staged{{Dir: "v2", Bin: "/h/cosmovisor/upgrades/v2/bin/simd", OK: true}},
		Pending: &Pending{File: "/h/data/upgrade-info.json", Name: "v2", Height: 100, Dir: "v2", State: PlanPending,
			Binary: "/h/cosmovisor/upgrades/v2/bin/simd", BinaryOK: true, BinaryExists: true},
		UpgradeEntries: []string{"v2"},
		Checks: &Checks{
			Data:  backup.DataLayout{Exists: true, Real: "/h/data"},
			Space: &backup.Space{Strategy: backup.Copy, Need: 1 << 20, Free: 1 << 30},
		},
	}
}

// versions answers `<bin> version` with the binary's directory name and
// counts the runs.
type versions map[string]int

func (v versions) run(bin string) (string, error) {
	v[bin]++
	if strings.Contains(bin, "hang") {
		return "", fmt.Errorf("`%s version` did not finish within 2s", bin)
	}
	return "version of " + bin, nil
}

func levels(fs []Finding, l Level) []string {
	var out []string
	for _, f := range fs {
		if f.Level == l {
			out = append(out, f.Msg)
		}
	}
	return out
}

func wantOne(t *testing.T, fs []Finding, l Level, parts ...string) {
	t.Helper()
	for _, f := range fs {
		all := f.Level == l
		for _, p := range parts {
			all = all && strings.Contains(f.Msg, p)
		}
		if all {
			return
		}
	}
	t.Errorf("no %s finding with %q in %+v", l, parts, fs)
}

func TestDiagnoseHealthy(t *testing.T) {
	v := versions{}
	fs := Diagnose(healthy(), v.run)
	if bad := append(levels(fs, Fail), levels(fs, Warn)...); len(bad) > 0 {
		t.Errorf("a healthy home has findings: %q", bad)
	}
	wantOne(t, fs, OK, "current -> genesis (relative, resolves)")
	wantOne(t, fs, OK, "pending upgrade v2 at height 100", "is ready")
	wantOne(t, fs, OK, "backup directory /h: writable, copy strategy needs about 1.0 MiB, 1.0 GiB free")
	if Failed(fs) {
		t.Error("Failed on a healthy home")
	}
	// v2 is both staged and pending: its version runs once.
	if n := v["/h/cosmovisor/upgrades/v2/bin/simd"]; n != 1 {
		t.Errorf("v2's version ran %d times, want 1", n)
	}
}

func TestDiagnoseNotAHome(t *testing.T) {
	r := healthy()
	r.RootErr = errors.New("not a directory")
	fs := Diagnose(r, versions{}.run)
	if len(fs) != 1 || fs[0].Level != Fail || !strings.Contains(fs[0].Msg, "not a cosmovisor/vigil home") {
		t.Errorf("findings %+v, want the one FAIL", fs)
	}
}

func TestDiagnoseBroken(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breaks func(r *Report)
		level  Level
		parts  []string
	}{
		{"current dangles", func(r *Report) {
			r.Current = Current{Link: "upgrades/gone", Err: errors.New("current -> upgrades/gone does not resolve")}
		}, Fail, []string{"does not resolve", "vigil will not start"}},
		{"no current", func(r *Report) {
			r.Current = Current{Missing: true, Err: home.ErrNoCurrent}
		}, Warn, []string{"/h/cosmovisor/current does not exist"}},
		{"absolute link", func(r *Report) { r.Current.Link = "/elsewhere/genesis" }, Warn, []string{"absolute link"}},
		{"foreign", func(r *Report) { r.Current.Foreign, r.Current.Dir = true, "/opt/simd" }, Warn, []string{"/opt/simd is outside"}},
		{"marker", func(r *Report) { r.Current.MarkerError = "bad json" }, Fail, []string{"marker", "bad json"}},
		{"current binary", func(r *Report) { r.Current.BinErr = home.ErrNotExecutable }, Fail, []string{"current binary", "the node cannot start"}},
		{"staged not executable", func(r *Report) {
			r.Staged[0].OK, r.Staged[0].Err = false, fmt.Errorf("x: %w", home.ErrNotExecutable)
		}, Fail, []string{"upgrades/v2", "chmod +x"}},
		{"staged behind current", func(r *Report) {
			r.Current.Marker = &PlanRef{"v3", 300}
			r.Staged[0] = Staged{Dir: "v2", Bin: "/hang/v2", OK: true, Marker: &PlanRef{"v2", 100}}
		}, Warn, []string{"upgrades/v2", "did not finish"}},
		{"staged upper case", func(r *Report) { r.Staged = append(r.Staged, Staged{Dir: "V3", OK: true}) },
			Warn, []string{"upgrades/V3 can never be used", "upgrades/v3"}},
		{"case mismatch", func(r *Report) {
			r.Pending.BinaryOK, r.Pending.BinaryExists = false, false
			r.UpgradeEntries = []string{"V2"}
		}, Fail, []string{"vigil looks for upgrades/v2 (names are lowercased) but only upgrades/V2 exists"}},
		{"missing, downloads off", func(r *Report) { r.Pending.BinaryOK, r.Pending.BinaryExists = false, false },
			Fail, []string{"missing and downloads are off"}},
		{"missing, downloads on", func(r *Report) {
			r.Pending.BinaryOK, r.Pending.BinaryExists = false, false
			r.Options.AllowDownload = true
		}, Warn, []string{"will download it", config.EnvAllowDownload}},
		{"bad pending binary", func(r *Report) { r.Pending.BinaryOK, r.Pending.BinaryError = false, "is built for arm64" },
			Fail, []string{"pending upgrade v2", "is built for arm64"}},
		{"refused", func(r *Report) { *r.Pending = Pending{Name: "../x", State: PlanRefused, Reason: "escapes"} },
			Fail, []string{`names "../x"`, "refuses it"}},
		{"older", func(r *Report) { *r.Pending = Pending{Name: "v1", State: PlanOlder, Reason: "below"} }, Warn, []string{"ignores it"}},
		{"dangling data", func(r *Report) {
			r.Checks = &Checks{DataErr: fmt.Errorf("data: %w", &backup.DanglingError{Path: "/h/data", Link: "/mnt/gone"})}
		}, Fail, []string{"data/ -> /mnt/gone: the link dangles"}},
		{"no data", func(r *Report) { r.Checks = &Checks{} }, Fail, []string{"data directory /h/data does not exist"}},
		{"data mount root", func(r *Report) {
			r.Checks.Data = backup.DataLayout{Exists: true, Link: "/mnt/d", Real: "/mnt/d", MountRoot: true}
			r.Checks.DataOtherFS = true
		}, Warn, []string{"/mnt/d is the root of a mounted filesystem"}},
		{"skip backup", func(r *Report) { r.Options.SkipBackup = true }, Warn, []string{config.EnvSkipBackup}},
		{"backup dir not writable", func(r *Report) { r.Checks.BackupDirAccess = errors.New("permission denied") },
			Fail, []string{"not writable by this user"}},
		{"no room", func(r *Report) { r.Checks.Space.Free = 1 }, Fail, []string{"wait at the halt", config.EnvBackupIfNoSpace + "=skip"}},
		{"no room, skip", func(r *Report) {
			r.Checks.Space.Free = 1
			r.Options.BackupSkipNoRoom = true
		}, Warn, []string{"WITHOUT a backup"}},
		{"pre-upgrade", func(r *Report) {
			r.Checks.Preupgrade, r.Checks.PreupgradeErr = "/h/cosmovisor/pre.sh", home.ErrNotExecutable
		},
			Fail, []string{config.EnvCustomPreupgrade, "every upgrade will fail"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := healthy()
			tc.breaks(&r)
			fs := Diagnose(r, versions{}.run)
			wantOne(t, fs, tc.level, tc.parts...)
			if Failed(fs) != (tc.level == Fail) {
				t.Errorf("Failed = %v with a %s finding: %+v", Failed(fs), tc.level, fs)
			}
		})
	}
}

func TestDiagnoseScheduled(t *testing.T) {
	r := healthy()
	r.Scheduled = []Scheduled{
		{Name: "v3", Height: 300, Dir: "v3", Binary: "/h/cosmovisor/upgrades/v3/bin/simd", BinaryOK: true, BinaryExists: true},
		{Name: "v4", Height: 400, Dir: "v4", Binary: "/h/cosmovisor/upgrades/v4/bin/simd", BinaryError: "no such file"},
		{Name: "v5", Height: 500, Dir: "v5", Binary: "/h/cosmovisor/upgrades/v5/bin/simd", BinaryError: "is built for arm64", BinaryExists: true},
		{Name: "..", Height: 600, BinaryError: "would resolve outside"},
	}
	fs := Diagnose(r, versions{}.run)
	wantOne(t, fs, OK, "scheduled upgrade v3 at height 300", "is installed")
	wantOne(t, fs, Warn, "scheduled upgrade v4 at height 400", "upgrades/v4/bin/simd is not installed")
	wantOne(t, fs, Fail, "scheduled upgrade v5 at height 500", "arm64")
	wantOne(t, fs, Fail, "scheduled upgrade .. at height 600", "would resolve outside")

	r = healthy()
	r.ScheduledError = "/h/data/upgrade-info.json.batch: invalid upgrade-info.json.batch"
	fs = Diagnose(r, versions{}.run)
	wantOne(t, fs, Fail, "/h/data/upgrade-info.json.batch", "cannot be read")
	if !Failed(fs) {
		t.Error("a malformed batch file does not fail doctor")
	}
}
