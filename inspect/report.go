package inspect

import (
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/runlock"
	"github.com/vigilhq/vigil/observe"
)

// Report is one home as status and doctor see it; `vigil status --json`
// prints it. Field names are stable: tools may rely on them; new fields may
// appear. Fields tagged "-" are facts doctor judges that the JSON never had.
type Report struct {
	Home    string   `json:"home"`
	Name    string   `json:"name"`
	Vigil   Vigil    `json:"vigil"`
	Current Current  `json:"current"`
	Pending *Pending `json:"pending"` // null: no data/upgrade-info.json
	// Scheduled are the plans of data/upgrade-info.json.batch, by height;
	// [] when none or when the file cannot be read (ScheduledError says why).
	Scheduled      []Scheduled          `json:"scheduled"`
	ScheduledError string               `json:"scheduled_error,omitempty"`
	Upgrading      *observe.Upgrading   `json:"upgrade_in_progress,omitempty"`
	Staged         []Staged             `json:"staged"`
	App            *observe.AppStatus   `json:"app"` // null: no status file
	LastUpgrade    *observe.UpgradeEnd  `json:"last_upgrade,omitempty"`
	LastBackup     *Backup              `json:"last_backup,omitempty"`
	LastDownload   *observe.DownloadEnd `json:"last_download,omitempty"`

	Layout  home.Layout `json:"-"`
	Options Options     `json:"-"` // the settings doctor judges the home with
	RootErr error       `json:"-"` // cosmovisor/ is not a directory: not a home
	// UpgradeEntries are the names under upgrades/, files included: a plan
	// whose directory differs only in case is the classic halt.
	UpgradeEntries []string `json:"-"`
	Checks         *Checks  `json:"-"` // with Options.Checks only
	ScheduledErr   error    `json:"-"` // ScheduledError as an error
}

// Vigil is the vigil process of the home.
type Vigil struct {
	Running     bool      `json:"running"`
	Pid         int       `json:"pid,omitempty"`
	Version     string    `json:"version,omitempty"`
	Started     time.Time `json:"started,omitzero"`
	Stopped     time.Time `json:"stopped,omitzero"`
	Failure     string    `json:"failure,omitempty"`
	StatusFile  string    `json:"status_file"`
	StatusError string    `json:"status_error,omitempty"` // why the status file could not be read
}

// Current is what `current` runs.
type Current struct {
	Link         string   `json:"link,omitempty"`      // the target of `current` as written
	Installed    string   `json:"installed,omitempty"` // "genesis" or the upgrade directory
	Bin          string   `json:"bin,omitempty"`
	Version      string   `json:"version,omitempty"` // first line of `<bin> version`
	VersionError string   `json:"version_error,omitempty"`
	Marker       *PlanRef `json:"marker,omitempty"` // the applied upgrade
	MarkerError  string   `json:"marker_error,omitempty"`
	Error        string   `json:"error,omitempty"` // `current` does not resolve

	Err     error  `json:"-"` // home.Installed's error (Error is its text)
	Missing bool   `json:"-"` // there is no `current` at all
	Dir     string `json:"-"` // the directory it resolves to
	Upgrade string `json:"-"` // that directory's name under upgrades/, "" otherwise
	Foreign bool   `json:"-"` // neither genesis nor under upgrades/
	BinErr  error  `json:"-"` // home.Runnable of Bin
}

// PlanRef names an upgrade.
type PlanRef struct {
	Name   string `json:"name"`
	Height int64  `json:"height"`
}

// States of Pending: the reactor's own decision (home.Decide).
const (
	PlanPending    = string(home.Pending)    // new: vigil applies it (now, if the node halted)
	PlanApplied    = string(home.Applied)    // current already points at its directory
	PlanOlder      = string(home.Older)      // not above the installed marker's height: ignored
	PlanInvalid    = string(home.Invalid)    // unparsable, empty or half-written: waited on
	PlanUnreadable = string(home.Unreadable) // the file cannot be read
	PlanRefused    = string(home.Refused)    // its name cannot be a directory under upgrades/
	PlanBlocked    = string(home.Blocked)    // current or its marker is unreadable: vigil will not decide
)

// Pending is data/upgrade-info.json as the reactor decides it.
type Pending struct {
	File        string `json:"file"`
	Name        string `json:"name,omitempty"`
	Height      int64  `json:"height,omitempty"`
	Dir         string `json:"dir,omitempty"` // directory under upgrades/
	State       string `json:"state"`         // pending | applied | older | invalid | unreadable | refused | blocked
	Reason      string `json:"reason,omitempty"`
	Binary      string `json:"binary,omitempty"`
	BinaryOK    bool   `json:"binary_ok"`
	BinaryError string `json:"binary_error,omitempty"`

	BinaryExists bool `json:"-"` // there is a file at Binary, good or not
}

