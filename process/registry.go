//go:build unix

package process

import "sync"

// children is the registry of the processes this package forked and has not
// reaped yet. It is process-wide by nature: zombies are children of the whole
// process, so there can only be one registry and one reaper.
var children = registry{pids: map[int]int{}, kick: make(chan struct{}, 1)}

// registry lets the orphan reaper tell vigil's own children, whose exit
// status belongs to their waiter, from re-parented orphans.
//
// mu is held across fork+register (so a child that exits at once is never
// seen unregistered), across reap+unregister (so a reaped pid cannot be
// registered again by a new fork before it is removed, nor judged a stranger
// while its waiter reaps it), and by the reaper from its look at a zombie to
// its decision to reap it.
type registry struct {
	mu   sync.Mutex
	pids map[int]int // pid → count; a count because a pid may be reused (non-Linux reaps outside mu)

	// kick wakes the reaper after a registered child was reaped: the reaper
	// may have been waiting behind that zombie. Buffered, sent without
	// blocking, so a missing reaper costs nothing.
	kick chan struct{}
}

func (r *registry) addLocked(pid int) { r.pids[pid]++ }

func (r *registry) removeLocked(pid int) {
	if r.pids[pid] <= 1 {
		delete(r.pids, pid)
	} else {
		r.pids[pid]--
	}
}

func (r *registry) remove(pid int) {
	r.mu.Lock()
	r.removeLocked(pid)
	r.mu.Unlock()
}

func (r *registry) ownsLocked(pid int) bool { return r.pids[pid] > 0 }

func (r *registry) reaped() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
