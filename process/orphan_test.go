//go:build linux

package process

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdFlock is the "flock" helper: an open descriptor with an exclusive
// flock on path, kept until the process is killed.
func holdFlock(path, ready string) int {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 110
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return 111
	}
	appendLine(ready, "ready")
	for {
		time.Sleep(time.Hour)
	}
}

// startFlocker starts a child holding an flock on lock and waits until it
// holds it.
func startFlocker(t *testing.T, lock string) *Child {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	// Not startChild: its cleanup wants no other child's waiter left, and a
	// test here runs two of these.
	c, err := Start(helperSpec(t, "flock", lock, ready))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Kill()
		waitDone(t, c)
	})
	waitLine(t, ready, "ready")
	return c
}

func holderPids(t *testing.T, path string) []int {
	t.Helper()
	hs, err := Holders(path)
	if err != nil {
		t.Fatalf("Holders(%s): %v", path, err)
	}
	var pids []int
	for _, h := range hs {
		pids = append(pids, h.Pid)
	}
	return pids
}

func TestHolders(t *testing.T) {
	dir := t.TempDir()
	lock, other, free := filepath.Join(dir, "LOCK"), filepath.Join(dir, "OTHER"), filepath.Join(dir, "FREE")
	if err := os.WriteFile(free, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	holder := startFlocker(t, lock)
	otherHolder := startFlocker(t, other)

	hs, err := Holders(lock)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].Pid != holder.Pid() {
		t.Fatalf("holders of %s: %+v, want only pid %d", lock, hs, holder.Pid())
	}
	if exe := mustExecutable(); hs[0].Exe != exe {
		t.Errorf("holder's executable %q, want %q", hs[0].Exe, exe)
	}
	// The same file by another path (a hard link) is the same file.
	link := filepath.Join(dir, "LINK")
	if err := os.Link(lock, link); err != nil {
		t.Fatal(err)
	}
	if pids := holderPids(t, link); !slices.Equal(pids, []int{holder.Pid()}) {
		t.Errorf("holders of a hard link to the lock: %v, want [%d]", pids, holder.Pid())
	}
	if pids := holderPids(t, other); !slices.Equal(pids, []int{otherHolder.Pid()}) {
		t.Errorf("holders of %s: %v, want [%d]", other, pids, otherHolder.Pid())
	}
	if pids := holderPids(t, free); len(pids) != 0 {
		t.Errorf("holders of a file nobody has open: %v", pids)
	}
	// This process is never its own holder.
	f, err := os.Open(free)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if pids := holderPids(t, free); len(pids) != 0 {
		t.Errorf("holders of a file only this process has open: %v", pids)
	}
	if _, err := Holders(filepath.Join(dir, "missing")); err == nil {
		t.Error("Holders of a missing file: no error")
	}
}

