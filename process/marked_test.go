//go:build linux

package process

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// escape is the "escape" helper: like a hook's migration that calls setsid,
// it starts a "sleep" child in a session (and group) of its own, which
// inherits our environment, mark included; then it waits to be killed.
func escape(pidFile string) int {
	cmd := exec.Command(mustExecutable())
	cmd.Env = helperEnviron("sleep")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 101
	}
	writeFileAtomic(pidFile, strconv.Itoa(cmd.Process.Pid))
	for {
		time.Sleep(time.Hour)
	}
}

// markedChild starts the helper in mode with SupervisorEnv=mark ("" none),
// from bin ("" the test binary), in its own group when ownGroup.
func markedChild(t *testing.T, mode, bin, mark string, ownGroup bool, args ...string) *Child {
	t.Helper()
	spec := helperSpec(t, mode, args...)
	if bin != "" {
		spec.Path = bin
	}
	if mark != "" {
		spec.Env = append(spec.Env, SupervisorEnv+"="+mark)
	}
	spec.OwnGroup = ownGroup
	c, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	// Not startChild: its cleanup wants no other child's waiter left.
	t.Cleanup(func() {
		_ = c.Kill()
		waitDone(t, c)
	})
	return c
}

func TestMarkedOrphans(t *testing.T) {
	home, other := t.TempDir(), t.TempDir()
	nodeBin := filepath.Join(home, "cosmovisor", "genesis", "bin", "app")
	installCopy(t, nodeBin)
	self, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	live := strconv.Itoa(os.Getpid()) + ":" + strconv.FormatUint(self.start, 10) + ":" + bootID()
	dead := deadMark(t)

	deadOfHome := markedChild(t, "sleep", "", dead+":"+home, false)
	node := markedChild(t, "sleep", nodeBin, dead, true) // older mark, a node of this home
	_ = markedChild(t, "sleep", "", dead, false)         // older mark, not this home's binary
	_ = markedChild(t, "sleep", nodeBin, live+":"+home, true)
	_ = markedChild(t, "sleep", nodeBin, dead+":"+other, true)
	_ = markedChild(t, "sleep", nodeBin, "", true)
	_ = markedChild(t, "sleep", nodeBin, "garbage:"+home, true)
	// A hook (its own group) whose child escaped into a session of its own.
	pidFile := filepath.Join(t.TempDir(), "escaped.pid")
	hook := markedChild(t, "escape", "", dead+":"+home, true, pidFile)
	escaped := identify(t, readPidFile(t, pidFile))
	t.Cleanup(escaped.killIfAlive)
	// A group leader with a grandchild in its group: found once, as the
	// group, so the grandchild is signalled once.
	gcFile := filepath.Join(t.TempDir(), "gc.pid")
	group := markedChild(t, "group", "", dead+":"+home, true, gcFile)
	gc := identify(t, readPidFile(t, gcFile))
	t.Cleanup(gc.killIfAlive)
	// A process with a truly empty environment is read again for a while,
	// then passed over.
	bare := exec.Command("sleep", "60")
	bare.Env = []string{}
	if err := bare.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bare.Process.Kill(); bare.Wait() })

	found, err := MarkedOrphans(home)
	if err != nil {
		t.Fatal(err)
	}
	byPid := map[int]Orphan{}
	var pids []int
	for _, o := range found {
		byPid[o.Pid] = o
		pids = append(pids, o.Pid)
	}
	want := []int{deadOfHome.Pid(), node.Pid(), hook.Pid(), escaped.pid, group.Pid()}
	slices.Sort(pids)
	slices.Sort(want)
	if !slices.Equal(pids, want) {
		t.Fatalf("MarkedOrphans = %v, want %v (this home's dead vigil's, the escaped child, the group once)", pids, want)
	}
	if o := byPid[escaped.pid]; o.Pgid != escaped.pid || o.Sid != escaped.pid || o.Exe != mustExecutable() {
		t.Errorf("escaped child %+v: want its own group and session, and its executable", o)
	}
	if o := byPid[deadOfHome.Pid()]; o.Pgid != 0 || o.Mark != dead+":"+home {
		t.Errorf("%+v: want no group (it shares ours) and its mark", o)
	}
	// What EndStray needs to end them, the grandchild with its group.
	for _, o := range found {
		endStrayBounded(t, o.Ident, time.Second)
	}
	if escaped.alive() || gc.alive() {
		t.Fatalf("escaped child alive %v, grandchild alive %v after EndStray", escaped.alive(), gc.alive())
	}
	for _, c := range []*Child{deadOfHome, node, hook, group} {
		waitDone(t, c)
	}
	if found, err := MarkedOrphans(home); err != nil || len(found) != 0 {
		t.Fatalf("after ending them: MarkedOrphans = %+v, %v", found, err)
	}
}
