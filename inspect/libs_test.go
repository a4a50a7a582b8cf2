package inspect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/binfile"
	"github.com/vigilhq/vigil/internal/testutil"
)

const (
	genesisBin = "/h/cosmovisor/genesis/bin/simd"
	v2Bin      = "/h/cosmovisor/upgrades/v2/bin/simd"
	v3Bin      = "/h/cosmovisor/upgrades/v3/bin/simd"
)

// found is a binary whose libraries are all found.
func found(by string, paths ...string) LibCheck {
	lc := LibCheck{Libs: binfile.Libs{Dynamic: true}}
	for _, p := range paths {
		lc.Libs.Libs = append(lc.Libs.Libs, binfile.Lib{Name: filepath.Base(p), Path: p, By: by})
	}
	return lc
}

// missing is a binary that needs libwasmvm, found nowhere.
func missing(by, libDir string) LibCheck {
	lc := found(by, "/lib/x86_64-linux-gnu/libc.so.6")
	lc.LibDir = libDir
	lc.Libs.Libs = append(lc.Libs.Libs, binfile.Lib{Name: "libwasmvm.x86_64.so", By: by,
		Searched: []string{libDir, binfile.LdCacheFile, "/lib/x86_64-linux-gnu"}})
	return lc
}

// withLibs is healthy() with v3 staged and scheduled, and the libraries of
// every binary found.
func withLibs() Report {
	r := healthy()
	r.Staged = append(r.Staged, Staged{Dir: "v3", Bin: v3Bin, OK: true})
	r.Scheduled = []Scheduled{{Name: "v3", Height: 300, Dir: "v3", Binary: v3Bin, BinaryOK: true, BinaryExists: true}}
	r.Checks.Libs = map[string]LibCheck{
		genesisBin: found(genesisBin, "/lib/x86_64-linux-gnu/libc.so.6"),
		v2Bin:      found(v2Bin, "/lib/x86_64-linux-gnu/libc.so.6", "/h/cosmovisor/upgrades/v2/lib/libwasmvm.x86_64.so"),
		v3Bin:      {Libs: binfile.Libs{}}, // static
	}
	r.Checks.Libs[v2Bin] = withLibDir(r.Checks.Libs[v2Bin], "/h/cosmovisor/upgrades/v2/lib")
	return r
}

func withLibDir(lc LibCheck, dir string) LibCheck { lc.LibDir = dir; return lc }

