package reactor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/plan"
)

// PlanSource tells the upgrade the chain has scheduled, before the halt
// (noderpc.Client asks the node's RPC).
type PlanSource interface {
	// CurrentPlan returns the scheduled plan, nil when there is none.
	CurrentPlan(ctx context.Context) (*plan.Plan, error)
}

// prefetchRetryMax caps the wait before a failed prefetch is tried again;
// each Fetch already retries transient errors for DownloadMaxTime.
const prefetchRetryMax = 30 * time.Minute

// prefetch asks the Plans source every PrefetchInterval and downloads the
// binary of a scheduled plan while the node still runs, so the halt only
// has to switch. At most one download runs, in its own goroutine, which
// prefetch waits for before it returns. Nothing here can stop vigil: RPC
// errors and failed downloads are logged and tried again later.
func (r *reactor) prefetch(ctx context.Context) error {
	pf := &prefetcher{r: r, failed: map[string]int{}, notUntil: map[string]time.Time{}}
	defer func() {
		if pf.done != nil {
			<-pf.done // Fetch returns promptly once ctx is cancelled
		}
	}()
	// The node's RPC is usually not up yet when vigil starts it: ask again
	// soon (1 s, doubling) while it fails, then every PrefetchInterval.
	tick := time.NewTimer(r.cfg.PrefetchInterval)
	defer tick.Stop()
	pf.check(ctx)
	tick.Reset(pf.next())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			pf.check(ctx)
			tick.Reset(pf.next())
		case res := <-pf.done:
			pf.done = nil
			if ctx.Err() != nil {
				return nil
			}
			pf.finished(res)
		}
	}
}

// prefetcher is prefetch's state; it belongs to prefetch's goroutine.
type prefetcher struct {
	r        *reactor
	done     chan prefetched // the running download, nil when idle
	said     string          // last plan or RPC problem logged
	rpcFails int
	failed   map[string]int       // plan key → failed downloads in a row
	notUntil map[string]time.Time // plan key → no new try before
}

// prefetched is the end of one download.
type prefetched struct {
	key  string
	plan plan.Plan
	err  error
}

// next is the wait before the node is asked again.
func (pf *prefetcher) next() time.Duration {
	if pf.rpcFails == 0 {
		return pf.r.cfg.PrefetchInterval
	}
	return min(time.Second<<min(pf.rpcFails-1, 16), pf.r.cfg.PrefetchInterval)
}

// check asks the node for its plan and starts the download of its binary
// if it is missing and none is running.
func (pf *prefetcher) check(ctx context.Context) {
	r := pf.r
	p, err := r.cfg.Plans.CurrentPlan(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		pf.rpcFails++
		if pf.rpcFails == 1 {
			// The node may be starting, or its RPC may be off: say it
			// once; the halt still downloads as it always could.
			r.log.Info("cannot ask the node for its upgrade plan; will keep asking", "err", err, "every", r.cfg.PrefetchInterval)
		} else {
			r.log.Debug("node RPC still unavailable", "err", err)
		}
		return
	}
	if pf.rpcFails > 0 {
		r.log.Info("node RPC reachable again")
		pf.rpcFails = 0
	}
	if p == nil {
		return
	}
	key := p.Name + "@" + strconv.FormatInt(p.Height, 10)
	once := func(msg string, args ...any) {
		if pf.said != key+msg {
			pf.said = key + msg
			r.log.Info(msg, append([]any{"plan", *p}, args...)...)
		}
	}
	dir, err := r.l.DirName(p.Name)
	if err != nil {
		once("cannot prefetch the scheduled upgrade", "err", err)
		return
	}
	bin := r.l.Bin(r.l.UpgradeDir(dir))
	if _, err := os.Stat(bin); !errors.Is(err, fs.ErrNotExist) {
		once("scheduled upgrade's binary is in place", "path", bin)
		return
	}
	if pf.done != nil || time.Now().Before(pf.notUntil[key]) {
		return
	}
	once("scheduled upgrade found; downloading its binary ahead of the halt", "dir", dir)
	done := make(chan prefetched, 1)
	pf.done = done
	go func(p plan.Plan) {
		start := time.Now()
		err := r.cfg.Fetch.Fetch(ctx, p, dir)
		if ctx.Err() == nil {
			r.emit(event.Event{Kind: event.DownloadDone, Plan: p, Took: time.Since(start), Err: err})
		}
		done <- prefetched{key, p, err}
	}(*p)
}

// finished records how a download ended: a failure waits longer each time.
func (pf *prefetcher) finished(res prefetched) {
	r := pf.r
	if res.err == nil {
		delete(pf.failed, res.key)
		r.log.Info("prefetched the upgrade binary; the halt will only switch", "plan", res.plan)
		return
	}
	pf.failed[res.key]++
	wait := min(r.cfg.PrefetchInterval<<min(pf.failed[res.key], 16), prefetchRetryMax)
	pf.notUntil[res.key] = time.Now().Add(wait)
	r.log.Warn("prefetch of the upgrade binary failed; will try again, and at the halt", "plan", res.plan, "err", res.err, "next_try", wait)
}
