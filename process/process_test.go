//go:build linux

package process

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestExitString(t *testing.T) {
	for _, tc := range []struct {
		e       Exit
		want    string
		success bool
	}{
		{Exit{Code: 0}, "exit status 0", true},
		{Exit{Code: 3}, "exit status 3", false},
		{Exit{Code: 143, Signal: syscall.SIGTERM}, "killed by signal terminated", false},
		{Exit{Code: -1}, "exit status unknown", false},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.e, got, tc.want)
		}
		if got := tc.e.Success(); got != tc.success {
			t.Errorf("%#v.Success() = %v, want %v", tc.e, got, tc.success)
		}
	}
}

func TestExitCodePassthrough(t *testing.T) {
	for _, code := range []int{0, 3} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			c := startChild(t, helperSpec(t, "exit", strconv.Itoa(code)))
			if c.Pid() <= 0 {
				t.Fatalf("Pid() = %d", c.Pid())
			}
			got := waitDone(t, c)
			want := Exit{Code: code}
			if got != want {
				t.Fatalf("Exit() = %+v, want %+v", got, want)
			}
			if got.Success() != (code == 0) {
				t.Fatalf("Success() = %v for code %d", got.Success(), code)
			}
		})
	}
}

func TestExitBeforeDoneIsZero(t *testing.T) {
	c := startChild(t, helperSpec(t, "sleep"))
	if got := c.Exit(); got != (Exit{}) {
		t.Fatalf("Exit() before Done = %+v, want zero", got)
	}
}

func TestKilledBySignal(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(*Child) error
		sig  syscall.Signal
		str  string
	}{
		{"SIGTERM", func(c *Child) error { return c.Signal(syscall.SIGTERM) }, syscall.SIGTERM, "killed by signal terminated"},
		{"Kill", (*Child).Kill, syscall.SIGKILL, "killed by signal killed"},
	} {
		for _, own := range []bool{false, true} {
			t.Run(tc.name+"/OwnGroup="+strconv.FormatBool(own), func(t *testing.T) {
				spec := helperSpec(t, "sleep")
				spec.OwnGroup = own
				c := startChild(t, spec)
				if err := tc.send(c); err != nil {
					t.Fatalf("signal: %v", err)
				}
				got := waitDone(t, c)
				want := Exit{Code: 128 + int(tc.sig), Signal: tc.sig}
				if got != want {
					t.Fatalf("Exit() = %+v, want %+v", got, want)
				}
				if got.String() != tc.str {
					t.Fatalf("String() = %q, want %q", got.String(), tc.str)
				}
			})
		}
	}
}

func TestStopGraceful(t *testing.T) {
	c, _ := startGroupLeader(t, "trap-term")

	res := stopBounded(t, c, context.Background(), hangTimeout)
	if res.Killed {
		t.Fatalf("Stop killed a child that exits on SIGTERM: %+v", res)
	}
	if want := (Exit{Code: 7}); res.Exit != want {
		t.Fatalf("Stop().Exit = %+v, want %+v", res.Exit, want)
	}
	if res.Took <= 0 {
		t.Fatalf("Stop().Took = %v, want > 0", res.Took)
	}
	if c.Exit() != res.Exit {
		t.Fatalf("Exit() = %+v, Stop().Exit = %+v", c.Exit(), res.Exit)
	}
}

func TestStopEscalatesAfterGrace(t *testing.T) {
	c, _ := startGroupLeader(t, "ignore-term")
	id := identify(t, c.Pid())

	res := stopBounded(t, c, context.Background(), 200*time.Millisecond)
	if !res.Killed {
		t.Fatalf("Stop().Killed = false for a child that ignores SIGTERM: %+v", res)
	}
	if want := (Exit{Code: 128 + 9, Signal: syscall.SIGKILL}); res.Exit != want {
		t.Fatalf("Stop().Exit = %+v, want %+v", res.Exit, want)
	}
	if id.alive() {
		t.Fatalf("process %d still alive after Stop", id.pid)
	}
	if err := c.Signal(syscall.SIGTERM); !isExited(err) {
		t.Fatalf("Signal after Stop = %v, want ErrExited", err)
	}
}