func TestCheckLibs(t *testing.T) {
	r := withLibs()
	fs := Diagnose(r, versions{}.run)
	if bad := append(levels(fs, Fail), levels(fs, Warn)...); len(bad) > 0 {
		t.Fatalf("all libraries found, yet: %q", bad)
	}
	wantOne(t, fs, OK, "current binary: "+genesisBin+" finds its 1 shared libraries")
	wantOne(t, fs, OK, "pending upgrade v2 at height 100: "+v2Bin+" finds its 2 shared libraries (1 from /h/cosmovisor/upgrades/v2/lib)")
	wantOne(t, fs, OK, "scheduled upgrade v3 at height 300: "+v3Bin+" needs no shared libraries")
	// One finding per binary: v2 is pending and staged, v3 scheduled and staged.
	if n := len(CheckLibs(r)); n != 3 {
		t.Errorf("%d library findings, want 3: %+v", n, CheckLibs(r))
	}

	for _, tc := range []struct {
		name   string
		breaks func(r *Report)
		level  Level
		parts  []string
	}{
		{"pending misses libwasmvm", func(r *Report) {
			r.Checks.Libs[v2Bin] = missing(v2Bin, "/h/cosmovisor/upgrades/v2/lib")
		}, Fail, []string{"pending upgrade v2 at height 100", v2Bin, "needs libwasmvm.x86_64.so",
			"found in none of /h/cosmovisor/upgrades/v2/lib, /etc/ld.so.cache, /lib/x86_64-linux-gnu", "will not start after the switch"}},
		{"scheduled misses it", func(r *Report) { r.Checks.Libs[v3Bin] = missing(v3Bin, "/h/cosmovisor/upgrades/v3/lib") },
			Warn, []string{"scheduled upgrade v3 at height 300", "needs libwasmvm.x86_64.so", "put it in /h/cosmovisor/upgrades/v3/lib"}},
		{"staged only misses it", func(r *Report) {
			r.Scheduled = nil
			r.Checks.Libs[v3Bin] = missing(v3Bin, "/h/cosmovisor/upgrades/v3/lib")
		}, Warn, []string{"upgrades/v3: " + v3Bin + " needs libwasmvm.x86_64.so"}},
		{"current misses it", func(r *Report) { r.Checks.Libs[genesisBin] = missing(genesisBin, "/h/cosmovisor/genesis/lib") },
			Fail, []string{"current binary", "needs libwasmvm.x86_64.so", "cannot start again"}},
		{"missing through a library", func(r *Report) {
			lc := missing("/h/cosmovisor/upgrades/v2/lib/libwasmvm.x86_64.so", "/h/cosmovisor/upgrades/v2/lib")
			r.Checks.Libs[v2Bin] = lc
		}, Fail, []string{"(through /h/cosmovisor/upgrades/v2/lib/libwasmvm.x86_64.so)"}},
		{"doctor's LD_LIBRARY_PATH", func(r *Report) {
			lc := missing(v2Bin, "/h/cosmovisor/upgrades/v2/lib")
			lc.LibraryPath = "/opt/wasm"
			r.Checks.Libs[v2Bin] = lc
		}, Fail, []string{"LD_LIBRARY_PATH=/opt/wasm is doctor's own"}},
		{"no loader", func(r *Report) {
			lc := found(v2Bin, "/lib/x86_64-linux-gnu/libc.so.6")
			lc.Libs.Interp, lc.Libs.InterpMissing = "/lib/ld-musl-x86_64.so.1", true
			r.Checks.Libs[v2Bin] = lc
		}, Fail, []string{"needs the program loader /lib/ld-musl-x86_64.so.1, which does not exist"}},
		{"unreadable", func(r *Report) { r.Checks.Libs[v2Bin] = LibCheck{Err: errors.New("bad ELF")} },
			Warn, []string{"cannot read which shared libraries", "bad ELF"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := withLibs()
			tc.breaks(&r)
			fs := Diagnose(r, versions{}.run)
			wantOne(t, fs, tc.level, tc.parts...)
			if Failed(fs) != (tc.level == Fail) {
				t.Errorf("Failed = %v with a %s finding: %+v", Failed(fs), tc.level, fs)
			}
		})
	}

	// Binaries that will not run are not judged here: the other checks say why.
	r = withLibs()
	r.Checks.Libs[v2Bin] = missing(v2Bin, "/h/cosmovisor/upgrades/v2/lib")
	r.Pending.BinaryOK, r.Staged[0].OK = false, false
	if got := CheckLibs(r); strings.Contains(fmtFindings(got), v2Bin) {
		t.Errorf("a binary that cannot run is judged for its libraries: %+v", got)
	}
	// Nothing gathered (not Linux, or no Checks): nothing said.
	r = withLibs()
	r.Checks.Libs = nil
	if got := CheckLibs(r); got != nil {
		t.Errorf("no facts, findings %+v", got)
	}
}

func fmtFindings(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(string(f.Level) + " " + f.Msg + "\n")
	}
	return b.String()
}

