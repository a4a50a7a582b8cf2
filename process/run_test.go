//go:build linux

package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Helper modes for Run, Output and the reaper (see runHelper).
func runMoreHelpers(mode string, args []string) int {
	switch mode {
	case "escape": // escape PIDFILE: a "sleep" child that called setsid; wait to be killed
		return escape(args[0])

	case "say": // say TEXT N: TEXT on stdout, "err:" TEXT on stderr, exit N
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return 100
		}
		fmt.Fprintf(os.Stdout, "%s\n", args[0])
		fmt.Fprintf(os.Stderr, "err:%s\n", args[0])
		return n

	case "suicide": // suicide SIGNO: kill ourselves with SIGNO (default action)
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return 100
		}
		signal.Reset(syscall.Signal(n))
		syscall.Kill(os.Getpid(), syscall.Signal(n))
		time.Sleep(hangTimeout)
		return 101

	case "flock": // flock FILE READYFILE: hold an exclusive flock on FILE, as LevelDB its LOCK, until killed
		return holdFlock(args[0], args[1])

	case "spew": // spew N: N bytes of 'x', then "END"
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return 100
		}
		os.Stdout.Write(bytes.Repeat([]byte{'x'}, n))
		os.Stdout.WriteString("END")
		return 0

	case "hold-pipe": // hold-pipe PIDFILE: a "sleep" grandchild keeps our stdout; we print and exit
		cmd := exec.Command(mustExecutable(), "x")
		cmd.Env = helperEnviron("sleep")
		cmd.Stdout = os.Stdout
		if err := cmd.Start(); err != nil {
			return 101
		}
		writeFileAtomic(args[0], strconv.Itoa(cmd.Process.Pid))
		fmt.Println("parent done")
		return 0

	case "orphans": // orphans N: N "orphan" children, not waited for
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return 100
		}
		for range n {
			cmd := exec.Command(mustExecutable(), strconv.Itoa(os.Getpid()))
			cmd.Env = helperEnviron("orphan")
			if err := cmd.Start(); err != nil {
				return 101
			}
		}
		return 0

	case "orphan": // orphan PARENT: wait until re-parented away from PARENT, then exit 5
		parent, err := strconv.Atoi(args[0])
		if err != nil {
			return 100
		}
		deadline := time.Now().Add(hangTimeout)
		for os.Getppid() == parent {
			if time.Now().After(deadline) {
				return 102
			}
			time.Sleep(time.Millisecond)
		}
		return 5

	case "reaper-host": // reaper-host ROUNDS ORPHANS: see TestReaper
		if err := reaperHost(args); err != nil {
			fmt.Fprintln(os.Stderr, "reaper-host:", err)
			return 1
		}
		return 0
	}
	return 99
}

func TestOutputCapturesBothStreams(t *testing.T) {
	out, exit, err := Output(context.Background(), helperSpec(t, "say", "hello", "3"), time.Second)
	if err != nil {
		t.Fatalf("Output: %v", err)
	}
	if exit != (Exit{Code: 3}) {
		t.Fatalf("exit = %+v, want code 3", exit)
	}
	if got, want := string(out), "hello\nerr:hello\n"; got != want {
		t.Fatalf("output = %q, want %q", got, want)
	}
	assertNoWaiters(t)
}

func TestOutputKilledBySignal(t *testing.T) {
	_, exit, err := Output(context.Background(), helperSpec(t, "suicide", strconv.Itoa(int(syscall.SIGTERM))), time.Second)
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if want := (Exit{Code: 128 + int(syscall.SIGTERM), Signal: syscall.SIGTERM}); exit != want {
		t.Fatalf("exit = %+v, want %+v", exit, want)
	}
}

func TestOutputTimeoutSendsTermFirst(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitLine(t, ready, "ready")
		cancel()
	}()
	_, exit, err := Output(ctx, helperSpec(t, "trap-term", ready), hangTimeout)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want it to wrap context.Canceled", err)
	}
	if exit != (Exit{Code: 7}) {
		t.Fatalf("exit = %+v, want the trap's 7: SIGTERM must come before SIGKILL", exit)
	}
}