func TestStopCancelledContextKillsAtOnce(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "rec")
	c := startChild(t, helperSpec(t, "ignore-term", rec))
	waitLine(t, rec, "ready")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// An hour of grace: only the cancelled context can make Stop return.
	res := stopBounded(t, c, ctx, time.Hour)
	if !res.Killed || res.Exit.Signal != syscall.SIGKILL {
		t.Fatalf("Stop(cancelled ctx) = %+v, want killed by SIGKILL", res)
	}
}

// A first Stop with a long grace is waiting; a second Stop with a cancelled
// context (the operator's second Ctrl-C) escalates, and both return the same
// result without a second SIGTERM being needed.
func TestStopCancelDuringGraceAndConcurrentStop(t *testing.T) {
	c, rec := startGroupLeader(t, "ignore-term")

	first := make(chan StopResult, 1)
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	go func() { first <- c.Stop(ctx1, time.Hour) }()
	waitLine(t, rec, "terminated") // the first Stop's SIGTERM arrived

	select {
	case r := <-first:
		t.Fatalf("Stop returned during the grace period: %+v", r)
	default:
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	second := stopBounded(t, c, ctx2, time.Hour)

	var r1 StopResult
	select {
	case r1 = <-first:
	case <-time.After(hangTimeout):
		t.Fatal("first Stop did not return after the child was killed")
	}
	if !second.Killed || second.Exit.Signal != syscall.SIGKILL {
		t.Fatalf("second Stop = %+v, want killed", second)
	}
	if r1 != second {
		t.Fatalf("Stop results differ: %+v vs %+v", r1, second)
	}
}

func TestStopCancelDuringGrace(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "rec")
	c := startChild(t, helperSpec(t, "ignore-term", rec))
	waitLine(t, rec, "ready")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan StopResult, 1)
	go func() { done <- c.Stop(ctx, time.Hour) }()
	waitLine(t, rec, "terminated")
	cancel()
	select {
	case r := <-done:
		if !r.Killed {
			t.Fatalf("Stop after cancel = %+v, want Killed", r)
		}
	case <-time.After(hangTimeout):
		t.Fatal("Stop did not return after ctx was cancelled")
	}
}

func TestSignalAfterExit(t *testing.T) {
	c := startChild(t, helperSpec(t, "exit", "0"))
	waitDone(t, c)
	if err := c.Signal(syscall.SIGHUP); !isExited(err) {
		t.Fatalf("Signal after exit = %v, want ErrExited wrapping os.ErrProcessDone", err)
	}
	if err := c.Kill(); !isExited(err) {
		t.Fatalf("Kill after exit = %v, want ErrExited", err)
	}
}

func TestStopAfterExitAndTwice(t *testing.T) {
	t.Run("already exited", func(t *testing.T) {
		c := startChild(t, helperSpec(t, "exit", "3"))
		waitDone(t, c)
		want := StopResult{Exit: Exit{Code: 3}}
		for i := 0; i < 2; i++ {
			if got := stopBounded(t, c, context.Background(), time.Hour); got != want {
				t.Fatalf("Stop #%d = %+v, want %+v", i+1, got, want)
			}
		}
	})
	t.Run("stopped then stopped again", func(t *testing.T) {
		rec := filepath.Join(t.TempDir(), "rec")
		c := startChild(t, helperSpec(t, "ignore-term", rec))
		waitLine(t, rec, "ready")
		r1 := stopBounded(t, c, context.Background(), 200*time.Millisecond)
		if !r1.Killed {
			t.Fatalf("first Stop = %+v, want Killed", r1)
		}
		if r2 := stopBounded(t, c, context.Background(), time.Hour); r2 != r1 {
			t.Fatalf("second Stop = %+v, want the first result %+v", r2, r1)
		}
	})
}