// Through Home on a real home: genesis runs a system binary (all found),
// the pending v2 needs a library nobody has, the scheduled v3 needs the
// same one and ships it in its lib/.
func TestHomeLibs(t *testing.T) {
	l := testLayout
	l.Home = t.TempDir()
	t.Setenv("LD_LIBRARY_PATH", "")
	bins := map[string]string{}
	for _, dir := range []string{l.GenesisDir(), l.UpgradeDir("v2"), l.UpgradeDir("v3")} {
		must(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
		bins[dir] = l.Bin(dir)
		testutil.DynamicBin(t, bins[dir])
	}
	testutil.PatchNeeded(t, bins[l.UpgradeDir("v2")], "libc.so.6", "libq.so.6")
	testutil.PatchNeeded(t, bins[l.UpgradeDir("v3")], "libc.so.6", "libq.so.6")
	must(t, os.Symlink("genesis", l.Current()))
	must(t, os.MkdirAll(l.DataDir(), 0o755))
	must(t, os.WriteFile(l.UpgradeInfoFile(), []byte(`{"name":"v2","height":100}`), 0o644))
	must(t, os.WriteFile(l.BatchFile(), []byte(`[{"name":"v3","height":300}]`), 0o644))

	// v3's lib/ has libq.so.6: the system's libc under that name.
	libc := ""
	if r := Home(l, Options{Checks: true, SkipBackup: true}); r.Checks != nil {
		for _, lib := range r.Checks.Libs[bins[l.GenesisDir()]].Libs.Libs {
			if lib.Name == "libc.so.6" {
				libc = lib.Path
			}
		}
	}
	if libc == "" {
		t.Fatal("genesis's libc.so.6 was not found")
	}
	b, err := os.ReadFile(libc)
	must(t, err)
	v3Lib := l.LibDir(l.UpgradeDir("v3"))
	must(t, os.MkdirAll(v3Lib, 0o755))
	must(t, os.WriteFile(filepath.Join(v3Lib, "libq.so.6"), b, 0o644))

	r := Home(l, Options{Checks: true, SkipBackup: true})
	if r.Pending == nil || r.Pending.State != PlanPending || len(r.Scheduled) != 1 {
		t.Fatalf("the home is not as built: pending %+v, scheduled %+v", r.Pending, r.Scheduled)
	}
	fs := CheckLibs(r)
	wantOne(t, fs, OK, "current binary: "+bins[l.GenesisDir()]+" finds its")
	wantOne(t, fs, Fail, "pending upgrade v2 at height 100", "needs libq.so.6", "found in none of "+l.LibDir(l.UpgradeDir("v2"))+", ")
	wantOne(t, fs, OK, "scheduled upgrade v3 at height 300", "finds its", "(1 from "+v3Lib+")")
	if len(fs) != 3 {
		t.Errorf("findings %s, want 3", fmtFindings(fs))
	}
}

// `<bin> version` runs as vigil runs the node: a binary whose library is in
// its version's lib/ answers.
func TestRunVersionLibDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "upgrades", "v2")
	bin := filepath.Join(dir, "bin", "simd")
	must(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	testutil.DynamicBin(t, bin) // true(1): exits 0 whatever the arguments
	testutil.PatchNeeded(t, bin, "libc.so.6", "libq.so.6")
	if _, err := RunVersion(bin, 5*time.Second); err == nil || !strings.Contains(err.Error(), "libq.so.6") {
		t.Fatalf("without lib/: %v, want the loader's error", err)
	}
	libs, err := binfile.ResolveLibs("/proc/self/exe", binfile.SystemSearch())
	libc := ""
	for _, l := range libs.Libs {
		if l.Name == "libc.so.6" {
			libc = l.Path
		}
	}
	if err != nil || libc == "" {
		libc = "/lib/x86_64-linux-gnu/libc.so.6"
	}
	b, err := os.ReadFile(libc)
	if err != nil {
		t.Skip("no libc.so.6 to copy:", err)
	}
	must(t, os.MkdirAll(filepath.Join(dir, "lib"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "lib", "libq.so.6"), b, 0o644))
	if _, err := RunVersion(bin, 5*time.Second); err != nil {
		t.Fatalf("with libq.so.6 in lib/: %v", err)
	}
}
