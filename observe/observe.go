package observe

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/event"
	"github.com/vigilhq/vigil/internal/atomicfile"
	"github.com/vigilhq/vigil/internal/prom"
)

// Options configures an Observer.
type Options struct {
	StatusFile string       // where to write the status; "" = no file
	Version    string       // vigil's version, for vigil_build_info and the status
	Logger     *slog.Logger // nil = discard
}

// Values of the kind label of vigil_app_exits_total.
const (
	ExitExpected = "expected" // vigil stopped the app (upgrade, shutdown)
	ExitCrash    = "crash"    // the app ended on its own with a failure status or a signal
	ExitClean    = "clean"    // the app ended on its own with status 0
)

// Server timeouts: scrapes and probes are small requests; a client that
// trickles its headers or never reads must not pin a goroutine for long.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = time.Second // vigil's exit waits for it: scrapes are short
)

// Observer keeps metrics and status from events. Create it with New.
type Observer struct {
	log  *slog.Logger
	file string
	reg  *prom.Registry
	m    metrics

	mu      sync.Mutex
	st      Status
	current string // label value of vigil_current_upgrade now set

	mailbox chan Status // one slot: the newest state the writer has not written
}

type metrics struct {
	upgradesDone     *prom.Vec
	upgradesFailed   *prom.Vec
	upgrading        *prom.Gauge
	pickup           *prom.Histogram
	backupDuration   *prom.Histogram
	backupBytes      *prom.Gauge
	backupTime       *prom.Gauge
	downloadDuration *prom.Histogram
	downloadFailures *prom.Counter
	restarts         *prom.Counter
	exits            *prom.Vec
	appUp            *prom.Gauge
	halt             *prom.Gauge
	current          *prom.Vec
}

// New returns an Observer with its metrics registered. Nothing runs until Run.
func New(opts Options) *Observer {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Observer{
		log:     log,
		file:    opts.StatusFile,
		reg:     new(prom.Registry),
		mailbox: make(chan Status, 1),
		st: Status{
			Schema: StatusSchema,
			Vigil:  VigilStatus{Pid: os.Getpid(), Version: opts.Version, Started: time.Now().Round(0)},
		},
	}
	o.m = newMetrics()
	for _, k := range []string{ExitExpected, ExitCrash, ExitClean} {
		o.m.exits.Touch(k) // present at 0, so rate() works from the first crash
	}
	build := prom.NewGauge("vigil_build_info", "vigil's version and the Go version it was built with.",
		"version", opts.Version, "goversion", runtime.Version())
	build.Set(1)
	o.reg.Register(
		o.m.upgradesDone, o.m.upgradesFailed, o.m.upgrading, o.m.pickup,
		o.m.backupDuration, o.m.backupBytes, o.m.backupTime,
		o.m.downloadDuration, o.m.downloadFailures,
		o.m.restarts, o.m.exits, o.m.appUp, o.m.halt, o.m.current, build,
		// Both read their values at scrape time: no cost while idle.
		prom.GoCollector(),
		prom.ProcessCollector(),
	)
	return o
}

// newMetrics declares vigil's own metrics.
func newMetrics() metrics {
	return metrics{
		upgradesDone: prom.NewCounterVec("vigil_upgrades_done_total",
			"Upgrades applied: the new binary was started.", "upgrade"),
		upgradesFailed: prom.NewCounterVec("vigil_upgrades_failed_total",
			"Upgrades that could not be applied; current was left as it was.", "upgrade"),
		upgrading: prom.NewGauge("vigil_upgrade_in_progress",
			"1 from the detection of an upgrade until it is done or failed."),
		pickup: prom.NewHistogram("vigil_upgrade_pickup_seconds",
			"From reading a new upgrade-info.json to the new binary started (stop, backup and hooks included).",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}),
		backupDuration: prom.NewHistogram("vigil_backup_duration_seconds",
			"Time taken by backups of data/.",
			[]float64{.1, 1, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14400}),
		backupBytes: prom.NewGauge("vigil_backup_last_size_bytes",
			"Bytes copied by the last backup of data/."),
		backupTime: prom.NewGauge("vigil_backup_last_timestamp_seconds",
			"When the last backup of data/ finished, in Unix seconds."),
		downloadDuration: prom.NewHistogram("vigil_download_duration_seconds",
			"Time taken by upgrade binary downloads, failed ones included.",
			[]float64{.1, .5, 1, 5, 10, 30, 60, 120, 300, 900}),
		downloadFailures: prom.NewCounter("vigil_download_failures_total",
			"Upgrade binary downloads that failed."),
		restarts: prom.NewCounter("vigil_app_restarts_total",
			"Restarts of the app after a crash (VIGIL_RESTART_ON_FAILURE)."),
		exits: prom.NewCounterVec("vigil_app_exits_total",
			"Exits of the app: expected (vigil stopped it), crash, or clean (status 0 on its own).", "kind"),
		appUp: prom.NewGauge("vigil_app_up",
			"1 while the app runs."),
		halt: prom.NewGauge("vigil_app_halt_height",
			"The --halt-height the app runs with: a scheduled upgrade's height or the operator's own; 0 = none."),
		current: prom.NewGaugeVec("vigil_current_upgrade",
			"The version the app runs: \"genesis\" or the upgrade's directory name.", "name"),
	}
}

