package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/binfile"
	"github.com/vigilhq/vigil/internal/runlock"
	"github.com/vigilhq/vigil/observe"
	"github.com/vigilhq/vigil/process"
	"github.com/vigilhq/vigil/reactor"
	"github.com/vigilhq/vigil/reactor/layout"
	"github.com/vigilhq/vigil/reactor/plan"
)

// ---- the observer of `vigil run` ----

// observer runs the metrics, probes and status file for `vigil run`.
type observer struct {
	*observe.Observer
	cancel context.CancelFunc
	done   chan error
}

// startObserver binds VIGIL_LISTEN (if set) and starts the observer. A port
// that cannot be bound is a startup error: an operator who asked for metrics
// wants to know now, not from a missing scrape target.
func startObserver(cfg config.Config, log *slog.Logger) (*observer, error) {
	o := observe.New(observe.Options{
		StatusFile: statusFile(cfg.Layout()),
		Version:    versionString(),
		Logger:     log.With("component", "observe"),
	})
	var ln net.Listener
	if cfg.Listen != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("%s: cannot listen on %s: %w", config.EnvListen, cfg.Listen, err)
		}
		log.Info("serving /metrics, /healthz, /readyz and /status", "addr", ln.Addr().String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	ob := &observer{Observer: o, cancel: cancel, done: make(chan error, 1)}
	go func() { ob.done <- o.Run(ctx, ln) }()
	return ob, nil
}

// stop records how the reactor ended (err nil: normally), stops the server
// and waits for the last status write.
func (ob *observer) stop(err error) {
	ob.Fail(err)
	ob.cancel()
	<-ob.done // Run has logged a server failure itself
}

func statusFile(l layout.Layout) string { return filepath.Join(l.Root(), observe.StatusFileName) }

// ---- options shared by status and doctor ----

type homeOpts struct {
	home, name, configFile string
	timeout                time.Duration
	json                   bool
}

const defaultCheckTimeout = 5 * time.Second

// parseHomeOpts parses the flags of status and doctor. They work on any home,
// without the service's environment: --home and --name win over
// DAEMON_HOME and DAEMON_NAME.
func parseHomeOpts(cmd string, args []string, withJSON bool) (homeOpts, error) {
	var o homeOpts
	set := flag.NewFlagSet(cmd, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	set.StringVar(&o.home, "home", "", "")
	set.StringVar(&o.name, "name", "", "")
	set.StringVar(&o.configFile, configFlag, "", "")
	set.StringVar(&o.configFile, "c", "", "")
	set.DurationVar(&o.timeout, "timeout", defaultCheckTimeout, "")
	if withJSON {
		set.BoolVar(&o.json, "json", false, "")
	}
	usage := fmt.Sprintf("usage: vigil %s [--home DIR] [--name NAME] [--timeout 5s] [-c FILE]", cmd)
	if withJSON {
		usage += " [--json]"
	}
	if err := set.Parse(args); err != nil {
		return o, fmt.Errorf("%s: %w\n%s", cmd, err, usage)
	}
	if set.NArg() > 0 {
		return o, fmt.Errorf("%s takes no arguments, got %q\n%s", cmd, set.Args(), usage)
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("%s: --timeout must be positive", cmd)
	}
	if o.home != "" {
		abs, err := filepath.Abs(o.home)
		if err != nil {
			return o, fmt.Errorf("--home: %w", err)
		}
		o.home = abs
	}
	return o, nil
}

// config loads the settings with the flags on top of the environment. When no
// name is given anywhere, it is inferred from genesis/bin when that holds
// exactly one file.
func (o homeOpts) config(getenv getenvFunc) (config.Config, error) {
	env := func(name string) getenvFunc {
		return func(k string) (string, bool) {
			switch {
			case k == config.EnvHome && o.home != "":
				return o.home, true
			case k == config.EnvName && name != "":
				return name, true
			}
			return getenv(k)
		}
	}
	cfg, err := config.Load(env(o.name), o.configFile)
	if err == nil || o.name != "" {
		return cfg, err
	}
	if v, _ := getenv(config.EnvName); v != "" {
		return cfg, err
	}
	home := o.home
	if home == "" {
		home, _ = getenv(config.EnvHome)
	}
	if home == "" {
		return cfg, err
	}
	name, ierr := inferName(layout.Layout{Home: home}.GenesisDir())
	if ierr != nil {
		return cfg, fmt.Errorf("%w\n%s is not set and %w; pass --name", err, config.EnvName, ierr)
	}
	return config.Load(env(name), o.configFile)
}

func inferName(genesis string) (string, error) {
	dir := filepath.Join(genesis, "bin")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("cannot infer it from %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) != 1 {
		return "", fmt.Errorf("cannot infer it: %s holds %d files %q, not one", dir, len(names), names)
	}
	return names[0], nil
}

// ---- `<bin> version` ----

// appVersion runs `bin version` and returns the first line of its output.
// The command leads its own process group, stopped whole at the timeout, so
// a script that forked a sleeper cannot outlive it.
func appVersion(bin string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// SDK versions before 0.46 print the version on stderr: Output takes both.
	out, exit, err := process.Output(ctx, process.Spec{Path: bin, Args: []string{"version"}, OwnGroup: true}, versionGrace)
	line := firstLine(string(out))
	switch {
	case ctx.Err() != nil:
		return line, fmt.Errorf("`%s version` did not finish within %v", bin, timeout)
	case err != nil:
		return line, fmt.Errorf("`%s version`: %w", bin, err)
	case !exit.Success() && line != "":
		return line, fmt.Errorf("`%s version`: %s: %s", bin, exit, line)
	case !exit.Success():
		return line, fmt.Errorf("`%s version`: %s", bin, exit)
	}
	return line, nil
}

// versionGrace is how long a timed-out `version` gets between SIGTERM and
// SIGKILL: it has no state to save.
const versionGrace = 500 * time.Millisecond

func firstLine(s string) string {
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 200 {
				l = l[:200] + "…"
			}
			return l
		}
	}
	return ""
}