// Signal racing the child's exit must either deliver or report ErrExited:
// never another error (such as ESRCH from the group of a zombie leader).
func TestSignalRacesExit(t *testing.T) {
	for _, mode := range []string{"exit", "sleep"} {
		for _, own := range []bool{false, true} {
			t.Run(mode+"/OwnGroup="+strconv.FormatBool(own), func(t *testing.T) {
				spec := helperSpec(t, mode, "0")
				spec.OwnGroup = own
				c := startChild(t, spec)

				var wg sync.WaitGroup
				errs := make(chan error, 4)
				for i := 0; i < 4; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							err := c.Signal(0) // existence check, changes nothing
							if isExited(err) {
								return
							}
							if err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				if mode == "sleep" {
					if err := c.Kill(); err != nil {
						t.Errorf("Kill: %v", err)
					}
				}
				waitDone(t, c)
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Errorf("Signal while exiting: %v", err)
				}
			})
		}
	}
}

func TestOwnGroupSignalsReachGrandchild(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(*Child) error
		sig  syscall.Signal
	}{
		{"SIGTERM", func(c *Child) error { return c.Signal(syscall.SIGTERM) }, syscall.SIGTERM},
		{"Kill", (*Child).Kill, syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, gc := startGroupWithGrandchild(t)

			if pgid, err := syscall.Getpgid(c.Pid()); err != nil || pgid != c.Pid() {
				t.Fatalf("child pgid = %d, %v; want its pid %d", pgid, err, c.Pid())
			}
			if pgid, err := syscall.Getpgid(gc.pid); err != nil || pgid != c.Pid() {
				t.Fatalf("grandchild pgid = %d, %v; want %d", pgid, err, c.Pid())
			}

			if err := tc.send(c); err != nil {
				t.Fatalf("signal: %v", err)
			}
			if got, want := waitDone(t, c), (Exit{Code: 128 + int(tc.sig), Signal: tc.sig}); got != want {
				t.Fatalf("Exit() = %+v, want %+v", got, want)
			}
			waitFor(t, "grandchild to die", func() bool { return !gc.alive() })
		})
	}
}

func TestWithoutOwnGroupOnlyChildIsSignalled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "gc.pid")
	c := startChild(t, helperSpec(t, "group", pidFile))
	gc := identify(t, readPidFile(t, pidFile))
	t.Cleanup(gc.killIfAlive)

	ours, err := syscall.Getpgid(0)
	if err != nil {
		t.Fatal(err)
	}
	if pgid, err := syscall.Getpgid(c.Pid()); err != nil || pgid != ours {
		t.Fatalf("child pgid = %d, %v; want ours %d", pgid, err, ours)
	}
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := waitDone(t, c); got.Signal != syscall.SIGTERM {
		t.Fatalf("Exit() = %+v, want killed by SIGTERM", got)
	}
	if !gc.alive() {
		t.Fatalf("grandchild %d died although only the child was signalled", gc.pid)
	}
}

// A leader that moved itself out of its group must still be stoppable.
func TestLeaderLeftItsGroup(t *testing.T) {
	ours, err := syscall.Getpgid(0)
	if err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ready")
	spec := helperSpec(t, "leave-group", strconv.Itoa(ours), ready)
	spec.OwnGroup = true
	c := startChild(t, spec)
	waitLine(t, ready, "ready")
	if pgid, err := syscall.Getpgid(c.Pid()); err != nil || pgid != ours {
		t.Fatalf("child pgid = %d, %v; want %d", pgid, err, ours)
	}
	res := stopBounded(t, c, context.Background(), hangTimeout)
	if res.Killed || res.Exit != (Exit{Code: 7}) {
		t.Fatalf("Stop() = %+v, want a graceful exit 7", res)
	}
}

func TestSignalForwarding(t *testing.T) {
	for _, own := range []bool{false, true} {
		t.Run("OwnGroup="+strconv.FormatBool(own), func(t *testing.T) {
			rec := filepath.Join(t.TempDir(), "rec")
			spec := helperSpec(t, "record", rec)
			spec.OwnGroup = own
			c := startChild(t, spec)
			waitLine(t, rec, "ready")
			// One at a time: identical pending signals would merge.
			for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT, syscall.SIGTERM} {
				if err := c.Signal(sig); err != nil {
					t.Fatalf("Signal(%v): %v", sig, err)
				}
				waitLine(t, rec, sig.String())
			}
			if got := waitDone(t, c); got != (Exit{}) {
				t.Fatalf("Exit() = %+v, want clean exit", got)
			}
		})
	}
}

