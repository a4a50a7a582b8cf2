package reactor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/atomicfile"
	"github.com/vigilhq/vigil/process"
)

// procEntry is one process in the record file.
type procEntry struct {
	Role string `json:"role"` // "node" or "hook": for the log only
	process.Ident
}

// procsFile is the content of home.ProcsFile.
type procsFile struct {
	Procs []procEntry `json:"procs"`
}

// procRecord keeps home.ProcsFile equal to the set of children vigil has
// started and not reaped, so that a vigil started after this one was killed
// can end them (EndLeftovers) before it starts, backs up or switches
// anything. It is the only writer of the file; the run lock makes sure no
// other vigil writes it meanwhile.
//
// The file is replaced by rename, never fsynced: the node start is on the
// upgrade's hot path, and what the record guards against is a dead vigil,
// whose writes the page cache keeps; a kernel crash ends the node as well.
type procRecord struct {
	path string
	log  *slog.Logger

	mu   sync.Mutex // the waiter goroutines of several children call in
	live map[int]procEntry
}

func newProcRecord(path string, log *slog.Logger) *procRecord {
	return &procRecord{path: path, log: log, live: map[int]procEntry{}}
}

// track returns the process.Tracker that records children of this role. A
// nil record tracks nothing (reactors built by tests).
func (p *procRecord) track(role string) process.Tracker {
	if p == nil {
		return nil
	}
	return roleTracker{p, role}
}

type roleTracker struct {
	p    *procRecord
	role string
}

func (t roleTracker) Started(c *process.Child) {
	id, ok := c.Ident()
	if !ok {
		t.p.log.Warn("cannot identify the child; a vigil started after this one is killed will not find it", "role", t.role, "pid", c.Pid())
		return
	}
	t.p.mu.Lock()
	defer t.p.mu.Unlock()
	t.p.live[c.Pid()] = procEntry{Role: t.role, Ident: id}
	t.p.writeLocked()
}

func (t roleTracker) Reaped(c *process.Child) {
	t.p.mu.Lock()
	defer t.p.mu.Unlock()
	// The start time guards against a new child that got the same pid
	// before this waiter got here.
	id, _ := c.Ident()
	if e, ok := t.p.live[c.Pid()]; !ok || e.Start != id.Start {
		return
	}
	delete(t.p.live, c.Pid())
	t.p.writeLocked()
}

// writeLocked replaces the file with the live set, or removes it when none
// runs. A failure is logged, not returned: it must not stop the node, and
// the DB lock check at the next start is the safety net.
func (p *procRecord) writeLocked() {
	if len(p.live) == 0 {
		if err := os.Remove(p.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			p.log.Warn("cannot clear the process record", "path", p.path, "err", err)
		}
		return
	}
	var f procsFile
	for _, e := range p.live {
		f.Procs = append(f.Procs, e)
	}
	slices.SortFunc(f.Procs, func(a, b procEntry) int { return a.Pid - b.Pid })
	b, err := json.Marshal(f)
	if err == nil {
		err = atomicfile.Replace(p.path, b, 0o644)
	}
	if err != nil {
		p.log.Warn("cannot write the process record", "path", p.path, "err", err)
	}
}

// EndLeftovers ends the processes that an earlier vigil of this home recorded
// in home.ProcsFile and did not reap, because it was killed: the node (a
// node that ignores the parent-death SIGTERM, or takes long to flush, lives
// on) and hooks with their process groups. Each gets SIGTERM, SIGKILL after
// grace, and EndLeftovers returns once all are gone; then it removes the
// record. A recorded pid that now runs another process is left alone. Call
// it with the run lock held, before Run.
func EndLeftovers(ctx context.Context, l home.Layout, grace time.Duration, log *slog.Logger) error {
	path := l.ProcsFile()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read process record: %w", err)
	}
	var f procsFile
	if err := json.Unmarshal(b, &f); err != nil {
		// Only a crash of the machine (no fsync) can leave it so, and that
		// ended every process it named.
		log.Warn("process record unreadable; ignoring it", "path", path, "err", err)
	}
	strays := make([]stray, len(f.Procs))
	for i, e := range f.Procs {
		strays[i] = stray{e.Ident, e.Role}
	}
	if err := endStrays(ctx, strays, grace, log); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove process record: %w", err)
	}
	return nil
}

