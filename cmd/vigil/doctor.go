package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/binfile"
	"github.com/vigilhq/vigil/reactor/layout"
)

// `vigil doctor` checks, before an upgrade height, what would make the
// upgrade go wrong at the halt: one line per finding, OK, WARN or FAIL. It
// only reads (and runs `<bin> version`); it never repairs.

const (
	levelOK   = "OK"
	levelWarn = "WARN"
	levelFail = "FAIL"
)

type finding struct{ level, msg string }

type doctor struct {
	cfg      config.Config
	l        layout.Layout
	timeout  time.Duration
	findings []finding
	versions map[string]versionResult // by binary: the pending one is also a staged one
}

type versionResult struct {
	v   string
	err error
}

// version runs `bin version` once per binary.
func (d *doctor) version(bin string) (string, error) {
	if r, ok := d.versions[bin]; ok {
		return r.v, r.err
	}
	v, err := appVersion(bin, d.timeout)
	if d.versions == nil {
		d.versions = map[string]versionResult{}
	}
	d.versions[bin] = versionResult{v, err}
	return v, err
}

func (d *doctor) add(level, format string, args ...any) {
	d.findings = append(d.findings, finding{level, fmt.Sprintf(format, args...)})
}

// failed reports whether any finding is a FAIL.
func (d *doctor) failed() bool {
	for _, f := range d.findings {
		if f.level == levelFail {
			return true
		}
	}
	return false
}

// errDoctorFailed makes cli exit 1 after the findings were printed.
var errDoctorFailed = errors.New("doctor found problems (FAIL lines above); the upgrade would fail at the halt")

func doctorCmd(args []string, stdout io.Writer, getenv getenvFunc) error {
	o, err := parseHomeOpts("doctor", args, false)
	if err != nil {
		return err
	}
	cfg, err := o.config(getenv)
	if err != nil {
		return err
	}
	d := &doctor{cfg: cfg, l: cfg.Layout(), timeout: o.timeout}
	d.run()
	for _, f := range d.findings {
		fmt.Fprintf(stdout, "%-4s  %s\n", f.level, f.msg)
	}
	if d.failed() {
		return errDoctorFailed
	}
	return nil
}

func (d *doctor) run() {
	if st, err := os.Stat(d.l.Root()); err != nil || !st.IsDir() {
		d.add(levelFail, "%s is not a directory: not a cosmovisor/vigil home; %s", d.l.Root(), config.InitHint)
		return
	}
	in, ok := d.current()
	d.dataDir()
	d.backupDir()
	d.preupgradeScript()
	d.staged(in, ok)
	d.plan()
}

// current checks the `current` link, the installed marker and the running
// version's binary.
func (d *doctor) current() (layout.Installed, bool) {
	cur := d.l.Current()
	link, err := os.Readlink(cur)
	if errors.Is(err, fs.ErrNotExist) {
		d.add(levelWarn, "%s does not exist: `vigil run` creates it pointing at genesis", cur)
	}
	in, err := d.l.Installed()
	if err != nil {
		if !errors.Is(err, layout.ErrNoCurrent) {
			d.add(levelFail, "%v: vigil will not start", err)
		}
		return in, false
	}
	switch {
	case filepath.IsAbs(link):
		d.add(levelWarn, "current -> %s is an absolute link: it breaks when the home is mounted at another path (vigil writes relative links at the next upgrade)", link)
	default:
		d.add(levelOK, "current -> %s (relative, resolves)", link)
	}
	if d.l.Foreign(in) {
		d.add(levelWarn, "current -> %s is outside %s: vigil runs it, but it is neither genesis nor an upgrade directory, so vigil cannot tell its version", in.Dir, d.l.Root())
	}
	if in.MarkerErr != nil {
		d.add(levelFail, "the marker of the installed version is unreadable (%v): vigil will not apply any upgrade-info.json until it is fixed", in.MarkerErr)
	}
	bin := d.l.Bin(in.Dir)
	if err := binfile.Check(bin); err != nil {
		d.add(levelFail, "current binary: %v: the node cannot start", err)
		return in, true
	}
	if v, err := d.version(bin); err != nil {
		d.add(levelFail, "current binary: %v", err)
	} else {
		d.add(levelOK, "current binary %s: %s", bin, v)
	}
	return in, true
}

