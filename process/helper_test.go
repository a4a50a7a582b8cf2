//go:build linux

package process

// The tests re-execute the test binary as the child, like os/exec's
// helperCommand: TestMain runs a helper mode instead of the tests when
// VIGIL_PROCESS_HELPER is set. The tests are Linux-only because they read
// /proc and exercise Pdeathsig.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/testutil"
)

const helperVar = "VIGIL_PROCESS_HELPER"

// hangTimeout bounds every wait in the tests. It only fails on hangs.
const hangTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperVar); mode != "" {
		os.Exit(runHelper(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runHelper is the child side. Modes that take signals append "ready" to a
// file once their handlers are installed, so the test never signals a child
// that would still die of the default action.
func runHelper(mode string, args []string) int {
	switch mode {
	case "exit": // exit N
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return 100
		}
		return n

	case "sleep": // default dispositions; lives until a signal kills it
		for {
			time.Sleep(time.Hour)
		}

	case "trap-term": // trap-term READYFILE: exit 7 on SIGTERM
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		appendLine(args[0], "ready")
		<-ch
		return 7

	case "ignore-term": // ignore-term RECORDFILE: record SIGTERM, never exit
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		appendLine(args[0], "ready")
		for s := range ch {
			appendLine(args[0], s.String())
		}
		return 0

	case "record": // record RECORDFILE: record signals, exit 0 on SIGTERM
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT,
			syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM)
		appendLine(args[0], "ready")
		for s := range ch {
			appendLine(args[0], s.String())
			if s == syscall.SIGTERM {
				return 0
			}
		}
		return 0

	case "group": // group PIDFILE: a "sleep" grandchild in our group, then wait for it; end only by a signal
		cmd := exec.Command(mustExecutable(), "x")
		cmd.Env = helperEnviron("sleep")
		if err := cmd.Start(); err != nil {
			return 101
		}
		writeFileAtomic(args[0], strconv.Itoa(cmd.Process.Pid))
		_ = cmd.Wait()
		// A signal to the group reaches both; returning here when the
		// grandchild's death is seen first would race our own death by it.
		for {
			time.Sleep(time.Hour)
		}

	case "stubborn-group": // stubborn-group PIDFILE RECORDFILE [exit]: an "ignore-term" grandchild in our group; then exit, or wait for it (dying of SIGTERM)
		cmd := exec.Command(mustExecutable(), args[1])
		cmd.Env = helperEnviron("ignore-term")
		if err := cmd.Start(); err != nil {
			return 101
		}
		for !fileHasLine(args[1], "ready") {
			time.Sleep(time.Millisecond)
		}
		writeFileAtomic(args[0], strconv.Itoa(cmd.Process.Pid))
		if len(args) > 2 && args[2] == "exit" {
			return 0 // without waiting: the grandchild stays behind in our group
		}
		_ = cmd.Wait()
		return 0

	case "leave-group": // leave-group PGID READYFILE: join group PGID, then like trap-term
		pgid, err := strconv.Atoi(args[0])
		if err != nil {
			return 100
		}
		if err := syscall.Setpgid(0, pgid); err != nil {
			return 102
		}
		return runHelper("trap-term", args[1:])

	case "echo": // copy stdin to stdout and stderr with prefixes
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return 103
		}
		fmt.Fprintf(os.Stdout, "out:%s", data)
		fmt.Fprintf(os.Stderr, "err:%s", data)
		return 0

	case "fds": // fds OUTFILE: where fds 0, 1 and 2 point
		var b strings.Builder
		for fd := 0; fd < 3; fd++ {
			link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
			if err != nil {
				return 104
			}
			fmt.Fprintln(&b, link)
		}
		writeFileAtomic(args[0], b.String())
		return 0

	case "env": // print $VIGIL_TEST_VALUE and the working directory
		wd, err := os.Getwd()
		if err != nil {
			return 105
		}
		fmt.Printf("%s\n%s\n", os.Getenv("VIGIL_TEST_VALUE"), wd)
		return 0

	case "parent": // parent PIDFILE RECORDFILE SIGNO: start a "record" child with Pdeathsig
		signo, err := strconv.Atoi(args[2])
		if err != nil {
			return 100
		}
		c, err := Start(Spec{
			Path:              mustExecutable(),
			Args:              []string{args[1]},
			Env:               helperEnviron("record"),
			OwnGroup:          true,
			ParentDeathSignal: syscall.Signal(signo),
		})
		if err != nil {
			return 106
		}
		writeFileAtomic(args[0], strconv.Itoa(c.Pid()))
		<-c.Done()
		return 0
	}
	return runMoreHelpers(mode, args)
}

func mustExecutable() string {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return exe
}

