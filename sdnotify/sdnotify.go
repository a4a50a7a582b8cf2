package sdnotify

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/vigilhq/vigil/event"
)

// Config is what cmd learns from the environment systemd gives vigil.
type Config struct {
	Socket   string        // NOTIFY_SOCKET; "" = not started by systemd with Type=notify: do nothing
	Watchdog time.Duration // WatchdogSec, from WatchdogInterval; 0 = no pings
	Healthy  func() bool   // consulted before each ping; nil = always healthy
	Logger   *slog.Logger
}

// maxQueue bounds the messages waiting for the goroutine; beyond it STATUS
// lines are dropped (READY and STOPPING never are). Only a stuck systemd
// could fill it.
const maxQueue = 64

// sendTimeout bounds one datagram: a full receive queue on systemd's side
// must not hold up Close forever.
const sendTimeout = 2 * time.Second

// Notifier sends sd_notify messages. The zero value and nil do nothing.
type Notifier struct {
	cfg    Config
	ticker *time.Ticker

	mu       sync.Mutex
	queue    []string
	ready    bool   // READY=1 queued
	stopping bool   // STOPPING=1 queued
	closed   bool   // Close was called
	running  string // the last "running … (pid N)", reused when an upgrade is done

	wake chan struct{} // cap 1: the queue has something
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// Owned by the goroutine.
	failing   bool // the last send failed; log again only on recovery
	unhealthy bool // the last ping was withheld
}

// New returns a Notifier for cfg. Without a socket it is inert: no
// goroutine, no timer, and every method returns at once.
func New(cfg Config) *Notifier {
	if cfg.Socket == "" {
		return &Notifier{}
	}
	var tick <-chan time.Time
	var ticker *time.Ticker
	if cfg.Watchdog > 0 {
		// Half the interval, as sd_watchdog_enabled(3) advises, so one late
		// wake-up does not get vigil killed.
		ticker = time.NewTicker(cfg.Watchdog / 2)
		tick = ticker.C
	}
	n := start(cfg, tick)
	n.ticker = ticker
	return n
}

// start starts the goroutine; tests drive the watchdog with their own tick.
func start(cfg Config, tick <-chan time.Time) *Notifier {
	n := &Notifier{
		cfg:  cfg,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go n.run(tick)
	return n
}

// Enabled reports whether vigil runs under systemd with Type=notify.
func (n *Notifier) Enabled() bool { return n != nil && n.wake != nil }

// Observe turns reactor events into messages; see the package documentation.
func (n *Notifier) Observe(e event.Event) {
	if !n.Enabled() {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	switch e.Kind {
	case event.AppStarted:
		n.running = fmt.Sprintf("running %s (pid %d)", e.Bin, e.Pid)
		if !n.ready {
			n.ready = true
			n.pushLocked(daemon.SdNotifyReady+"\nSTATUS="+n.running, true)
			return
		}
		n.statusLocked(n.running)
	case event.AppExited:
		// Expected exits are covered by the upgrade step or by stopping.
		if !e.Expected {
			n.statusLocked("app exited: " + e.Exit.String())
		}
	case event.AppRestarting:
		n.statusLocked(fmt.Sprintf("app crashed (%s); restart %d in %s", e.Exit, e.Attempt, e.Wait.Round(time.Millisecond)))
	case event.UpgradeDetected:
		n.statusLocked(fmt.Sprintf("upgrade %s at height %d detected; preparing", e.Plan.Name, e.Plan.Height))
	case event.UpgradeStep:
		n.statusLocked(fmt.Sprintf("upgrading to %s: %s", e.Plan.Name, e.Step))
	case event.UpgradeDone:
		n.statusLocked(fmt.Sprintf("%s; upgraded to %s in %s", n.running, e.Plan.Name, e.Took.Round(time.Millisecond)))
	case event.UpgradeFailed:
		n.statusLocked(fmt.Sprintf("upgrade to %s failed: %v", e.Plan.Name, e.Err))
	case event.DownloadDone:
		if e.Err != nil {
			n.statusLocked(fmt.Sprintf("upgrade %s: download failed, will retry: %v", e.Plan.Name, e.Err))
		}
	case event.Stopping:
		n.stoppingLocked()
	}
}

// Close sends STOPPING=1 unless an event.Stopping already did, sends what is
// still queued and stops the goroutine.
func (n *Notifier) Close() {
	if !n.Enabled() {
		return
	}
	n.once.Do(func() {
		n.mu.Lock()
		n.stoppingLocked()
		n.closed = true
		n.mu.Unlock()
		close(n.stop)
		<-n.done
		if n.ticker != nil {
			n.ticker.Stop()
		}
	})
}

func (n *Notifier) stoppingLocked() {
	if n.stopping {
		return
	}
	n.stopping = true
	n.pushLocked(daemon.SdNotifyStopping+"\nSTATUS=stopping", true)
}

func (n *Notifier) statusLocked(s string) {
	// One line per STATUS: systemd ends the value at a newline.
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
	n.pushLocked("STATUS="+s, false)
}

func (n *Notifier) pushLocked(msg string, must bool) {
	if len(n.queue) >= maxQueue && !must {
		return
	}
	n.queue = append(n.queue, msg)
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *Notifier) run(tick <-chan time.Time) {
	defer close(n.done)
	for {
		select {
		case <-n.wake:
			n.flush()
		case <-tick:
			n.ping()
		case <-n.stop:
			n.flush()
			return
		}
	}
}

func (n *Notifier) flush() {
	n.mu.Lock()
	q := n.queue
	n.queue = nil
	n.mu.Unlock()
	for _, msg := range q {
		n.send(msg)
	}
}

func (n *Notifier) ping() {
	if n.cfg.Healthy != nil && !n.cfg.Healthy() {
		if !n.unhealthy {
			n.unhealthy = true
			n.log().Warn("not healthy: withholding the systemd watchdog ping")
		}
		return
	}
	if n.unhealthy {
		n.unhealthy = false
		n.log().Info("healthy again: systemd watchdog pings resume")
	}
	n.send(daemon.SdNotifyWatchdog)
}

// send writes one datagram on a fresh connection, as sd_notify(3) does: a
// systemd that re-executed itself has a new socket behind the same path.
func (n *Notifier) send(msg string) {
	err := sendTo(n.cfg.Socket, msg)
	switch {
	case err != nil && !n.failing:
		n.failing = true
		n.log().Warn("cannot notify systemd", "socket", n.cfg.Socket, "err", err)
	case err == nil && n.failing:
		n.failing = false
		n.log().Info("notifying systemd again", "socket", n.cfg.Socket)
	}
}

func sendTo(socket, msg string) error {
	// A leading @ is an abstract socket; net handles it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: dial %s: %w", socket, err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sdnotify: send to %s: %w", socket, err)
	}
	return nil
}

func (n *Notifier) log() *slog.Logger {
	if n.cfg.Logger != nil {
		return n.cfg.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// WatchdogInterval interprets WATCHDOG_USEC and WATCHDOG_PID as
// sd_watchdog_enabled(3) does (and daemon.SdWatchdogEnabled, which reads the
// environment itself): 0 when usec is empty or pid names another process
// (the variables were inherited), an error when usec is not a positive
// integer. self is the caller's pid.
func WatchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	us, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || us <= 0 {
		return 0, errors.New("sdnotify: WATCHDOG_USEC must be a positive integer, got " + strconv.Quote(usec))
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil {
			return 0, errors.New("sdnotify: WATCHDOG_PID must be a pid, got " + strconv.Quote(pid))
		}
		if p != self {
			return 0, nil
		}
	}
	return time.Duration(us) * time.Microsecond, nil
}
