//go:build linux

package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReaper runs the scenario in a helper process, because a child
// subreaper and a SIGCHLD reaper are process-wide and would change what the
// other tests see.
func TestReaper(t *testing.T) {
	cmd := exec.Command(mustExecutable(), "8", "4")
	cmd.Env = helperEnviron("reaper-host")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reaper scenario failed: %v\n%s", err, out.String())
		}
	case <-time.After(4 * hangTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("reaper scenario hung\n%s", out.String())
	}
}

// reaperHost makes this process a child subreaper with a running Reaper and,
// concurrently: keeps a long-lived child (like the node) whose status is
// checked at the end, runs ROUNDS short commands through Output with distinct
// exit codes, and ROUNDS commands that each leave ORPHANS orphans, which are
// re-parented to us and exit. Every status must be our children's own (a
// stolen one reads as code -1), every orphan must be reaped, and no zombie
// may be left.
func reaperHost(args []string) error {
	rounds, err1 := strconv.Atoi(args[0])
	orphans, err2 := strconv.Atoi(args[1])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if err := SetChildSubreaper(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rp, err := StartReaper(log)
	if err != nil {
		return err
	}
	defer rp.Stop()
	if _, err := StartReaper(log); err == nil {
		return errors.New("a second reaper started")
	}

	dir, err := os.MkdirTemp("", "reaper-host-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ready := filepath.Join(dir, "ready")
	exe := mustExecutable()
	app, err := Start(Spec{Path: exe, Args: []string{ready}, Env: helperEnviron("trap-term")})
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for i := range rounds {
		wg.Go(func() {
			code := 10 + i
			out, exit, err := Output(context.Background(),
				Spec{Path: exe, Args: []string{"r" + strconv.Itoa(i), strconv.Itoa(code)}, Env: helperEnviron("say")}, time.Second)
			want := fmt.Sprintf("r%d\nerr:r%d\n", i, i)
			if err != nil || exit != (Exit{Code: code}) || string(out) != want {
				errs <- fmt.Errorf("say %d: exit %+v, output %q, err %v; want code %d, %q", i, exit, out, err, code, want)
			}
		})
		wg.Go(func() {
			exit, err := Run(context.Background(),
				Spec{Path: exe, Args: []string{strconv.Itoa(orphans)}, Env: helperEnviron("orphans")}, time.Second)
			if err != nil || !exit.Success() {
				errs <- fmt.Errorf("orphans %d: exit %+v, err %v", i, exit, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		return err
	}

	want := uint64(rounds * orphans)
	if err := within(func() bool { return rp.Reaped() >= want }); err != nil {
		return fmt.Errorf("reaped %d orphans, want %d: %w", rp.Reaped(), want, err)
	}
	if got := rp.Reaped(); got != want {
		return fmt.Errorf("reaped %d, want exactly the %d orphans", got, want)
	}
	if err := within(func() bool { return len(zombieChildren()) == 0 }); err != nil {
		return fmt.Errorf("zombies left: %v: %w", zombieChildren(), err)
	}

	if err := within(func() bool { return fileHasLine(ready, "ready") }); err != nil {
		return fmt.Errorf("long-lived child not ready: %w", err)
	}
	if res := app.Stop(context.Background(), hangTimeout); res.Exit != (Exit{Code: 7}) {
		return fmt.Errorf("long-lived child exit %+v, want its own code 7", res.Exit)
	}
	return nil
}

func within(cond func() bool) error {
	deadline := time.Now().Add(hangTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", hangTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// zombieChildren lists our children in state Z.
func zombieChildren() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) > 1 && f[0] == "Z" && f[1] == self {
			pids = append(pids, pid)
		}
	}
	return pids
}
