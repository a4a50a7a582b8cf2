package sdnotify

import (
	"sync"

	"github.com/vigilhq/vigil/event"
)

// Health decides, from the reactor's events, whether vigil deserves a
// watchdog ping: it does while it is starting, while the node runs, while an
// upgrade is pending or being applied, and while a crashed node waits for its
// restart; it does not once the node is down with nothing left to do (vigil is
// about to exit) or vigil is stopping. The zero value is ready to use.
//
// It sees only events, so a reactor that hangs without emitting anything
// still looks healthy; a liveness signal from the reactor itself would close
// that gap.
type Health struct {
	mu                                                         sync.Mutex
	started, running, pending, upgrading, restarting, stopping bool
}

// Observe updates the state; it is an event.Func.
func (h *Health) Observe(e event.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch e.Kind {
	case event.AppStarted:
		h.started, h.running, h.restarting = true, true, false
	case event.AppExited:
		h.running = false
	case event.AppRestarting:
		h.restarting = true
	case event.UpgradeDetected:
		h.pending = true
	case event.UpgradeStep:
		h.upgrading = true
	case event.UpgradeDone, event.UpgradeFailed:
		h.pending, h.upgrading = false, false
	case event.Stopping:
		h.stopping = true
	}
}

// Healthy reports the state; see Health.
func (h *Health) Healthy() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping {
		return false
	}
	return !h.started || h.running || h.pending || h.upgrading || h.restarting
}
