package reactor

import (
	"syscall"
	"testing"
	"time"
)

// A repeat of the same stop signal escalates only once stopDebounce has
// passed since the first: `kill; kill` is one request.
func TestStopSignalsDebounce(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := stopSignals{}
	for _, step := range []struct {
		sig  syscall.Signal
		at   time.Duration
		want bool
	}{
		{syscall.SIGHUP, 0, false},                               // not a stop signal
		{syscall.SIGTERM, 0, false},                              // the first
		{syscall.SIGTERM, time.Millisecond, false},               // `kill; kill`
		{syscall.SIGINT, 2 * time.Second, false},                 // another signal is a first too
		{syscall.SIGTERM, stopDebounce - time.Nanosecond, false}, // still the same request
		{syscall.SIGTERM, stopDebounce, true},                    // deliberate
		{syscall.SIGINT, 2*time.Second + stopDebounce, true},
	} {
		if got := st.repeat(step.sig, t0.Add(step.at)); got != step.want {
			t.Fatalf("repeat(%v at +%v) = %v, want %v", step.sig, step.at, got, step.want)
		}
	}
	if !st.any() {
		t.Fatal("any() = false after stop signals")
	}
}