// ---- liveness of a recorded process ----

// alive reports whether pid is running and is the process that started at
// started (so a recycled pid does not count). Without /proc it trusts the pid.
func alive(pid int, started time.Time) bool {
	if pid <= 0 {
		return false
	}
	if err := unix.Kill(pid, 0); err != nil && !errors.Is(err, unix.EPERM) {
		return false
	}
	at, err := procStart(pid)
	if err != nil || started.IsZero() {
		return err == nil || errors.Is(err, fs.ErrNotExist) && !procMounted()
	}
	d := at.Sub(started)
	// /proc's start time has a 1 s (btime) and 10 ms (ticks) resolution, and
	// the recorded time is taken just after the start.
	return d > -5*time.Second && d < 5*time.Second
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// procStart reads a process's start time from /proc/<pid>/stat (field 22, in
// clock ticks since boot) and /proc/stat (btime).
func procStart(pid int) (time.Time, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, err
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces and parens
	if i < 0 {
		return time.Time{}, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return time.Time{}, errors.New("bad /proc stat")
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22; f[0] is field 3
	if err != nil {
		return time.Time{}, err
	}
	st, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for l := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			btime, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, err
			}
			const userHZ = 100 // USER_HZ: fixed at 100 in the Linux ABI
			return time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / userHZ), nil
		}
	}
	return time.Time{}, errors.New("no btime in /proc/stat")
}

// ---- the pending plan ----

// States of a pendingReport: the reactor's own decision (reactor.Decide).
const (
	planPending    = string(reactor.Pending)    // new: vigil applies it (now, if the node halted)
	planApplied    = string(reactor.Applied)    // current already points at its directory
	planOlder      = string(reactor.Older)      // not above the installed marker's height: ignored
	planInvalid    = string(reactor.Invalid)    // unparsable, empty or half-written: waited on
	planUnreadable = string(reactor.Unreadable) // the file cannot be read
	planRefused    = string(reactor.Refused)    // its name cannot be a directory under upgrades/
	planBlocked    = string(reactor.Blocked)    // current or its marker is unreadable: vigil will not decide
)

// pendingPlan reports data/upgrade-info.json as the reactor decides it, with
// the state of its binary; nil when there is no file.
func pendingPlan(l layout.Layout) *pendingReport {
	d := reactor.Decide(l)
	if d.State == reactor.NoPlan {
		return nil
	}
	r := &pendingReport{File: l.UpgradeInfoFile(), State: string(d.State), Name: d.Plan.Name, Height: d.Plan.Height, Dir: d.Dir}
	if d.Err != nil {
		r.Reason = d.Err.Error()
	}
	if d.Dir != "" {
		r.Binary = l.Bin(l.UpgradeDir(d.Dir))
		if err := binfile.Check(r.Binary); err != nil {
			r.BinaryError = err.Error()
		} else {
			r.BinaryOK = true
		}
	}
	return r
}

// ---- `vigil status` ----