// installCopy copies this test binary to dst, so a child runs from there
// (its /proc/<pid>/exe), as a node from cosmovisor/genesis/bin.
func installCopy(t *testing.T, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(mustExecutable())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// deadMark is the SupervisorEnv value of a vigil that has exited: a child
// that ran and was reaped.
func deadMark(t *testing.T) string {
	t.Helper()
	c := startChild(t, helperSpec(t, "exit", "0"))
	id, ok := c.Ident()
	if !ok {
		t.Fatal("no ident for the short child")
	}
	waitDone(t, c)
	return fmt.Sprintf("%d:%d:%s", id.Pid, id.Start, id.Boot)
}

func TestOrphanOf(t *testing.T) {
	home := t.TempDir()
	nodeBin := filepath.Join(home, "cosmovisor", "genesis", "bin", "app")
	installCopy(t, nodeBin)
	self, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	live := fmt.Sprintf("%d:%d:%s", os.Getpid(), self.start, bootID())
	dead := deadMark(t)
	// A home spelled another way (a symlink to it) is the same home.
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(home, alias); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		bin      string // "" = the test binary where go test put it
		mark     string // "" = none
		ownGroup bool
		orphan   bool
		why      string // part of the reason given when not an orphan
	}{
		{"dead vigil", nodeBin, dead, false, true, ""},
		{"dead vigil, node leads its group", nodeBin, dead, true, true, ""},
		{"vigil of another boot", nodeBin, fmt.Sprintf("%d:%d:another-boot", os.Getpid(), self.start), false, true, ""},
		{"live vigil", nodeBin, live, false, false, "still runs"},
		{"live pid, other start time", nodeBin, fmt.Sprintf("%d:%d:%s", os.Getpid(), self.start+1, bootID()), false, true, ""},
		{"no mark", nodeBin, "", false, false, "not started by vigil"},
		{"outside cosmovisor", "", dead, false, false, "not under"},
		{"dead vigil of this home, outside cosmovisor", "", dead + ":" + home, false, true, ""},
		{"dead vigil of this home by another path", "", dead + ":" + alias, false, true, ""},
		{"dead vigil of another home", nodeBin, dead + ":" + t.TempDir(), false, false, "another home"},
		{"live vigil of this home", nodeBin, live + ":" + home, false, false, "still runs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := helperSpec(t, "sleep")
			if tc.bin != "" {
				spec.Path = tc.bin
			}
			if tc.mark != "" {
				spec.Env = append(spec.Env, SupervisorEnv+"="+tc.mark)
			}
			spec.OwnGroup = tc.ownGroup
			c := startChild(t, spec)
			id, orphan, why, err := OrphanOf(c.Pid(), home)
			if err != nil {
				t.Fatal(err)
			}
			if orphan != tc.orphan || !strings.Contains(why, tc.why) {
				t.Fatalf("OrphanOf = %v %q, want %v %q", orphan, why, tc.orphan, tc.why)
			}
			if !orphan {
				return
			}
			want, _ := c.Ident()
			if !tc.ownGroup {
				want.Pgid = 0
			}
			if id != want {
				t.Fatalf("ident %+v, want %+v", id, want)
			}
			// What EndStray needs to end it.
			if res := endStrayBounded(t, id, time.Second); !slices.Equal(res.Pids, []int{c.Pid()}) {
				t.Fatalf("EndStray ended %v, want [%d]", res.Pids, c.Pid())
			}
			waitDone(t, c)
		})
	}
}

func TestMarkEnv(t *testing.T) {
	env := []string{"A=1", SupervisorEnv + "=1:2:old", "B=2"}
	const home = "/srv/node:a" // a ':' in the home stays in its last field
	got := MarkEnv(env, home)
	self, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "B=2", fmt.Sprintf("%s=%d:%d:%s:%s", SupervisorEnv, os.Getpid(), self.start, bootID(), home)}
	if !slices.Equal(got, want) {
		t.Fatalf("MarkEnv = %q, want %q", got, want)
	}
	if env[1] != SupervisorEnv+"=1:2:old" {
		t.Error("MarkEnv modified its argument")
	}
	// nil is this process's own environment, marked.
	if got := MarkEnv(nil, home); len(got) != len(os.Environ())+1 || got[len(got)-1] != want[2] {
		t.Errorf("MarkEnv(nil) = %q", got)
	}
	m, err := parseMark(strings.TrimPrefix(want[2], SupervisorEnv+"="))
	if err != nil || m.pid != os.Getpid() || m.start != self.start || m.boot != bootID() || m.home != home {
		t.Fatalf("parseMark(own mark) = %+v, %v", m, err)
	}
	// A live vigil's child is not an orphan: this process is that vigil.
	if alive, err := m.alive(); err != nil || !alive {
		t.Errorf("own mark: alive %v, %v", alive, err)
	}
}

func TestParseMark(t *testing.T) {
	for _, tc := range []struct {
		in   string
		home string
		bad  bool
	}{
		{"12:34:boot", "", false}, // the older form: no home
		{"12:34:boot:/a/b", "/a/b", false},
		{"12:34:boot:/a:b:c", "/a:b:c", false},
		{"12:34:boot:relative", "", true},
		{"12:34:boot:", "", true},
		{"12:34", "", true},
		{"x:34:boot", "", true},
		{"12:y:boot", "", true},
	} {
		m, err := parseMark(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && (m.home != tc.home || m.pid != 12 || m.start != 34 || m.boot != "boot")) {
			t.Errorf("parseMark(%q) = %+v, %v", tc.in, m, err)
		}
	}
}
