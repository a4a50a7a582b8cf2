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
	type result struct {
		key  string
		plan plan.Plan
		err  error
	}
	var (
		done     chan result // the running download, nil when idle
		said     string      // last plan or RPC problem logged
		rpcFails int
		failed   = map[string]int{}       // plan key → failed downloads in a row
		notUntil = map[string]time.Time{} // plan key → no new try before
	)
	defer func() {
		if done != nil {
			<-done // Fetch returns promptly once ctx is cancelled
		}
	}()
	// The node's RPC is usually not up yet when vigil starts it: ask again
	// soon (1 s, doubling) while it fails, then every PrefetchInterval.
	tick := time.NewTimer(r.cfg.PrefetchInterval)
	defer tick.Stop()
	next := func() time.Duration {
		if rpcFails == 0 {
			return r.cfg.PrefetchInterval
		}
		return min(time.Second<<min(rpcFails-1, 16), r.cfg.PrefetchInterval)
	}
	check := func() {
		p, err := r.cfg.Plans.CurrentPlan(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			rpcFails++
			if rpcFails == 1 {
				// The node may be starting, or its RPC may be off: say it
				// once; the halt still downloads as it always could.
				r.log.Info("cannot ask the node for its upgrade plan; will keep asking", "err", err, "every", r.cfg.PrefetchInterval)
			} else {
				r.log.Debug("node RPC still unavailable", "err", err)
			}
			return
		}
		if rpcFails > 0 {
			r.log.Info("node RPC reachable again")
			rpcFails = 0
		}
		if p == nil {
			return
		}
		key := p.Name + "@" + strconv.FormatInt(p.Height, 10)
		once := func(msg string, args ...any) {
			if said != key+msg {
				said = key + msg
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
		if done != nil || time.Now().Before(notUntil[key]) {
			return
		}
		once("scheduled upgrade found; downloading its binary ahead of the halt", "dir", dir)
		done = make(chan result, 1)
		go func(p plan.Plan) {
			start := time.Now()
			err := r.cfg.Fetch.Fetch(ctx, p, dir)
			if ctx.Err() == nil {
				r.emit(event.Event{Kind: event.DownloadDone, Plan: p, Took: time.Since(start), Err: err})
			}
			done <- result{key, p, err}
		}(*p)
	}
	check()
	tick.Reset(next())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			check()
			tick.Reset(next())
		case res := <-done:
			done = nil
			if res.err == nil {
				delete(failed, res.key)
				r.log.Info("prefetched the upgrade binary; the halt will only switch", "plan", res.plan)
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			failed[res.key]++
			wait := min(r.cfg.PrefetchInterval<<min(failed[res.key], 16), prefetchRetryMax)
			notUntil[res.key] = time.Now().Add(wait)
			r.log.Warn("prefetch of the upgrade binary failed; will try again, and at the halt", "plan", res.plan, "err", res.err, "next_try", wait)
		}
	}
}