// statusReport is `vigil status --json`. Field names are stable: tools may
// rely on them; new fields may appear.
type statusReport struct {
	Home         string               `json:"home"`
	Name         string               `json:"name"`
	Vigil        vigilReport          `json:"vigil"`
	Current      currentReport        `json:"current"`
	Pending      *pendingReport       `json:"pending"` // null: no data/upgrade-info.json
	Upgrading    *observe.Upgrading   `json:"upgrade_in_progress,omitempty"`
	Staged       []stagedReport       `json:"staged"`
	App          *observe.AppStatus   `json:"app"` // null: no status file
	LastUpgrade  *observe.UpgradeEnd  `json:"last_upgrade,omitempty"`
	LastBackup   *backupReport        `json:"last_backup,omitempty"`
	LastDownload *observe.DownloadEnd `json:"last_download,omitempty"`
}

type vigilReport struct {
	Running     bool      `json:"running"`
	Pid         int       `json:"pid,omitempty"`
	Version     string    `json:"version,omitempty"`
	Started     time.Time `json:"started,omitzero"`
	Stopped     time.Time `json:"stopped,omitzero"`
	Failure     string    `json:"failure,omitempty"`
	StatusFile  string    `json:"status_file"`
	StatusError string    `json:"status_error,omitempty"` // why the status file could not be read
}

type currentReport struct {
	Link         string      `json:"link,omitempty"`      // the target of `current` as written
	Installed    string      `json:"installed,omitempty"` // "genesis" or the upgrade directory
	Bin          string      `json:"bin,omitempty"`
	Version      string      `json:"version,omitempty"` // first line of `<bin> version`
	VersionError string      `json:"version_error,omitempty"`
	Marker       *planReport `json:"marker,omitempty"` // the applied upgrade
	MarkerError  string      `json:"marker_error,omitempty"`
	Error        string      `json:"error,omitempty"` // `current` does not resolve
}

type planReport struct {
	Name   string `json:"name"`
	Height int64  `json:"height"`
}

type pendingReport struct {
	File        string `json:"file"`
	Name        string `json:"name,omitempty"`
	Height      int64  `json:"height,omitempty"`
	Dir         string `json:"dir,omitempty"` // directory under upgrades/
	State       string `json:"state"`         // pending | applied | older | invalid | unreadable | refused | blocked
	Reason      string `json:"reason,omitempty"`
	Binary      string `json:"binary,omitempty"`
	BinaryOK    bool   `json:"binary_ok"`
	BinaryError string `json:"binary_error,omitempty"`
}

type stagedReport struct {
	Dir     string      `json:"dir"`
	Bin     string      `json:"bin"`
	OK      bool        `json:"ok"` // a program this machine can run
	Error   string      `json:"error,omitempty"`
	Current bool        `json:"current"`
	Marker  *planReport `json:"marker,omitempty"` // set once vigil has applied it
}

type backupReport struct {
	Path        string    `json:"path"`
	Upgrade     string    `json:"upgrade,omitempty"`
	Height      int64     `json:"height,omitempty"`
	Strategy    string    `json:"strategy,omitempty"`
	Files       int       `json:"files"`
	Bytes       int64     `json:"bytes"`
	Time        time.Time `json:"time,omitzero"`
	TookSeconds float64   `json:"took_seconds,omitempty"` // known from the status file only
}

func statusCmd(args []string, stdout io.Writer, getenv getenvFunc) error {
	o, err := parseHomeOpts("status", args, true)
	if err != nil {
		return err
	}
	cfg, err := o.config(getenv)
	if err != nil {
		return err
	}
	r := collectStatus(cfg, o.timeout)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printStatus(stdout, r, time.Now())
	return nil
}

