package fetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/plan"
)

// Documented defaults of Config; a zero field takes its default.
const (
	// DefaultMaxTime bounds the retries of one Fetch (DAEMON_DOWNLOAD_MAX_TIME).
	DefaultMaxTime = 15 * time.Minute
	// DefaultStallTimeout aborts a response body that delivers nothing for this long.
	DefaultStallTimeout = 30 * time.Second
	// DefaultConnectTimeout bounds the TCP connect and, separately, the TLS handshake.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultHeaderTimeout bounds the wait for response headers once the request is sent.
	DefaultHeaderTimeout = 30 * time.Second
	// DefaultMaxDownload is the largest file accepted: node binaries are
	// 50–250 MB, archives of them smaller.
	DefaultMaxDownload = 1 << 30
	// DefaultMaxUnpacked bounds the bytes an archive may unpack to, in total.
	DefaultMaxUnpacked = 2 << 30
	// DefaultMaxFiles bounds the members of an archive (release archives hold a handful).
	DefaultMaxFiles = 1000
	// DefaultProgressEvery is how often a running download logs its progress.
	DefaultProgressEvery = 5 * time.Second
	// DefaultRetryInitial is the first wait before a retry; it grows 1.5× per
	// attempt with ±50% jitter up to DefaultRetryMax.
	DefaultRetryInitial = time.Second
	// DefaultRetryMax caps the wait between two attempts.
	DefaultRetryMax = time.Minute
	// maxInfoDocument bounds an indirection document or a checksum file.
	maxInfoDocument = 1 << 20
)

// Config configures a Fetcher. Only Layout is required.
type Config struct {
	Layout           home.Layout
	MustHaveChecksum bool // refuse URLs (and indirection URLs) without ?checksum=

	MaxTime        time.Duration // no new attempt after this; 0 = DefaultMaxTime
	StallTimeout   time.Duration // 0 = DefaultStallTimeout
	ConnectTimeout time.Duration // 0 = DefaultConnectTimeout
	HeaderTimeout  time.Duration // 0 = DefaultHeaderTimeout
	MaxDownload    int64         // bytes; 0 = DefaultMaxDownload
	MaxUnpacked    int64         // bytes; 0 = DefaultMaxUnpacked
	MaxFiles       int           // 0 = DefaultMaxFiles
	ProgressEvery  time.Duration // 0 = DefaultProgressEvery
	RetryInitial   time.Duration // 0 = DefaultRetryInitial
	RetryMax       time.Duration // 0 = DefaultRetryMax

	Logger *slog.Logger // nil = discard
}

// Result says what Ensure did.
type Result struct {
	Path    string // the installed binary
	Already bool   // it was in place; nothing was downloaded
	URL     string // what was downloaded, credentials redacted
	Bytes   int64  // size of the installed binary
	Files   int    // regular files installed, the binary included (archives install whole)
	Took    time.Duration
}

// Fetcher installs upgrade binaries. Build it with New.
type Fetcher struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client // shared connection pool; each attempt wraps its transport

	mu    sync.Mutex
	locks map[string]chan struct{} // per upgrade dir, a one-slot semaphore

	// rename makes each rename of an install; nil = renameNoReplace. Tests
	// watch the order of the renames through it.
	rename func(from, to string) error
}

// New returns a Fetcher with cfg's zero fields set to their defaults.
func New(cfg Config) *Fetcher {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.MaxTime, DefaultMaxTime)
	def(&cfg.StallTimeout, DefaultStallTimeout)
	def(&cfg.ConnectTimeout, DefaultConnectTimeout)
	def(&cfg.HeaderTimeout, DefaultHeaderTimeout)
	def(&cfg.ProgressEvery, DefaultProgressEvery)
	def(&cfg.RetryInitial, DefaultRetryInitial)
	def(&cfg.RetryMax, DefaultRetryMax)
	if cfg.MaxDownload <= 0 {
		cfg.MaxDownload = DefaultMaxDownload
	}
	if cfg.MaxUnpacked <= 0 {
		cfg.MaxUnpacked = DefaultMaxUnpacked
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fetcher{cfg: cfg, log: log, client: newHTTPClient(cfg), locks: map[string]chan struct{}{}}
}

// Fetch installs the binary of p at upgrades/<upgradeDir>/bin/<name> unless
// it is already there. It satisfies reactor.Fetcher.
func (f *Fetcher) Fetch(ctx context.Context, p plan.Plan, upgradeDir string) error {
	_, err := f.Ensure(ctx, p, upgradeDir)
	return err
}

