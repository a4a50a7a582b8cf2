package main

import (
	"syscall"
	"testing"
)

// The restart policy is opt-in: these tests turn it on and check that only
// crashes count, that the crash-loop limit ends vigil with the app's status,
// and that a stop during the back-off wait is honoured at once.

func TestE2ERestartCrashLoopLimit(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"exit_after": "50ms", "exit_code": 3}})
	v, code := h.run(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true",
		"VIGIL_RESTART_ON_FAILURE=true", "VIGIL_RESTART_MAX=2")
	if code != 3 {
		t.Fatalf("vigil exit code %d, want the node's 3", code)
	}
	if n := h.countLog(startLine("genesis")); n != 3 {
		t.Fatalf("genesis started %d times, want 3 (first start + VIGIL_RESTART_MAX=2 restarts)", n)
	}
	if n := v.countMsg("app crashed; restarting"); n != 2 {
		t.Fatalf("%d restart records, want 2", n)
	}
	v.assertMsgs("app keeps crashing; giving up")
}

func TestE2ERestartNotOnCleanExit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  obj
		want int
	}{
		{"exit 0", obj{"exit_after": "50ms", "exit_code": 0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHome(t, obj{"genesis": tc.cfg})
			v, code := h.run(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true",
				"VIGIL_RESTART_ON_FAILURE=true")
			if code != tc.want {
				t.Fatalf("vigil exit code %d, want %d", code, tc.want)
			}
			if n := h.countLog(startLine("genesis")); n != 1 {
				t.Fatalf("genesis started %d times, want 1", n)
			}
			if n := v.countMsg("app crashed; restarting"); n != 0 {
				t.Fatalf("%d restart records after a clean exit", n)
			}
		})
	}
}

func TestE2ERestartStopDuringBackoff(t *testing.T) {
	t.Parallel()
	h := newHome(t, obj{"genesis": obj{"exit_after": "50ms", "exit_code": 3}})
	v := h.start(append([]string{"run"}, nodeArgs...), "UNSAFE_SKIP_BACKUP=true",
		"VIGIL_RESTART_ON_FAILURE=true", "VIGIL_RESTART_MAX=0")
	v.waitMsg("app crashed; restarting")
	v.signal(syscall.SIGTERM)
	if code := v.wait(); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("vigil exit code %d, want %d", code, 128+int(syscall.SIGTERM))
	}
	// The first restart waits about 1 s; the stop came before it.
	if n := h.countLog(startLine("genesis")); n != 1 {
		t.Fatalf("genesis started %d times after a stop during the back-off, want 1", n)
	}
}
