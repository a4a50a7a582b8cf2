package home

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/plan"
)

func newHome(t *testing.T) Layout {
	t.Helper()
	l := Layout{Home: t.TempDir(), Name: "appd", Recase: true}
	for _, d := range []string{l.GenesisDir(), l.UpgradeDir("v2")} {
		if err := os.MkdirAll(filepath.Join(d, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(l.Bin(d), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestDirName(t *testing.T) {
	tests := []struct {
		desc, in string
		recase   bool
		want     string
		wantErr  bool
	}{
		{desc: "lowercased", in: "MyUpgrade", recase: true, want: "myupgrade"},
		{desc: "recase off keeps case", in: "MyUpgrade", want: "MyUpgrade"},
		{desc: "spaces escaped", in: "some spaces", recase: true, want: "some%20spaces"},
		{desc: "slash escaped", in: "Has Space/x", recase: true, want: "has%20space%2Fx"},
		{desc: "dotdot refused", in: "..", recase: true, wantErr: true},
		{desc: "dot refused", in: ".", wantErr: true},
		{desc: "empty refused", in: "", wantErr: true},
		{desc: "blank refused", in: "  ", wantErr: true},
		{desc: "control char refused", in: "v2\n", wantErr: true},
		{desc: "nul refused", in: "v\x002", wantErr: true},
		{desc: "dotdot slash escaped stays inside", in: "../x", recase: true, want: "..%2Fx"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			l := Layout{Home: "/h", Name: "d", Recase: tt.recase}
			got, err := l.DirName(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DirName(%q) = %q, want error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("DirName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if filepath.Dir(l.UpgradeDir(got)) != l.UpgradesDir() {
				t.Fatalf("%q escapes upgrades/", got)
			}
		})
	}
}

func TestEnsureCurrentAndSwitch(t *testing.T) {
	l := newHome(t)
	if _, err := l.Installed(); err != ErrNoCurrent {
		t.Fatalf("fresh home: err = %v, want ErrNoCurrent", err)
	}
	created, err := l.EnsureCurrent()
	if err != nil || !created {
		t.Fatalf("EnsureCurrent = %v, %v", created, err)
	}
	if created, _ := l.EnsureCurrent(); created {
		t.Fatal("second EnsureCurrent must not recreate")
	}
	in, err := l.Installed()
	if err != nil || in.Dir != l.GenesisDir() || in.Upgrade != "" || in.Marker != nil {
		t.Fatalf("Installed = %+v, %v", in, err)
	}
	p := plan.Plan{Name: "V2", Height: 100, Info: "x"}
	if err := l.WriteMarker("v2", p); err != nil {
		t.Fatal(err)
	}
	if err := l.Switch("v2"); err != nil {
		t.Fatal(err)
	}
	if target, _ := os.Readlink(l.Current()); target != "upgrades/v2" {
		t.Fatalf("current -> %q, want relative upgrades/v2", target)
	}
	in, err = l.Installed()
	if err != nil || in.Upgrade != "v2" || in.Marker == nil || *in.Marker != (plan.Plan{Name: "v2", Height: 100, Info: "x"}) {
		t.Fatalf("after switch Installed = %+v (marker %+v), %v", in, in.Marker, err)
	}
	if err := l.SwitchGenesis(); err != nil {
		t.Fatal(err)
	}
	if target, _ := os.Readlink(l.Current()); target != "genesis" {
		t.Fatalf("current -> %q after SwitchGenesis, want genesis", target)
	}
}

func TestHomeMovedStillResolves(t *testing.T) {
	l := newHome(t)
	if err := l.Switch("v2"); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Rename(l.Home, moved); err != nil {
		t.Fatal(err)
	}
	l.Home = moved
	in, err := l.Installed()
	if err != nil || in.Dir != l.UpgradeDir("v2") {
		t.Fatalf("Installed after move = %+v, %v", in, err)
	}
}

func TestCurrentIsDirectoryIsAnError(t *testing.T) {
	l := newHome(t)
	if err := os.MkdirAll(filepath.Join(l.Current(), "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Installed(); err == nil || !strings.Contains(err.Error(), "not a symlink") {
		t.Fatalf("Installed err = %v", err)
	}
	if created, err := l.EnsureCurrent(); created || err != nil {
		t.Fatalf("EnsureCurrent must leave an existing directory alone: %v %v", created, err)
	}
	if err := l.Switch("v2"); err == nil {
		t.Fatal("Switch over a directory must fail")
	}
	if err := l.SwitchGenesis(); err == nil {
		t.Fatal("SwitchGenesis over a directory must fail")
	}
	if st, err := os.Lstat(l.Current()); err != nil || !st.IsDir() {
		t.Fatal("the directory must be left in place")
	}
}

func TestDanglingCurrentIsAnError(t *testing.T) {
	l := newHome(t)
	if err := os.Symlink("upgrades/gone", l.Current()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Installed(); err == nil || !strings.Contains(err.Error(), "does not resolve") {
		t.Fatalf("Installed err = %v", err)
	}
	if target, _ := os.Readlink(l.Current()); target != "upgrades/gone" {
		t.Fatal("a dangling link must not be silently relinked to genesis")
	}
}

func TestBadMarkerIsReported(t *testing.T) {
	l := newHome(t)
	if err := os.WriteFile(filepath.Join(l.UpgradeDir("v2"), plan.FileName), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Switch("v2"); err != nil {
		t.Fatal(err)
	}
	in, err := l.Installed()
	if err != nil || in.Marker != nil || in.MarkerErr == nil {
		t.Fatalf("Installed = %+v, %v", in, err)
	}
}

func TestCheckBinary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "appd")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := CheckBinary(p)
	if err != nil || !changed {
		t.Fatalf("CheckBinary = %v, %v", changed, err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o755 {
		t.Fatalf("mode = %v, want 0755", st.Mode().Perm())
	}
	if changed, _ := CheckBinary(p); changed {
		t.Fatal("already executable: no change expected")
	}
	if _, err := CheckBinary(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing binary must fail")
	}
	if _, err := CheckBinary(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: err = %v", err)
	}
}

// A file the machine cannot run fails the check and is never made executable.
func TestCheckBinaryRefusesWhatCannotRun(t *testing.T) {
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Skip("no /proc/self/exe:", err)
	}
	foreign := append([]byte(nil), self[:64]...)
	foreign[18], foreign[19] = 0x16, 0x00 // e_machine = EM_S390 (little-endian hosts)
	if runtime.GOARCH == "s390x" {
		foreign[18], foreign[19] = 0x00, 0x3e // EM_X86_64, big-endian
	}
	for name, content := range map[string][]byte{
		"empty":        nil,
		"garbage":      []byte("<html>404 Not Found</html>"),
		"tarball":      {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0},
		"foreign arch": foreign,
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "appd")
			if err := os.WriteFile(p, content, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := CheckBinary(p); err == nil {
				t.Fatal("CheckBinary accepted it")
			}
			if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
				t.Fatalf("mode = %v: a file that cannot run must not be made executable", st.Mode().Perm())
			}
		})
	}
}

func TestChildEnv(t *testing.T) {
	l := newHome(t)
	v2 := l.UpgradeDir("v2")
	lib := filepath.Join(v2, "lib")
	base := []string{"HOME=/root", "PATH=/usr/bin"}

	// No lib/: unchanged, for genesis and an upgrade alike.
	for _, d := range []string{l.GenesisDir(), v2} {
		if got := l.ChildEnv(d, base); strings.Join(got, " ") != strings.Join(base, " ") {
			t.Fatalf("no lib/ in %s: env %q, want it unchanged", d, got)
		}
	}
	// A file named lib is not a library folder.
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := l.ChildEnv(v2, base); len(got) != len(base) {
		t.Fatalf("a file named lib: env %q", got)
	}
	if err := os.Remove(lib); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		desc string
		env  []string
		want string
	}{
		{"unset", base, lib},
		{"empty (no stray cwd entry)", append(base[:2:2], "LD_LIBRARY_PATH="), lib},
		{"prepended", append(base[:2:2], "LD_LIBRARY_PATH=/opt/x:/opt/y"), lib + ":/opt/x:/opt/y"},
		{"already first", append(base[:2:2], "LD_LIBRARY_PATH="+lib+":/opt/x"), lib + ":/opt/x"},
		{"twice: the last counts", append(base[:2:2], "LD_LIBRARY_PATH=/a", "LD_LIBRARY_PATH=/b"), lib + ":/b"},
	} {
		in := append([]string(nil), c.env...)
		got := l.ChildEnv(v2, c.env)
		var vals []string
		for _, kv := range got {
			if v, ok := strings.CutPrefix(kv, "LD_LIBRARY_PATH="); ok {
				vals = append(vals, v)
			}
		}
		if len(vals) != 1 || vals[0] != c.want {
			t.Errorf("%s: LD_LIBRARY_PATH %q, want exactly %q", c.desc, vals, c.want)
		}
		if !strings.Contains(strings.Join(got, " "), "HOME=/root") || len(got) != len(base)+1 {
			t.Errorf("%s: other variables lost: %q", c.desc, got)
		}
		if strings.Join(c.env, " ") != strings.Join(in, " ") {
			t.Errorf("%s: the caller's env was modified: %q", c.desc, c.env)
		}
	}
	// genesis/lib counts too.
	gl := filepath.Join(l.GenesisDir(), "lib")
	if err := os.MkdirAll(gl, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := l.ChildEnv(l.GenesisDir(), nil); len(got) != 1 || got[0] != "LD_LIBRARY_PATH="+gl {
		t.Errorf("genesis/lib: env %q", got)
	}
}