// Registry is the Observer's own registry, for tests and extra collectors.
func (o *Observer) Registry() *prom.Registry { return o.reg }

// Observe records one event; it is an event.Func. It never blocks on I/O;
// see the package doc.
func (o *Observer) Observe(e event.Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.Round(0) // wall clock only: the status is read by other processes
	o.mu.Lock()
	defer o.mu.Unlock()
	st := &o.st
	switch e.Kind {
	case event.AppStarted:
		st.App.Running = true
		st.App.Pid, st.App.Bin, st.App.Installed, st.App.Started = e.Pid, e.Bin, e.Installed, e.At
		st.App.HaltHeight, st.App.HaltFor = e.Halt, e.HaltFor
		o.m.appUp.Set(1)
		o.m.halt.Set(float64(e.Halt))
		if o.current != e.Installed {
			if o.current != "" {
				o.m.current.Delete(o.current)
			}
			o.current = e.Installed
			o.m.current.Set(e.Installed, 1)
		}
	case event.AppExited:
		st.App.Running = false
		x := &Exit{Code: e.Exit.Code, At: e.At, Expected: e.Expected}
		if e.Exit.Signal != 0 {
			x.Signal = unix.SignalName(e.Exit.Signal)
		}
		st.App.LastExit = x
		o.m.appUp.Set(0)
		o.m.exits.Inc(exitKind(e))
	case event.AppRestarting:
		st.App.Restarts++
		o.m.restarts.Inc()
	case event.UpgradeDetected:
		st.Upgrading = &Upgrading{Name: e.Plan.Name, Height: e.Plan.Height, Step: "detected", Since: e.At}
		o.m.upgrading.Set(1)
	case event.UpgradeStep:
		if st.Upgrading == nil || st.Upgrading.Name != e.Plan.Name || st.Upgrading.Height != e.Plan.Height {
			st.Upgrading = &Upgrading{Name: e.Plan.Name, Height: e.Plan.Height, Since: e.At}
		}
		st.Upgrading.Step = e.Step
		o.m.upgrading.Set(1)
	case event.UpgradeDone:
		st.Upgrading = nil
		st.LastUpgrade = &UpgradeEnd{Name: e.Plan.Name, Height: e.Plan.Height, Result: UpgradeDone, At: e.At, PickupSeconds: e.Took.Seconds()}
		o.m.upgrading.Set(0)
		o.m.upgradesDone.Inc(e.Plan.Name)
		o.m.pickup.Observe(e.Took.Seconds())
	case event.UpgradeFailed:
		st.Upgrading = nil
		st.LastUpgrade = &UpgradeEnd{Name: e.Plan.Name, Height: e.Plan.Height, Result: UpgradeFailed, Error: errString(e.Err), At: e.At}
		// The reactor gives up after a failed upgrade: vigil is about to exit.
		st.Vigil.Failure = "upgrade " + e.Plan.Name + " failed: " + errString(e.Err)
		o.m.upgrading.Set(0)
		o.m.upgradesFailed.Inc(e.Plan.Name)
	case event.BackupDone:
		st.LastBackup = &BackupEnd{Upgrade: e.Plan.Name, Path: e.Path, Strategy: e.Strategy, Files: e.Files, Bytes: e.Bytes, TookSeconds: e.Took.Seconds(), At: e.At}
		o.m.backupDuration.Observe(e.Took.Seconds())
		o.m.backupBytes.Set(float64(e.Bytes))
		o.m.backupTime.Set(float64(e.At.UnixMilli()) / 1e3)
	case event.DownloadDone:
		st.LastDownload = &DownloadEnd{Upgrade: e.Plan.Name, Height: e.Plan.Height, OK: e.Err == nil, Error: errString(e.Err), TookSeconds: e.Took.Seconds(), At: e.At}
		o.m.downloadDuration.Observe(e.Took.Seconds())
		if e.Err != nil {
			o.m.downloadFailures.Inc()
		}
	case event.Stopping:
		st.Vigil.Stopping = true
	default:
		return
	}
	o.publishLocked()
}