// dataDir checks data/ and says how it is laid out: a symlink to another
// volume is common, and decides which backup strategies are possible.
func (d *doctor) dataDir() {
	dir := d.l.DataDir()
	dl, err := backup.ResolveData(dir)
	var dangling *backup.DanglingError
	switch {
	case errors.As(err, &dangling):
		d.add(levelFail, "data/ -> %s: the link dangles (is the data volume mounted?): `vigil run` refuses to start and no backup can be taken", dangling.Link)
		return
	case err != nil:
		d.add(levelFail, "data directory: %v: `vigil run` refuses to start", err)
		return
	case !dl.Exists:
		d.add(levelFail, "data directory %s does not exist: `vigil run` refuses to start", dir)
		return
	case !dl.IsLink():
		d.add(levelOK, "data directory %s exists", dir)
	default:
		where := "on the same filesystem as $DAEMON_HOME"
		if same, err := sameFS(dl.Real, d.l.Home); err == nil && !same {
			where = "on another filesystem than $DAEMON_HOME"
		}
		d.add(levelOK, "data/ -> %s (symlink, %s): backups and restores use %s, the link is kept", dl.Real, where, dl.Real)
	}
	if dl.MountRoot {
		d.add(levelWarn, "%s is the root of a mounted filesystem: `vigil backup restore` cannot move it aside and refuses; point data/ at a directory inside that filesystem to be able to restore", dl.Real)
	}
}

func sameFS(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev, nil
}

// backupDir checks that the backup taken at the halt can be written and will
// fit, with the estimate the backup itself makes before the stop.
func (d *doctor) backupDir() {
	if d.cfg.SkipBackup {
		d.add(levelWarn, "%s is set: no backup of data/ is taken before an upgrade; a failed migration cannot be rolled back", config.EnvSkipBackup)
		return
	}
	dir := d.cfg.BackupDir
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		d.add(levelFail, "backup directory: %v: vigil will not start (%s)", err, config.EnvBackupDir)
		return
	case !st.IsDir():
		d.add(levelFail, "backup directory %s is not a directory (%s)", dir, config.EnvBackupDir)
		return
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		d.add(levelFail, "backup directory %s is not writable by this user (%v): the backup at the halt will fail and the upgrade with it", dir, err)
		return
	}
	dl, err := backup.ResolveData(d.l.DataDir())
	if err != nil || !dl.Exists {
		return // reported by dataDir
	}
	sp, err := backup.Estimate(d.l.DataDir(), dir, backup.Strategy(d.cfg.BackupMode), nil)
	if err != nil {
		d.add(levelWarn, "cannot estimate the backup: %v", err)
		return
	}
	if err := sp.Err(); err != nil {
		if d.cfg.BackupIfNoSpace == "skip" {
			d.add(levelWarn, "%v: with %s=skip the upgrade will go on WITHOUT a backup", err, config.EnvBackupIfNoSpace)
		} else {
			d.add(levelFail, "%v: the upgrade will wait at the halt until there is room (or set %s=skip)", err, config.EnvBackupIfNoSpace)
		}
		return
	}
	why := ""
	if same, err := sameFS(dl.Real, dir); err == nil && !same {
		// The usual cost of data/ on its own volume with backups in the home.
		why = fmt.Sprintf(" (the data at %s is on another filesystem: reflinks and hard links are impossible, the backup is a full copy)", dl.Real)
	}
	d.add(levelOK, "backup directory %s: writable, %s strategy%s needs about %s, %s free", dir, sp.Strategy, why, humanBytes(int64(sp.Need)), humanBytes(int64(sp.Free)))
}

func (d *doctor) preupgradeScript() {
	if d.cfg.CustomPreupgrade == "" {
		return
	}
	path := filepath.Join(d.l.Root(), d.cfg.CustomPreupgrade)
	if err := binfile.Check(path); err != nil {
		d.add(levelFail, "%s: %v: every upgrade will fail at the halt", config.EnvCustomPreupgrade, err)
		return
	}
	d.add(levelOK, "%s %s is a program", config.EnvCustomPreupgrade, path)
}