// helperEnviron is our environment with the helper mode replaced. Under
// -race, a child that exits normally would sleep a second in the race
// runtime's exit hook; GORACE turns that off unless the caller set GORACE.
func helperEnviron(mode string) []string {
	var env []string
	gorace := false
	for _, kv := range os.Environ() {
		gorace = gorace || strings.HasPrefix(kv, "GORACE=")
		if !strings.HasPrefix(kv, helperVar+"=") {
			env = append(env, kv)
		}
	}
	if !gorace {
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return append(env, helperVar+"="+mode)
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		panic(err)
	}
}

// writeFileAtomic makes sure a polling reader never sees half a file.
func writeFileAtomic(path, content string) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		panic(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		panic(err)
	}
}

// ---- test side ----

func helperSpec(t *testing.T, mode string, args ...string) Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Path: exe, Args: args, Env: helperEnviron(mode)}
}

// startChild starts spec and, at cleanup, makes sure the child is reaped and
// that its waiter goroutine is gone.
func startChild(t *testing.T, spec Spec) *Child {
	t.Helper()
	c, err := Start(spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-c.Done():
		default:
			_ = c.Kill()
		}
		select {
		case <-c.Done():
		case <-time.After(hangTimeout):
			t.Errorf("child %d not reaped after Kill", c.Pid())
			return
		}
		assertNoWaiters(t)
	})
	return c
}

// startGroupLeader starts the helper in mode ("trap-term", "ignore-term") as
// the leader of its own process group, with a fresh record file, and waits
// until the helper wrote "ready" there. It returns the child and the file.
func startGroupLeader(t *testing.T, mode string) (*Child, string) {
	t.Helper()
	rec := filepath.Join(t.TempDir(), "rec")
	spec := helperSpec(t, mode, rec)
	spec.OwnGroup = true
	c := startChild(t, spec)
	waitLine(t, rec, "ready")
	return c, rec
}

// startGroupWithGrandchild starts the "group" helper as the leader of its own
// process group and returns it with the grandchild it spawned into that group
// (killed at cleanup if it is still alive).
func startGroupWithGrandchild(t *testing.T) (*Child, procID) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "gc.pid")
	spec := helperSpec(t, "group", pidFile)
	spec.OwnGroup = true
	c := startChild(t, spec)
	gc := identify(t, readPidFile(t, pidFile))
	t.Cleanup(gc.killIfAlive)
	return c, gc
}

func waitDone(t *testing.T, c *Child) Exit {
	t.Helper()
	select {
	case <-c.Done():
		return c.Exit()
	case <-time.After(hangTimeout):
		t.Fatalf("child %d did not exit", c.Pid())
		return Exit{}
	}
}

// stopBounded runs Stop and fails the test if it hangs.
func stopBounded(t *testing.T, c *Child, ctx context.Context, grace time.Duration) StopResult {
	t.Helper()
	ch := make(chan StopResult, 1)
	go func() { ch <- c.Stop(ctx, grace) }()
	select {
	case r := <-ch:
		return r
	case <-time.After(hangTimeout):
		_ = c.Kill() // let the Stop goroutine finish
		t.Fatalf("Stop did not return")
		return StopResult{}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileHasLine(path, line string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func waitLine(t *testing.T, path, line string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%q in %s", line, filepath.Base(path)), func() bool { return fileHasLine(path, line) })
}

func readPidFile(t *testing.T, path string) int {
	t.Helper()
	waitFor(t, "pid file "+filepath.Base(path), func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	return pid
}

// procID identifies a process by pid and start time, so that a recycled pid
// is not mistaken for the original process.
type procID struct {
	pid   int
	start string
}

// procStat returns the state and start time fields of /proc/PID/stat.
func procStat(pid int) (state, start string, ok bool) {
	f, ok := testutil.ProcStat(pid)
	if !ok || len(f) < 20 {
		return "", "", false
	}
	return f[0], f[19], true // fields 3 (state) and 22 (starttime)
}

func identify(t *testing.T, pid int) procID {
	t.Helper()
	state, start, ok := procStat(pid)
	if !ok || state == "Z" || state == "X" {
		t.Fatalf("process %d is not running (state %q)", pid, state)
	}
	return procID{pid, start}
}

// alive reports whether the process still runs; a zombie counts as gone,
// since an orphan's zombie is reaped by whatever init the machine has.
func (p procID) alive() bool {
	state, start, ok := procStat(p.pid)
	return ok && start == p.start && state != "Z" && state != "X"
}

func (p procID) killIfAlive() {
	if p.alive() {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// assertNoWaiters fails if a waiter goroutine outlives its reaped child. It
// polls because the waiter returns just after closing Done.
func assertNoWaiters(t *testing.T) {
	t.Helper()
	const fn = "process.(*Child).wait("
	deadline := time.Now().Add(hangTimeout)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		if !bytes.Contains(buf, []byte(fn)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiter goroutine leaked:\n%s", buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isExited(err error) bool {
	return errors.Is(err, ErrExited) && errors.Is(err, os.ErrProcessDone)
}