// exitKind classifies an exit for vigil_app_exits_total.
func exitKind(e event.Event) string {
	switch {
	case e.Expected:
		return ExitExpected
	case e.Exit.Success():
		return ExitClean
	}
	return ExitCrash
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Fail records an error vigil will not recover from: /healthz answers 503
// from now on. cmd calls it when the reactor returns an error.
func (o *Observer) Fail(err error) {
	if err == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.st.Vigil.Failure == "" {
		o.st.Vigil.Failure = err.Error()
	}
	o.publishLocked()
}

// Snapshot returns a copy of the current status.
func (o *Observer) Snapshot() Status {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.st.clone()
}

// publishLocked offers the current state to the writer, replacing an older
// one still waiting. o.mu serialises producers, and the writer only ever
// empties the slot, so the send after the drain cannot block.
func (o *Observer) publishLocked() {
	if o.file == "" {
		return
	}
	select {
	case <-o.mailbox:
	default:
	}
	o.mailbox <- o.st.clone()
}

// Handler serves /metrics, /healthz, /readyz and /status (the Status as
// JSON).
func (o *Observer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", prom.Handler(o.reg, prom.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(o.log.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		s := o.Snapshot()
		if s.Vigil.Failure != "" {
			http.Error(w, "failed: "+s.Vigil.Failure, http.StatusServiceUnavailable)
			return
		}
		writeText(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if why := notReady(o.Snapshot()); why != "" {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		writeText(w, "ready\n")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		b, err := json.MarshalIndent(o.Snapshot(), "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
	return mux
}

func writeText(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(s))
}

// notReady says why the node should get no traffic, "" when it may.
func notReady(s Status) string {
	switch {
	case s.Vigil.Failure != "":
		return "vigil failed: " + s.Vigil.Failure
	case s.Vigil.Stopping:
		return "vigil is stopping"
	case s.Upgrading != nil:
		return "upgrade " + s.Upgrading.Name + " in progress: " + s.Upgrading.Step
	case !s.App.Running:
		return "the app is not running"
	}
	return ""
}

// Run writes the status file and, when ln is not nil, serves Handler on ln
// until ctx is cancelled. It then shuts the server down (in-flight requests
// get a second), writes the final status with the stop time and
// returns. It closes ln.
func (o *Observer) Run(ctx context.Context, ln net.Listener) error {
	var (
		wg     sync.WaitGroup
		srvErr error
	)
	if ln != nil {
		srv := &http.Server{
			Handler:           o.Handler(),
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(o.log.Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return ctx },
		}
		wg.Go(func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				o.log.Error("metrics listener stopped", "addr", ln.Addr().String(), "err", err)
				srvErr = err
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				srv.Close()
			}
		})
	}
	if o.file == "" {
		<-ctx.Done()
	} else {
		o.mu.Lock()
		o.publishLocked() // vigil's pid and start time, before any event
		o.mu.Unlock()
		w := writer{o: o}
		w.loop(ctx)
		o.mu.Lock()
		o.st.Vigil.Stopped = time.Now().Round(0)
		final := o.st.clone()
		o.mu.Unlock()
		w.write(final)
	}
	wg.Wait()
	return srvErr
}

// writer owns the status file; it runs in Run's goroutine.
type writer struct {
	o       *Observer
	failing bool // the last write failed: a read-only home is logged once, not per event
}

// statusSettle is how long the writer lets a burst of events settle before
// it writes the newest state: an upgrade emits a handful within
// milliseconds, and writing each would compete for the CPU with the swap
// and the nodes it starts. The status file is for people and `vigil status`;
// 50 ms late is on time. No timer runs while nothing happens.
const statusSettle = 50 * time.Millisecond

func (w *writer) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-w.o.mailbox:
			t := time.NewTimer(statusSettle)
		settle:
			for {
				select {
				case <-ctx.Done():
					t.Stop()
					return // Run writes the final state
				case s = <-w.o.mailbox:
				case <-t.C:
					break settle
				}
			}
			w.write(s)
		}
	}
}

func (w *writer) write(s Status) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		// Atomic for readers, not durable: it is rewritten at every event
		// and at the next start, and its fsyncs would queue the marker's
		// and `current`'s behind them on the upgrade path.
		err = atomicfile.Replace(w.o.file, append(b, '\n'), 0o644)
	}
	switch {
	case err != nil && !w.failing:
		w.o.log.Warn("cannot write the status file; `vigil status` will know less", "path", w.o.file, "err", err)
	case err == nil && w.failing:
		w.o.log.Info("status file written again", "path", w.o.file)
	}
	w.failing = err != nil
}