// Ensure is Fetch reporting what it did.
func (f *Fetcher) Ensure(ctx context.Context, p plan.Plan, upgradeDir string) (Result, error) {
	if upgradeDir == "" || upgradeDir == "." || upgradeDir == ".." || strings.ContainsAny(upgradeDir, `/\`) {
		return Result{}, fmt.Errorf("invalid upgrade directory name %q", upgradeDir)
	}
	l := f.cfg.Layout
	bin := l.Bin(l.UpgradeDir(upgradeDir))

	unlock, err := f.lock(ctx, upgradeDir)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	if present(bin) {
		return Result{Path: bin, Already: true}, nil
	}
	stageRoot := filepath.Join(l.Root(), ".staging", upgradeDir)
	if err := os.MkdirAll(stageRoot, 0o700); err != nil {
		return Result{}, fmt.Errorf("create staging folder: %w", err)
	}
	// Across processes (vigil run and prepare-upgrade) the flock decides;
	// it also makes the removal of old staging below safe.
	flock, err := lockFile(ctx, filepath.Join(stageRoot, "lock"))
	if err != nil {
		return Result{}, err
	}
	defer flock.Close()
	if present(bin) { // put in by another process while we waited
		return Result{Path: bin, Already: true}, nil
	}
	removeStale(stageRoot, f.log)
	work, err := os.MkdirTemp(stageRoot, "tmp-")
	if err != nil {
		return Result{}, fmt.Errorf("create staging folder: %w", err)
	}
	defer removeAll(work)

	start := time.Now()
	j := &job{f: f, plan: p, dir: upgradeDir, work: work}
	res, err := j.run(ctx, bin)
	if err != nil {
		return Result{}, err
	}
	res.Took = time.Since(start)
	// Installed: nothing in the staging folder is needed any more, the lock
	// file included (a process waiting on the old one finds the binary
	// present once it gets it).
	removeAll(work)
	if err := removeAll(stageRoot); err != nil {
		f.log.Warn("cannot remove the staging folder", "path", stageRoot, "err", err)
	}
	os.Remove(filepath.Dir(stageRoot)) // .staging itself, when it is empty
	f.log.Info("upgrade binary downloaded", "plan", p, "path", res.Path, "url", res.URL, "bytes", res.Bytes, "files", res.Files, "took", res.Took.Round(time.Millisecond))
	return res, nil
}

// present reports whether a regular file is at bin; anything else there is
// left to the reactor's checks to report.
func present(bin string) bool {
	_, err := os.Stat(bin)
	return !errors.Is(err, fs.ErrNotExist)
}

// lock takes the in-process lock of one upgrade dir, or gives up with ctx.
func (f *Fetcher) lock(ctx context.Context, dir string) (func(), error) {
	f.mu.Lock()
	ch, ok := f.locks[dir]
	if !ok {
		ch = make(chan struct{}, 1)
		f.locks[dir] = ch
	}
	f.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// lockFile holds an flock on path until the file is closed. flock cannot be
// interrupted, so a contended lock is polled.
func lockFile(ctx context.Context, path string) (*os.File, error) {
	fl, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open staging lock: %w", err)
	}
	for {
		err := unix.Flock(int(fl.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return fl, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			fl.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			fl.Close()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
	}
}

// CleanStaging removes the staging folders that downloads interrupted by a
// kill left under cosmovisor/.staging, each under its flock so that a
// download running in another process (prepare-upgrade) is left alone.
func (f *Fetcher) CleanStaging() {
	root := filepath.Join(f.cfg.Layout.Root(), ".staging")
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		fl, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
		if err == nil && unix.Flock(int(fl.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			fl.Close()
			continue // in use
		}
		if err := removeAll(dir); err != nil {
			f.log.Warn("cannot remove old staging folder", "path", dir, "err", err)
		} else {
			f.log.Info("removed staging left by an interrupted download", "path", dir)
		}
		if fl != nil {
			fl.Close()
		}
	}
	os.Remove(root) // when empty
}

// removeStale deletes what an interrupted Fetch left in stageRoot; the
// caller holds the lock, so nothing else is using it.
func removeStale(stageRoot string, log *slog.Logger) {
	ents, err := os.ReadDir(stageRoot)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Name() == "lock" {
			continue
		}
		p := filepath.Join(stageRoot, e.Name())
		if err := removeAll(p); err != nil {
			log.Warn("cannot remove old staging folder", "path", p, "err", err)
		} else {
			log.Info("removed staging left by an interrupted download", "path", p)
		}
	}
}

// job is one Ensure call past its locks.
type job struct {
	f    *Fetcher
	plan plan.Plan
	dir  string
	work string // private staging folder
}

func (j *job) run(ctx context.Context, bin string) (Result, error) {
	f := j.f
	src, err := j.resolve(ctx)
	if err != nil {
		return Result{}, err
	}
	f.log.Info("downloading upgrade binary", "plan", j.plan, "url", src.redacted, "to", bin)
	downloaded := filepath.Join(j.work, "download", src.fileName())
	if err := j.download(ctx, src, downloaded, f.cfg.MaxDownload, true); err != nil {
		return Result{}, err
	}
	tree, err := unpack(downloaded, src.archive, filepath.Join(j.work, "unpacked"), f.cfg.Layout.Name, limits{
		bytes: f.cfg.MaxUnpacked, files: f.cfg.MaxFiles,
	})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", src.redacted, err)
	}
	size, err := verify(filepath.Join(tree, "bin", f.cfg.Layout.Name))
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", src.redacted, err)
	}
	files, err := settle(tree)
	if err != nil {
		return Result{}, err
	}
	kept, err := f.install(tree, f.cfg.Layout.UpgradeDir(j.dir), f.cfg.Layout.Name)
	if err != nil {
		return Result{}, err
	}
	if !kept {
		f.log.Info("an upgrade binary appeared while downloading; kept it", "path", bin)
		return Result{Path: bin, Already: true}, nil
	}
	return Result{Path: bin, URL: src.redacted, Bytes: size, Files: files}, nil
}

// verify checks the staged binary before it may be installed and makes it
// executable.
func verify(path string) (int64, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, permanent(fmt.Errorf("the binary is a %s, not a regular file", st.Mode().Type()))
	}
	if err := home.CheckFormat(path); err != nil {
		return 0, permanent(fmt.Errorf("downloaded binary does not run here: %w", err))
	}
	if err := os.Chmod(path, 0o755); err != nil {
		return 0, err
	}
	fl, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fl.Close()
	if err := fl.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", path, err)
	}
	return st.Size(), nil
}

// syncDir makes a rename or creation in dir durable; best effort, as the
// binary is already complete and a lost entry is simply downloaded again.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// removeAll removes a staging folder even when an archive unpacked
// directories without write permission into it.
func removeAll(path string) error {
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