// Scheduled is one upgrade scheduled at a height without governance
// (add-upgrade --upgrade-height, add-batch-upgrade): vigil starts the node
// with --halt-height at the lowest and switches to Binary there.
type Scheduled struct {
	Name        string `json:"name"`
	Height      int64  `json:"height"`
	Dir         string `json:"dir,omitempty"` // directory under upgrades/; "" when the name cannot be one
	Binary      string `json:"binary,omitempty"`
	BinaryOK    bool   `json:"binary_ok"`
	BinaryError string `json:"binary_error,omitempty"` // also why the name cannot be a directory

	BinaryExists bool `json:"-"` // there is a file at Binary, good or not
}

// Staged is one upgrades/<dir>.
type Staged struct {
	Dir     string   `json:"dir"`
	Bin     string   `json:"bin"`
	OK      bool     `json:"ok"` // a program this machine can run
	Error   string   `json:"error,omitempty"`
	Current bool     `json:"current"`
	Marker  *PlanRef `json:"marker,omitempty"` // set once vigil has applied it

	Err error `json:"-"` // home.Runnable's error (Error is its text)
}

// Backup is the newest backup of data/.
type Backup struct {
	Path        string    `json:"path"`
	Upgrade     string    `json:"upgrade,omitempty"`
	Height      int64     `json:"height,omitempty"`
	Strategy    string    `json:"strategy,omitempty"`
	Files       int       `json:"files"`
	Bytes       int64     `json:"bytes"`
	Time        time.Time `json:"time,omitzero"`
	TookSeconds float64   `json:"took_seconds,omitempty"` // known from the status file only
}

// Options are the settings of the home that status and doctor need, and
// what to gather besides the filesystem.
type Options struct {
	BackupDir        string
	SkipBackup       bool
	BackupMode       backup.Strategy
	BackupSkipNoRoom bool   // VIGIL_BACKUP_IF_NO_SPACE=skip
	CustomPreupgrade string // as configured: relative to cosmovisor/
	AllowDownload    bool
	// Version runs `<bin> version` for the current binary; nil: not run.
	Version func(bin string) (string, error)
	// Checks gathers what only doctor judges (Report.Checks); it walks
	// data/ to estimate the backup.
	Checks bool
}

// Home reads the home l into a Report. It only reads (and runs what
// Options.Version runs).
func Home(l home.Layout, o Options) Report {
	r := Report{Home: l.Home, Name: l.Name, Staged: []Staged{}, Scheduled: []Scheduled{}, Layout: l, Options: o}
	if st, err := os.Stat(l.Root()); err != nil || !st.IsDir() {
		r.RootErr = errors.New("not a directory")
	}
	r.readLive(l)
	r.Current = current(l, o.Version)
	r.Pending = pending(l)
	r.Scheduled, r.ScheduledErr = scheduled(l)
	if r.ScheduledErr != nil {
		r.ScheduledError = r.ScheduledErr.Error()
	}
	r.Staged = staged(l, r.Current)
	if ents, err := os.ReadDir(l.UpgradesDir()); err == nil {
		for _, e := range ents {
			r.UpgradeEntries = append(r.UpgradeEntries, e.Name())
		}
	}
	if o.Checks && r.RootErr == nil { // not a home: doctor says only that
		r.Checks = gatherChecks(l, o)
		r.Checks.Libs = gatherLibs(r) // from the binaries read above
	}
	return r
}

// readLive reads what only a running vigil knows, and whether it runs.
func (r *Report) readLive(l home.Layout) {
	r.Vigil.StatusFile = l.StatusFile()
	st, err := observe.ReadStatus(r.Vigil.StatusFile)
	haveStatus := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.Vigil.StatusError = err.Error()
	}
	if haveStatus {
		v := st.Vigil
		r.Vigil.Pid, r.Vigil.Version, r.Vigil.Started, r.Vigil.Stopped, r.Vigil.Failure = v.Pid, v.Version, v.Started, v.Stopped, v.Failure
	}
	r.Vigil.Running = vigilRunning(l.RunLock(), st, haveStatus)
	if haveStatus {
		app := st.App
		// The file says what vigil last saw; a vigil that was killed saw no exit.
		app.Running = app.Running && r.Vigil.Running && Alive(app.Pid, app.Started)
		r.App = &app
		if r.Vigil.Running {
			r.Upgrading = st.Upgrading
		}
		r.LastUpgrade, r.LastDownload = st.LastUpgrade, st.LastDownload
	}
	r.LastBackup = lastBackup(r.Options.BackupDir, st.LastBackup)
}

// vigilRunning asks the run lock first: the kernel drops it whatever way
// vigil ended. Without a lock file (a vigil older than the lock), the status
// file's pid decides.
func vigilRunning(lockFile string, st observe.Status, haveStatus bool) bool {
	if _, err := os.Stat(lockFile); err == nil {
		if held, err := runlock.Held(lockFile); err == nil {
			return held
		}
	}
	return haveStatus && st.Vigil.Stopped.IsZero() && Alive(st.Vigil.Pid, st.Vigil.Started)
}