func TestOutputTimeoutKillsAfterGrace(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "rec")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitLine(t, rec, "ready")
		cancel()
	}()
	spec := helperSpec(t, "ignore-term", rec)
	spec.OwnGroup = true
	_, exit, err := Output(ctx, spec, 50*time.Millisecond)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want it to wrap context.Canceled", err)
	}
	if exit.Signal != syscall.SIGKILL {
		t.Fatalf("exit = %+v, want SIGKILL after the grace", exit)
	}
	if !fileHasLine(rec, syscall.SIGTERM.String()) {
		t.Fatalf("the child never saw SIGTERM before SIGKILL")
	}
}

// A descendant that keeps the pipe open must not make Output wait for it.
func TestOutputDescendantHoldsPipe(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	type result struct {
		out  []byte
		exit Exit
		err  error
	}
	res := make(chan result, 1)
	go func() {
		out, exit, err := Output(context.Background(), helperSpec(t, "hold-pipe", pidFile), time.Second)
		res <- result{out, exit, err}
	}()
	grandchild := readPidFile(t, pidFile)
	gc := identify(t, grandchild)
	t.Cleanup(gc.killIfAlive)
	select {
	case r := <-res:
		if r.err != nil || !r.exit.Success() {
			t.Fatalf("exit %+v, err %v", r.exit, r.err)
		}
		if string(r.out) != "parent done\n" {
			t.Fatalf("output = %q, want the child's line", r.out)
		}
	case <-time.After(hangTimeout):
		t.Fatal("Output waited for a descendant that holds the pipe")
	}
	if !gc.alive() {
		t.Fatal("the grandchild is gone; the test proves nothing")
	}
}

func TestOutputKeepsTheTail(t *testing.T) {
	const n = 3 * MaxOutput
	out, exit, err := Output(context.Background(), helperSpec(t, "spew", strconv.Itoa(n)), time.Second)
	if err != nil || !exit.Success() {
		t.Fatalf("exit %+v, err %v", exit, err)
	}
	note := fmt.Sprintf("[… %d bytes dropped …]\n", n+3-MaxOutput)
	if !strings.HasPrefix(string(out), note) {
		t.Fatalf("output starts with %q, want %q", out[:min(len(out), 40)], note)
	}
	body := out[len(note):]
	if len(body) != MaxOutput || !bytes.HasSuffix(body, []byte("xxEND")) {
		t.Fatalf("kept %d bytes ending %q, want %d ending in xxEND", len(body), body[max(0, len(body)-5):], MaxOutput)
	}
}

func TestOutputErrors(t *testing.T) {
	spec := helperSpec(t, "exit", "0")
	spec.Stdout = os.Stderr
	if _, _, err := Output(context.Background(), spec, time.Second); err == nil {
		t.Fatal("Output accepted a Stdout it would override")
	}
	_, _, err := Output(context.Background(), Spec{Path: "/nonexistent/hook"}, time.Second)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "/nonexistent/hook") {
		t.Fatalf("err = %v, want ErrNotExist naming the path", err)
	}
}

func TestRunPassesFilesThrough(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spec := helperSpec(t, "say", "through", "4")
	spec.Stdout, spec.Stderr = f, f
	exit, err := Run(context.Background(), spec, time.Second)
	if err != nil || exit != (Exit{Code: 4}) {
		t.Fatalf("exit %+v, err %v; want code 4", exit, err)
	}
	if got := readFile(t, f.Name()); got != "through\nerr:through\n" {
		t.Fatalf("file = %q", got)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 4}
	for _, s := range []string{"ab", "cde", "", "fghijk", "l"} {
		tl.Write([]byte(s))
	}
	if got, want := string(tl.bytes()), "[… 8 bytes dropped …]\nijkl"; got != want {
		t.Fatalf("tail = %q, want %q", got, want)
	}
}
