package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	getter "github.com/hashicorp/go-getter/v2"
)

// errStalled is the cause given to a request whose body made no progress.
var errStalled = errors.New("download stalled")

// errTooLarge marks a body over the size limit.
var errTooLarge = errors.New("download too large")

func permanent(err error) error { return backoff.Permanent(err) }

func newHTTPClient(cfg Config) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.HeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   2,
		ForceAttemptHTTP2:     true,
	}}
}

// download gets src into dst (a file path) with retries. go-getter verifies
// the checksum of the file; nothing is unpacked here.
func (j *job) download(ctx context.Context, src source, dst string, limit int64, progress bool) error {
	f := j.f
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = f.cfg.RetryInitial
	bo.MaxInterval = f.cfg.RetryMax
	bo.MaxElapsedTime = f.cfg.MaxTime
	n := 0
	op := func() error {
		n++
		// A fresh file each time: go-getter's HTTP getter writes over an
		// existing file without truncating it.
		if err := os.RemoveAll(filepath.Dir(dst)); err != nil {
			return permanent(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return permanent(err)
		}
		return j.attempt(ctx, src, dst, limit, progress)
	}
	notify := func(err error, wait time.Duration) {
		f.log.Warn("download attempt failed", "plan", j.plan, "url", src.redacted, "attempt", n, "err", err, "retry_in", wait.Round(time.Millisecond))
	}
	err := backoff.RetryNotify(op, backoff.WithContext(bo, ctx), notify)
	if err != nil && n > 1 && ctx.Err() == nil {
		return fmt.Errorf("%w (after %d attempts)", err, n)
	}
	return err
}

// attempt is one try; its error is wrapped by permanent() unless a retry may help.
func (j *job) attempt(ctx context.Context, src source, dst string, limit int64, progress bool) error {
	f := j.f
	if src.local != "" {
		// The file getter copies without going through our transport.
		st, err := os.Stat(src.local)
		if err != nil {
			return permanent(fmt.Errorf("source path: %w", err))
		}
		if st.Mode().IsRegular() && st.Size() > limit {
			return permanent(fmt.Errorf("%s is %d bytes, over the %d-byte limit", src.local, st.Size(), limit))
		}
	}
	rec := &record{}
	rt := &watchedTransport{
		base: f.client.Transport, rec: rec, limit: limit, stall: f.cfg.StallTimeout,
		log: f.log, every: f.cfg.ProgressEvery, progress: progress,
	}
	client := &getter.Client{
		Getters: []getter.Getter{
			&getter.HttpGetter{
				Client:                &http.Client{Transport: rt},
				Netrc:                 true, // as cosmovisor: private mirrors may need it
				XTerraformGetDisabled: true,
				DoNotCheckHeadFirst:   true, // one request per attempt; no resume into a fresh file
			},
			&getter.FileGetter{},
		},
		// Non-nil and empty: go-getter must not unpack (see doc.go).
		Decompressors:   map[string]getter.Decompressor{},
		DisableSymlinks: true,
	}
	_, err := client.Get(ctx, &getter.Request{
		Src:     src.url,
		Dst:     dst,
		GetMode: getter.ModeFile,
		Copy:    true, // a file source is copied, never symlinked
	})
	if err == nil {
		// The file getter and a body without Content-Length are only
		// checked here.
		st, serr := os.Lstat(dst)
		if serr != nil {
			return permanent(serr)
		}
		if !st.Mode().IsRegular() {
			return permanent(fmt.Errorf("%s gave a %s, not a file", src.redacted, st.Mode().Type()))
		}
		if st.Size() > limit {
			return permanent(fmt.Errorf("%s: %w: over %d bytes", src.redacted, errTooLarge, limit))
		}
		return nil
	}
	return classify(ctx, src, err, rec)
}

// classify decides whether a failed attempt is worth retrying. go-getter
// flattens some errors into strings (a checksum file's), so what the
// transport saw is consulted first.
func classify(ctx context.Context, src source, err error, rec *record) error {
	if ctx.Err() != nil {
		return permanent(context.Cause(ctx))
	}
	var ce *getter.ChecksumError
	if errors.As(err, &ce) {
		return permanent(fmt.Errorf("%s: checksum mismatch: expected %x, got %x", src.redacted, ce.Expected, ce.Actual))
	}
	if errors.Is(err, syscall.ENOSPC) {
		return permanent(fmt.Errorf("%s: no space left for the download in the staging folder: %w", src.redacted, err))
	}
	st, seen := rec.get()
	switch {
	case seen != nil && errors.Is(seen, errTooLarge):
		return permanent(seen)
	case st.code >= 400 && transientStatus(st.code):
		return fmt.Errorf("%s: HTTP %s", st.url, st.status)
	case st.code >= 400:
		return permanent(fmt.Errorf("%s: HTTP %s", st.url, st.status))
	case seen != nil:
		return seen // a connection error, a timeout or a stall
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrShortWrite) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: %w", src.redacted, err)
	}
	return permanent(fmt.Errorf("%s: %w", src.redacted, err))
}

func transientStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooEarly ||
		code == http.StatusTooManyRequests || code >= 500
}

// record is what the transport saw during one attempt.
type record struct {
	mu   sync.Mutex
	last status
	err  error // first transport or body error
}

type status struct {
	code   int
	status string
	url    string
}

func (r *record) response(s status) {
	r.mu.Lock()
	r.last = s
	r.mu.Unlock()
}

func (r *record) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
}

func (r *record) get() (status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.err
}

// watchedTransport records statuses and errors and watches response bodies.
// It returns every response as it came (the RoundTripper contract); go-getter
// turns a bad status into an error and classify reads the status here.
type watchedTransport struct {
	base     http.RoundTripper
	rec      *record
	limit    int64
	stall    time.Duration
	log      *slog.Logger
	every    time.Duration
	progress bool
}

func (t *watchedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	redacted := req.URL.Redacted()
	if err != nil {
		cancel(nil)
		t.rec.fail(fmt.Errorf("%s: %w", redacted, err))
		return nil, err
	}
	t.rec.response(status{code: resp.StatusCode, status: resp.Status, url: redacted})
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		resp.Body = &cancelOnClose{resp.Body, cancel}
		return resp, nil
	}
	if resp.ContentLength > t.limit {
		err := fmt.Errorf("%s: %w: Content-Length %d is over the %d-byte limit", redacted, errTooLarge, resp.ContentLength, t.limit)
		t.rec.fail(err)
		resp.Body.Close()
		cancel(err)
		return nil, err
	}
	b := &watchedBody{
		rc: resp.Body, ctx: ctx, cancel: cancel, t: t, url: redacted,
		total: resp.ContentLength, start: time.Now(),
	}
	b.lastLog = b.start
	// The watchdog runs from the headers on: a body that never starts
	// stalls as surely as one that stops.
	b.watchdog = time.AfterFunc(t.stall, func() { cancel(errStalled) })
	resp.Body = b
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}

// watchedBody aborts a body that stalls or grows over the limit and logs
// progress; it runs in the reader's goroutine, apart from the watchdog timer.
type watchedBody struct {
	rc       io.ReadCloser
	ctx      context.Context
	cancel   context.CancelCauseFunc
	watchdog *time.Timer
	t        *watchedTransport
	url      string

	n, total        int64
	start, lastLog  time.Time
	lastN           int64
	closeOnce       sync.Once
	reportedFailure bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.watchdog.Reset(b.t.stall)
		b.n += int64(n)
		if b.n > b.t.limit {
			err = fmt.Errorf("%s: %w: over %d bytes", b.url, errTooLarge, b.t.limit)
			b.cancel(err)
		}
		if b.t.progress {
			b.logProgress()
		}
	}
	if err != nil && err != io.EOF && !b.reportedFailure {
		b.reportedFailure = true
		if errors.Is(context.Cause(b.ctx), errStalled) {
			err = fmt.Errorf("%s: %w: no data for %v after %d bytes", b.url, errStalled, b.t.stall, b.n)
		}
		b.t.rec.fail(err)
	}
	return n, err
}

func (b *watchedBody) logProgress() {
	now := time.Now()
	if now.Sub(b.lastLog) < b.t.every {
		return
	}
	rate := float64(b.n-b.lastN) / now.Sub(b.lastLog).Seconds()
	args := []any{"url", b.url, "bytes", b.n}
	if b.total > 0 {
		args = append(args, "total", b.total, "percent", b.n*100/b.total)
	}
	args = append(args, "rate", fmt.Sprintf("%.1f MiB/s", rate/(1<<20)))
	b.t.log.Info("downloading", args...)
	b.lastLog, b.lastN = now, b.n
}

func (b *watchedBody) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.watchdog.Stop()
		err = b.rc.Close()
		b.cancel(nil)
	})
	return err
}