func TestStdioPassthrough(t *testing.T) {
	dir := t.TempDir()
	create := func(name, content string) *os.File {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	in, out, errf := create("in", "payload\n"), create("out", ""), create("err", "")

	t.Run("contents", func(t *testing.T) {
		spec := helperSpec(t, "echo")
		spec.Stdin, spec.Stdout, spec.Stderr = in, out, errf
		c := startChild(t, spec)
		if got := waitDone(t, c); !got.Success() {
			t.Fatalf("Exit() = %v", got)
		}
		for name, want := range map[string]string{"out": "out:payload\n", "err": "err:payload\n"} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != want {
				t.Errorf("%s = %q, want %q", name, data, want)
			}
		}
	})

	// The child's fds must be our files themselves, not pipes.
	t.Run("same files", func(t *testing.T) {
		fdsFile := filepath.Join(dir, "fds")
		spec := helperSpec(t, "fds", fdsFile)
		spec.Stdin, spec.Stdout, spec.Stderr = in, out, errf
		c := startChild(t, spec)
		if got := waitDone(t, c); !got.Success() {
			t.Fatalf("Exit() = %v", got)
		}
		want := strings.Join([]string{in.Name(), out.Name(), errf.Name()}, "\n") + "\n"
		if got := readFile(t, fdsFile); got != want {
			t.Fatalf("child fds 0-2:\n%s\nwant:\n%s", got, want)
		}
	})

	t.Run("nil is /dev/null", func(t *testing.T) {
		fdsFile := filepath.Join(dir, "fds-nil")
		c := startChild(t, helperSpec(t, "fds", fdsFile))
		if got := waitDone(t, c); !got.Success() {
			t.Fatalf("Exit() = %v", got)
		}
		if got, want := readFile(t, fdsFile), "/dev/null\n/dev/null\n/dev/null\n"; got != want {
			t.Fatalf("child fds 0-2:\n%s\nwant:\n%s", got, want)
		}
	})
}

func TestEnvAndDir(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(t.TempDir(), "out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	spec := helperSpec(t, "env")
	spec.Env = append(spec.Env, "VIGIL_TEST_VALUE=xyz")
	spec.Dir = dir
	spec.Stdout = out
	c := startChild(t, spec)
	if got := waitDone(t, c); !got.Success() {
		t.Fatalf("Exit() = %v", got)
	}
	if got, want := readFile(t, outPath), "xyz\n"+dir+"\n"; got != want {
		t.Fatalf("child saw %q, want %q", got, want)
	}
}

func TestStartErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-binary")
	c, err := Start(Spec{Path: missing})
	if err == nil {
		c.Kill()
		t.Fatal("Start of a missing binary succeeded")
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name the path %q", err, missing)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
	assertNoWaiters(t)

	if _, err := Start(Spec{Path: "relative/bin"}); err == nil || !strings.Contains(err.Error(), "relative/bin") {
		t.Errorf("Start of a relative path: err = %v, want an error naming it", err)
	}
}

// vigil's parent (the intermediate helper) starts a recorder with
// ParentDeathSignal=SIGTERM and is then SIGKILLed: the kernel must deliver
// SIGTERM to the orphaned recorder.
func TestParentDeathSignal(t *testing.T) {
	dir := t.TempDir()
	pidFile, rec := filepath.Join(dir, "gc.pid"), filepath.Join(dir, "rec")
	// The intermediate must not own a group: Kill would then hit the recorder
	// too. The recorder gets its own group from the intermediate.
	parent := startChild(t, helperSpec(t, "parent", pidFile, rec, strconv.Itoa(int(syscall.SIGTERM))))
	gc := identify(t, readPidFile(t, pidFile))
	t.Cleanup(gc.killIfAlive)
	waitLine(t, rec, "ready")

	if err := parent.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := waitDone(t, parent); got.Signal != syscall.SIGKILL {
		t.Fatalf("intermediate Exit() = %+v, want killed", got)
	}
	waitLine(t, rec, syscall.SIGTERM.String())
	waitFor(t, "recorder to exit", func() bool { return !gc.alive() })
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