func collectStatus(cfg config.Config, timeout time.Duration) statusReport {
	l := cfg.Layout()
	r := statusReport{Home: cfg.Home, Name: cfg.Name, Staged: []stagedReport{}}

	// What only a running vigil knows, and whether it runs.
	r.Vigil.StatusFile = statusFile(l)
	st, err := observe.ReadStatus(r.Vigil.StatusFile)
	haveStatus := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.Vigil.StatusError = err.Error()
	}
	if haveStatus {
		r.Vigil.Pid, r.Vigil.Version, r.Vigil.Started, r.Vigil.Stopped, r.Vigil.Failure =
			st.Vigil.Pid, st.Vigil.Version, st.Vigil.Started, st.Vigil.Stopped, st.Vigil.Failure
	}
	r.Vigil.Running = vigilRunning(cfg, st, haveStatus)
	if haveStatus {
		app := st.App
		// The file says what vigil last saw; a vigil that was killed saw no exit.
		app.Running = app.Running && r.Vigil.Running && alive(app.Pid, app.Started)
		r.App = &app
		if r.Vigil.Running {
			r.Upgrading = st.Upgrading
		}
		r.LastUpgrade, r.LastDownload = st.LastUpgrade, st.LastDownload
	}
	r.LastBackup = lastBackup(cfg, st.LastBackup)

	// What the filesystem says.
	if link, err := os.Readlink(l.Current()); err == nil {
		r.Current.Link = link
	}
	in, err := l.Installed()
	if err != nil {
		r.Current.Error = err.Error()
	} else {
		r.Current.Installed = "genesis"
		if in.Upgrade != "" {
			r.Current.Installed = in.Upgrade
		} else if in.Dir != l.GenesisDir() {
			r.Current.Installed = in.Dir
		}
		r.Current.Bin = l.Bin(in.Dir)
		if in.Marker != nil {
			r.Current.Marker = &planReport{in.Marker.Name, in.Marker.Height}
		}
		if in.MarkerErr != nil {
			r.Current.MarkerError = in.MarkerErr.Error()
		}
		if v, err := appVersion(r.Current.Bin, timeout); err != nil {
			r.Current.VersionError = err.Error()
		} else {
			r.Current.Version = v
		}
	}
	r.Pending = pendingPlan(l)
	for _, s := range stagedUpgrades(l) {
		sr := stagedReport{Dir: s.dir, Bin: s.bin, OK: s.err == nil, Current: err == nil && in.Upgrade == s.dir}
		if s.err != nil {
			sr.Error = s.err.Error()
		}
		if s.marker != nil {
			sr.Marker = &planReport{s.marker.Name, s.marker.Height}
		}
		r.Staged = append(r.Staged, sr)
	}
	return r
}

// vigilRunning asks the run lock first: the kernel drops it whatever way
// vigil ended. Without a lock file (a vigil older than the lock), the status
// file's pid decides.
func vigilRunning(cfg config.Config, st observe.Status, haveStatus bool) bool {
	if _, err := os.Stat(runLockPath(cfg)); err == nil {
		if held, err := runlock.Held(runLockPath(cfg)); err == nil {
			return held
		}
	}
	return haveStatus && st.Vigil.Stopped.IsZero() && alive(st.Vigil.Pid, st.Vigil.Started)
}

// lastBackup is the newest complete backup in the backup directory; the
// status file adds how long it took when it is the same one.
func lastBackup(cfg config.Config, fromStatus *observe.BackupEnd) *backupReport {
	var r *backupReport
	if list, err := backup.List(cfg.BackupDir); err == nil && len(list) > 0 {
		b := list[len(list)-1]
		r = &backupReport{Path: b.Path, Upgrade: b.Upgrade, Height: b.Height, Strategy: string(b.Strategy), Files: b.Files, Bytes: b.Bytes, Time: b.Time}
	}
	if fromStatus != nil {
		if r == nil {
			r = &backupReport{Path: fromStatus.Path, Upgrade: fromStatus.Upgrade, Strategy: fromStatus.Strategy, Files: fromStatus.Files, Bytes: fromStatus.Bytes, Time: fromStatus.At}
		}
		if r.Path == fromStatus.Path {
			r.TookSeconds = fromStatus.TookSeconds
		}
	}
	return r
}

type staged struct {
	dir, bin string
	err      error      // binfile.Check
	marker   *plan.Plan // nil until vigil applied it
}

// stagedUpgrades lists upgrades/<dir>/bin/<name> for every directory.
func stagedUpgrades(l layout.Layout) []staged {
	ents, err := os.ReadDir(l.UpgradesDir())
	if err != nil {
		return nil
	}
	var out []staged
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		s := staged{dir: e.Name(), bin: l.Bin(l.UpgradeDir(e.Name()))}
		s.err = binfile.Check(s.bin)
		s.marker, _ = layout.ReadMarker(l.UpgradeDir(e.Name()))
		out = append(out, s)
	}
	return out
}