// Reclaim makes the home this vigil's before it starts anything: it ends
// what an earlier vigil of this home, killed, left running (EndLeftovers for
// what its record names, EndMarked for what carries its mark: a node forked
// but not yet recorded, a hook's child that left its group), then refuses to
// go on while a database LOCK under data/ is still held, naming the holders:
// a second node would share the database, and a backup or switch would run
// under the first. A node an operator started by hand is never signalled.
// Call it with the run lock held, before Run.
func Reclaim(ctx context.Context, l home.Layout, grace time.Duration, log *slog.Logger) error {
	if err := EndLeftovers(ctx, l, grace, log); err != nil {
		return fmt.Errorf("cannot stop what an earlier vigil left running: %w", err)
	}
	if err := EndMarked(ctx, l, grace, log); err != nil {
		return fmt.Errorf("cannot stop what an earlier vigil left running: %w", err)
	}
	held, err := backup.NodeLocks(l.DataDir())
	if err != nil {
		return fmt.Errorf("check the database locks: %w", err)
	}
	if len(held) == 0 {
		return nil
	}
	for i, lock := range held {
		held[i] = lock + " (held by " + holders(lock, l.Home) + ")"
	}
	return fmt.Errorf("a process holds %s: a node is already running on this home outside vigil; stop it first (vigil will not start a second node on the same database)", strings.Join(held, ", "))
}

// holders names the processes that hold lock, and why none is vigil's.
func holders(lock, home string) string {
	hs, err := process.Holders(lock)
	if err != nil {
		return fmt.Sprintf("a process that cannot be named: %v", err)
	}
	var ds []string
	for _, h := range hs {
		d := fmt.Sprintf("pid %d %s", h.Pid, h.Exe)
		if _, _, why, err := process.OrphanOf(h.Pid, home); err == nil && why != "" {
			d += ": " + why
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return "a process not visible in /proc: another pid namespace?"
	}
	return strings.Join(ds, "; ")
}

// EndMarked ends what the records and the database LOCKs did not name but an
// earlier vigil of this home left running: every process that carries the
// mark (process.SupervisorEnv) of a vigil of this home that is gone
// (process.MarkedOrphans), such as a hook's child that called setsid and so
// left the group the record named, or a hook the killed vigil forked and
// never recorded. Each is logged and ended as a recorded leftover is
// (SIGTERM, SIGKILL after grace; all at once). Call it with the run lock
// held, after EndLeftovers, before Run (Reclaim).
//
// /proc is scanned again after each round that ended something, at most
// rounds times: a process forked by one of them between the scan and its
// SIGTERM carries the mark too but was not seen (one forked into the group
// of a group leader found is ended with that group).
func EndMarked(ctx context.Context, l home.Layout, grace time.Duration, log *slog.Logger) error {
	const rounds = 3
	for range rounds {
		found, err := process.MarkedOrphans(l.Home)
		if err != nil {
			return fmt.Errorf("find the processes an earlier vigil left: %w", err)
		}
		if len(found) == 0 {
			return nil
		}
		strays := make([]stray, 0, len(found))
		for _, o := range found {
			log.Warn("a process no record names carries the mark of an earlier vigil of this home, which was killed; ending it",
				"pid", o.Pid, "exe", o.Exe, "pgid", o.Pgid, "mark", o.Mark)
			strays = append(strays, stray{o.Ident, "marked " + o.Exe})
		}
		if err := endStrays(ctx, strays, grace, log); err != nil {
			return err
		}
	}
	return nil
}

// stray is a process an earlier vigil left running, and what it was.
type stray struct {
	id   process.Ident
	role string
}

// endStrays ends them all at once (each may take the whole grace) and
// returns once all are gone.
func endStrays(ctx context.Context, strays []stray, grace time.Duration, log *slog.Logger) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, st := range strays {
		wg.Go(func() {
			res, err := process.EndStray(ctx, st.id, grace)
			switch {
			case err != nil:
				mu.Lock()
				errs = append(errs, fmt.Errorf("end %s (pid %d) left by an earlier vigil: %w", st.role, st.id.Pid, err))
				mu.Unlock()
			case res.NotOurs:
				log.Info("recorded pid runs another process now; left alone", "role", st.role, "pid", st.id.Pid)
			case len(res.Pids) > 0:
				log.Warn("ended a process left running by an earlier vigil", "role", st.role, "pid", st.id.Pid, "pids", res.Pids, "killed", res.Killed, "grace", grace)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