// staged checks every upgrades/<dir>/bin/<name>. Upgrades already behind the
// installed one only warn: they run again only if an operator rolls back.
func (d *doctor) staged(in layout.Installed, haveCurrent bool) {
	for _, s := range stagedUpgrades(d.l) {
		if haveCurrent && s.dir == in.Upgrade {
			continue // checked as the current binary
		}
		level := levelFail
		if s.marker != nil && haveCurrent && in.Marker != nil && s.marker.Height <= in.Marker.Height {
			level = levelWarn
		}
		where := "upgrades/" + s.dir
		if d.l.Recase && s.dir != strings.ToLower(s.dir) {
			d.add(levelWarn, "%s can never be used: plan names are lowercased (%s is off), so a plan %q looks for upgrades/%s; rename the directory",
				where, config.EnvDisableRecase, s.dir, strings.ToLower(s.dir))
			continue
		}
		if err := s.err; err != nil {
			msg := err.Error()
			if errors.Is(err, binfile.ErrNotExecutable) {
				msg += "; vigil adds the execute bits at the halt if it may, but the binary cannot be verified until then: chmod +x it"
			}
			d.add(level, "%s: %s", where, msg)
			continue
		}
		if v, err := d.version(s.bin); err != nil {
			d.add(level, "%s: %v", where, err)
		} else {
			d.add(levelOK, "%s: %s runs: %s", where, s.bin, v)
		}
	}
}

// plan explains what vigil will do with data/upgrade-info.json, with the
// rules the reactor uses.
func (d *doctor) plan() {
	p := pendingPlan(d.l)
	if p == nil {
		d.add(levelOK, "no %s: no upgrade pending", d.l.UpgradeInfoFile())
		return
	}
	switch p.State {
	case planInvalid:
		d.add(levelWarn, "%s: %s: vigil waits for a valid file (the node may be writing it)", p.File, p.Reason)
	case planUnreadable:
		d.add(levelFail, "%s cannot be read: %s: vigil cannot see the upgrade", p.File, p.Reason)
	case planRefused:
		d.add(levelFail, "upgrade-info.json names %q: %s: vigil refuses it and the node stays halted", p.Name, p.Reason)
	case planBlocked:
		d.add(levelFail, "upgrade %s at height %d cannot be decided: %s", p.Name, p.Height, p.Reason)
	case planApplied:
		d.add(levelOK, "upgrade %s at height %d is applied", p.Name, p.Height)
	case planOlder:
		d.add(levelWarn, "upgrade-info.json names %s: %s: vigil ignores it", p.Name, p.Reason)
	case planPending:
		d.pending(p)
	}
}

func (d *doctor) pending(p *pendingReport) {
	what := fmt.Sprintf("pending upgrade %s at height %d", p.Name, p.Height)
	if p.BinaryOK {
		if v, err := d.version(p.Binary); err != nil {
			d.add(levelFail, "%s: %v", what, err)
		} else {
			d.add(levelOK, "%s: %s is ready (%s)", what, p.Binary, v)
		}
		return
	}
	if _, err := os.Stat(p.Binary); err == nil {
		d.add(levelFail, "%s: %s", what, p.BinaryError) // staged() said what is wrong with it too
		return
	}
	// A directory that differs only in case is the classic halt (cosmos-sdk#12915).
	if ents, err := os.ReadDir(d.l.UpgradesDir()); err == nil {
		for _, e := range ents {
			if e.Name() != p.Dir && strings.EqualFold(e.Name(), p.Dir) {
				rule := "names are lowercased"
				if !d.l.Recase {
					rule = config.EnvDisableRecase + " is on: the case is kept"
				}
				d.add(levelFail, "%s: vigil looks for upgrades/%s (%s) but only upgrades/%s exists: at the halt it will not find the binary; rename the directory",
					what, p.Dir, rule, e.Name())
				return
			}
		}
	}
	if d.cfg.AllowDownload {
		d.add(levelWarn, "%s: %s is not staged; vigil will download it (%s): stage it now to not depend on the network at the halt", what, p.Binary, config.EnvAllowDownload)
		return
	}
	d.add(levelFail, "%s: %s is missing and downloads are off: at the halt the node stays down until it is put there", what, p.Binary)
}