// printStatus renders the report for a person: one aligned line per fact.
func printStatus(w io.Writer, r statusReport, now time.Time) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-14s %s\n", label, fmt.Sprintf(format, args...))
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "?"
		}
		return fmt.Sprintf("%s (%s ago)", t.Local().Format("2006-01-02 15:04:05 MST"), since(now, t))
	}

	switch v := r.Vigil; {
	case v.Running && v.Pid != 0:
		line("vigil", "running, pid %d, %s, since %s", v.Pid, orQ(v.Version), when(v.Started))
	case v.Running:
		line("vigil", "running (the run lock is held; no status file yet)")
	case !v.Stopped.IsZero():
		line("vigil", "not running (pid %d stopped %s)", v.Pid, when(v.Stopped))
	case v.Pid != 0:
		line("vigil", "not running (pid %d gone without a clean stop: killed?)", v.Pid)
	default:
		line("vigil", "not running (no status file)")
	}
	if r.Vigil.Failure != "" {
		line("failure", "%s", r.Vigil.Failure)
	}
	if r.Vigil.StatusError != "" {
		line("status file", "%s", r.Vigil.StatusError)
	}
	line("home", "%s (%s)", r.Home, r.Name)

	if c := r.Current; c.Error != "" {
		line("current", "BROKEN: %s", c.Error)
	} else {
		line("current", "%s -> %s", c.Link, c.Bin)
		if c.VersionError != "" {
			line("version", "unknown: %s", c.VersionError)
		} else {
			line("version", "%s", orQ(c.Version))
		}
		switch {
		case c.MarkerError != "":
			line("installed", "%s (marker unreadable: %s)", c.Installed, c.MarkerError)
		case c.Marker != nil:
			line("installed", "%s at height %d", c.Marker.Name, c.Marker.Height)
		default:
			line("installed", "%s", c.Installed)
		}
	}

	switch p := r.Pending; {
	case p == nil:
		line("pending", "none")
	case p.State == planPending:
		bin := "binary ready"
		if !p.BinaryOK {
			bin = "binary NOT ready: " + p.BinaryError
		}
		line("pending", "%s at height %d -> upgrades/%s; %s", p.Name, p.Height, p.Dir, bin)
	case p.State == planApplied:
		line("pending", "none (%s at height %d is applied)", p.Name, p.Height)
	case p.Name != "":
		line("pending", "%s at height %d: %s: %s", p.Name, p.Height, p.State, p.Reason)
	default:
		line("pending", "%s: %s", p.State, p.Reason)
	}
	if u := r.Upgrading; u != nil {
		line("upgrading", "%s at height %d: %s (since %s)", u.Name, u.Height, u.Step, when(u.Since))
	}

	if len(r.Staged) == 0 {
		line("staged", "none")
	}
	for i, s := range r.Staged {
		label := ""
		if i == 0 {
			label = "staged"
		}
		state := "ok"
		if !s.OK {
			state = "BAD: " + s.Error
		}
		note := ""
		switch {
		case s.Current:
			note = " (current)"
		case s.Marker != nil:
			note = fmt.Sprintf(" (applied at height %d)", s.Marker.Height)
		}
		line(label, "%-12s %s%s", s.Dir, state, note)
	}

	if a := r.App; a != nil {
		if a.Running {
			line("app", "running, pid %d, %s, since %s", a.Pid, a.Installed, when(a.Started))
		} else {
			line("app", "not running")
		}
		line("restarts", "%d", a.Restarts)
		if x := a.LastExit; x != nil {
			how := fmt.Sprintf("code %d", x.Code)
			if x.Signal != "" {
				how += " (" + x.Signal + ")"
			}
			kind := "unexpected"
			if x.Expected {
				kind = "expected"
			}
			line("last exit", "%s, %s, %s", how, kind, when(x.At))
		}
	}
	if u := r.LastUpgrade; u != nil {
		if u.Result == observe.UpgradeDone {
			line("last upgrade", "%s at height %d: done %s, pickup %s", u.Name, u.Height, when(u.At), secs(u.PickupSeconds))
		} else {
			line("last upgrade", "%s at height %d: FAILED %s: %s", u.Name, u.Height, when(u.At), u.Error)
		}
	}
	if b := r.LastBackup; b != nil {
		took := ""
		if b.TookSeconds > 0 {
			took = ", took " + secs(b.TookSeconds)
		}
		line("last backup", "%s (%s, %d files, %s%s) %s", b.Path, orQ(b.Strategy), b.Files, humanBytes(b.Bytes), took, when(b.Time))
	}
	if d := r.LastDownload; d != nil {
		if d.OK {
			line("last download", "%s: ok in %s, %s", d.Upgrade, secs(d.TookSeconds), when(d.At))
		} else {
			line("last download", "%s: FAILED after %s, %s: %s", d.Upgrade, secs(d.TookSeconds), when(d.At), d.Error)
		}
	}
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func since(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func secs(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Microsecond).String()
	case d < time.Minute:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