// lastBackup is the newest complete backup in the backup directory; the
// status file adds how long it took when it is the same one.
func lastBackup(dir string, fromStatus *observe.BackupEnd) *Backup {
	var r *Backup
	if list, err := backup.List(dir); err == nil && len(list) > 0 {
		b := list[len(list)-1]
		r = &Backup{Path: b.Path, Upgrade: b.Upgrade, Height: b.Height, Strategy: string(b.Strategy), Files: b.Files, Bytes: b.Bytes, Time: b.Time}
	}
	if fromStatus != nil {
		if r == nil {
			f := fromStatus
			r = &Backup{Path: f.Path, Upgrade: f.Upgrade, Strategy: f.Strategy, Files: f.Files, Bytes: f.Bytes, Time: f.At}
		}
		if r.Path == fromStatus.Path {
			r.TookSeconds = fromStatus.TookSeconds
		}
	}
	return r
}

// current reads `current`, what it resolves to and its marker.
func current(l home.Layout, version func(string) (string, error)) Current {
	var c Current
	link, err := os.Readlink(l.Current())
	if err == nil {
		c.Link = link
	}
	c.Missing = errors.Is(err, fs.ErrNotExist)
	in, err := l.Installed()
	if err != nil {
		c.Err, c.Error = err, err.Error()
		return c
	}
	c.Dir, c.Upgrade, c.Foreign = in.Dir, in.Upgrade, l.Foreign(in)
	c.Installed = "genesis"
	if in.Upgrade != "" {
		c.Installed = in.Upgrade
	} else if in.Dir != l.GenesisDir() {
		c.Installed = in.Dir
	}
	c.Bin = l.Bin(in.Dir)
	c.BinErr = home.Runnable(c.Bin)
	if in.Marker != nil {
		c.Marker = &PlanRef{in.Marker.Name, in.Marker.Height}
	}
	if in.MarkerErr != nil {
		c.MarkerError = in.MarkerErr.Error()
	}
	if version != nil {
		if v, err := version(c.Bin); err != nil {
			c.VersionError = err.Error()
		} else {
			c.Version = v
		}
	}
	return c
}

// pending reports data/upgrade-info.json as the reactor decides it, with
// the state of its binary; nil when there is no file.
func pending(l home.Layout) *Pending {
	d := home.Decide(l)
	if d.State == home.NoPlan {
		return nil
	}
	p := &Pending{File: l.UpgradeInfoFile(), State: string(d.State), Name: d.Plan.Name, Height: d.Plan.Height, Dir: d.Dir}
	if d.Err != nil {
		p.Reason = d.Err.Error()
	}
	if d.Dir != "" {
		p.Binary = l.Bin(l.UpgradeDir(d.Dir))
		if err := home.Runnable(p.Binary); err != nil {
			p.BinaryError = err.Error()
		} else {
			p.BinaryOK = true
		}
		_, err := os.Stat(p.Binary)
		p.BinaryExists = err == nil
	}
	return p
}

// scheduled reads the batch file, with the state of each plan's binary.
func scheduled(l home.Layout) ([]Scheduled, error) {
	ps, err := l.Scheduled()
	out := make([]Scheduled, 0, len(ps))
	for _, p := range ps {
		s := Scheduled{Name: p.Name, Height: p.Height}
		dir, derr := l.DirName(p.Name)
		if derr != nil {
			s.BinaryError = derr.Error()
			out = append(out, s)
			continue
		}
		s.Dir, s.Binary = dir, l.Bin(l.UpgradeDir(dir))
		if berr := home.Runnable(s.Binary); berr != nil {
			s.BinaryError = berr.Error()
		}
		s.BinaryOK = s.BinaryError == ""
		_, serr := os.Stat(s.Binary)
		s.BinaryExists = serr == nil
		out = append(out, s)
	}
	return out, err
}

// staged lists upgrades/<dir>/bin/<name> for every directory.
func staged(l home.Layout, cur Current) []Staged {
	out := []Staged{}
	ents, err := os.ReadDir(l.UpgradesDir())
	if err != nil {
		return out
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		s := Staged{Dir: e.Name(), Bin: l.Bin(l.UpgradeDir(e.Name()))}
		s.Current = cur.Err == nil && cur.Upgrade == s.Dir
		if s.Err = home.Runnable(s.Bin); s.Err != nil {
			s.Error = s.Err.Error()
		}
		s.OK = s.Err == nil
		if m, _ := home.ReadMarker(l.UpgradeDir(e.Name())); m != nil {
			s.Marker = &PlanRef{m.Name, m.Height}
		}
		out = append(out, s)
	}
	return out
}
