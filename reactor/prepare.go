package reactor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/home"
)

// prepare makes each upgrade ready while the node still runs: binary present
// and executable (fetched if a Fetcher is configured), backup room checked. A
// missing binary is retried with backoff; a newer target replaces the one
// being prepared. It closes out when it returns.
func (r *reactor) prepare(ctx context.Context, in <-chan target, out chan<- ready) error {
	defer close(out)
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = r.cfg.BinaryRetry
	bo.MaxInterval = 30 * time.Second
	bo.MaxElapsedTime = 0 // a halted chain waits for its binary as long as it takes

	var (
		cur     *target
		attempt bool
		res     ready
		send    chan<- ready
		retry   <-chan time.Time
		failed  int
		timer   *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if attempt {
			attempt = false
			rd, err := r.ready(ctx, *cur, failed > 0)
			switch {
			case errors.Is(err, errWithdrawn):
				// detect hands the plan over again if it comes back.
				r.log.Warn("upgrade no longer pending; not preparing it", "plan", cur.plan, "err", err)
				cur = nil
			case err == nil:
				if failed > 0 {
					r.log.Info("upgrade binary found", "plan", cur.plan, "path", rd.bin)
				}
				res, send = rd, out
			case ctx.Err() != nil:
				return nil
			default:
				failed++
				wait := bo.NextBackOff()
				if failed == 1 {
					r.log.Error("upgrade not ready", "plan", cur.plan, "err", err, "retry", "with backoff until it is")
				} else {
					r.log.Debug("upgrade still not ready", "plan", cur.plan, "err", err, "next_try", wait)
				}
				timer = time.NewTimer(wait)
				retry = timer.C
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case t, ok := <-in:
			if !ok {
				return nil
			}
			if timer != nil {
				timer.Stop()
			}
			cur, attempt, send, retry, failed = &t, true, nil, nil, 0
			bo.Reset()
		case <-retry:
			retry, attempt = nil, true
		case send <- res:
			send, cur = nil, nil
		}
	}
}

func (r *reactor) ready(ctx context.Context, t target, retry bool) (ready, error) {
	if retry {
		// The first attempt follows detect's own reading of the file.
		if err := r.confirm(t); err != nil {
			return ready{}, err
		}
	}
	bin := r.l.Bin(r.l.UpgradeDir(t.dir))
	chmodded, err := home.CheckBinary(bin)
	if errors.Is(err, fs.ErrNotExist) {
		if r.cfg.Fetch == nil {
			return ready{}, fmt.Errorf("upgrade binary for %q not found and downloads are off: put it at %s", t.plan.Name, bin)
		}
		start := time.Now()
		err = r.cfg.Fetch.Fetch(ctx, t.plan, t.dir)
		r.emit(event.Event{Kind: event.DownloadDone, Plan: t.plan, Took: time.Since(start), Err: err})
		if err != nil {
			return ready{}, fmt.Errorf("fetch upgrade binary for %q: %w", t.plan.Name, err)
		}
		chmodded, err = home.CheckBinary(bin)
	}
	if err != nil {
		return ready{}, fmt.Errorf("upgrade binary %s: %w", bin, err)
	}
	if chmodded {
		r.log.Warn("made upgrade binary executable", "path", bin)
	}
	take := false
	if r.cfg.Backup != nil {
		if take, err = r.cfg.Backup.Check(ctx, t.plan); err != nil {
			return ready{}, fmt.Errorf("backup check: %w", err)
		}
	}
	// The marker is written by the swap, while the node stops.
	return ready{target: t, bin: bin, backup: take}, nil
}
