package inspect

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/home"
)

// Doctor checks, before an upgrade height, what would make the upgrade go
// wrong at the halt: one finding per fact, OK, WARN or FAIL. It judges a
// Report; the only thing it runs is `<bin> version`, through the function
// it is given.

// Level is how bad a finding is.
type Level string

// Levels of a Finding.
const (
	OK   Level = "OK"
	Warn Level = "WARN"
	Fail Level = "FAIL"
)

// Finding is one line of doctor.
type Finding struct {
	Level Level
	Msg   string
}

func finding(level Level, format string, args ...any) Finding {
	return Finding{level, fmt.Sprintf(format, args...)}
}

// Failed reports whether any finding is a FAIL: the upgrade would fail.
func Failed(fs []Finding) bool {
	for _, f := range fs {
		if f.Level == Fail {
			return true
		}
	}
	return false
}

// Diagnose judges r (built with Options.Checks) in the order an operator
// reads: the home, current, data/, backups, the hook, staged binaries, the
// plan, the scheduled upgrades, the shared libraries of the binaries. version runs `<bin> version`; each binary is asked once.
func Diagnose(r Report, version func(bin string) (string, error)) []Finding {
	if r.RootErr != nil {
		return []Finding{finding(Fail, "%s is not a directory: not a cosmovisor/vigil home; %s", r.Layout.Root(), config.InitHint)}
	}
	version = VersionCache(version)
	out := CheckCurrent(r, version)
	out = append(out, CheckData(r)...)
	out = append(out, CheckBackupDir(r)...)
	out = append(out, CheckPreupgrade(r)...)
	out = append(out, CheckStaged(r, version)...)
	out = append(out, CheckPlan(r, version)...)
	out = append(out, CheckScheduled(r)...)
	return append(out, CheckLibs(r)...)
}

// CheckCurrent judges the `current` link, the installed marker and the
// running version's binary.
func CheckCurrent(r Report, version func(string) (string, error)) []Finding {
	var out []Finding
	c := r.Current
	if c.Missing {
		out = append(out, finding(Warn, "%s does not exist: `vigil run` creates it pointing at genesis", r.Layout.Current()))
	}
	if c.Err != nil {
		if !errors.Is(c.Err, home.ErrNoCurrent) {
			out = append(out, finding(Fail, "%v: vigil will not start", c.Err))
		}
		return out
	}
	if filepath.IsAbs(c.Link) {
		out = append(out, finding(Warn, "current -> %s is an absolute link: it breaks when the home is mounted at another path (vigil writes relative links at the next upgrade)", c.Link))
	} else {
		out = append(out, finding(OK, "current -> %s (relative, resolves)", c.Link))
	}
	if c.Foreign {
		out = append(out, finding(Warn, "current -> %s is outside %s: vigil runs it, but it is neither genesis nor an upgrade directory, so vigil cannot tell its version", c.Dir, r.Layout.Root()))
	}
	if c.MarkerError != "" {
		out = append(out, finding(Fail, "the marker of the installed version is unreadable (%s): vigil will not apply any upgrade-info.json until it is fixed", c.MarkerError))
	}
	if c.BinErr != nil {
		return append(out, finding(Fail, "current binary: %v: the node cannot start", c.BinErr))
	}
	v, err := version(c.Bin)
	if err != nil {
		return append(out, finding(Fail, "current binary: %v", err))
	}
	return append(out, finding(OK, "current binary %s: %s", c.Bin, v))
}

// CheckData says how data/ is laid out: a symlink to another volume is
// common, and decides which backup strategies are possible.
func CheckData(r Report) []Finding {
	c := r.Checks
	if c == nil {
		return nil
	}
	dir := r.Layout.DataDir()
	var dangling *backup.DanglingError
	switch {
	case errors.As(c.DataErr, &dangling):
		return []Finding{finding(Fail, "data/ -> %s: the link dangles (is the data volume mounted?): `vigil run` refuses to start and no backup can be taken", dangling.Link)}
	case c.DataErr != nil:
		return []Finding{finding(Fail, "data directory: %v: `vigil run` refuses to start", c.DataErr)}
	case !c.Data.Exists:
		return []Finding{finding(Fail, "data directory %s does not exist: `vigil run` refuses to start", dir)}
	}
	var out []Finding
	if !c.Data.IsLink() {
		out = append(out, finding(OK, "data directory %s exists", dir))
	} else {
		where := "on the same filesystem as $DAEMON_HOME"
		if c.DataOtherFS {
			where = "on another filesystem than $DAEMON_HOME"
		}
		out = append(out, finding(OK, "data/ -> %s (symlink, %s): backups and restores use %s, the link is kept", c.Data.Real, where, c.Data.Real))
	}
	if c.Data.MountRoot {
		out = append(out, finding(Warn, "%s is the root of a mounted filesystem: `vigil backup restore` cannot move it aside and refuses; point data/ at a directory inside that filesystem to be able to restore", c.Data.Real))
	}
	return out
}

// CheckBackupDir judges whether the backup taken at the halt can be written
// and will fit, with the estimate the backup itself makes before the stop.
func CheckBackupDir(r Report) []Finding {
	c, o := r.Checks, r.Options
	switch {
	case c == nil:
		return nil
	case o.SkipBackup:
		return []Finding{finding(Warn, "%s is set: no backup of data/ is taken before an upgrade; a failed migration cannot be rolled back", config.EnvSkipBackup)}
	case c.BackupDirErr != nil:
		return []Finding{finding(Fail, "backup directory: %v: vigil will not start (%s)", c.BackupDirErr, config.EnvBackupDir)}
	case c.BackupDirNotDir:
		return []Finding{finding(Fail, "backup directory %s is not a directory (%s)", o.BackupDir, config.EnvBackupDir)}
	case c.BackupDirAccess != nil:
		return []Finding{finding(Fail, "backup directory %s is not writable by this user (%v): the backup at the halt will fail and the upgrade with it", o.BackupDir, c.BackupDirAccess)}
	case c.SpaceErr != nil:
		return []Finding{finding(Warn, "cannot estimate the backup: %v", c.SpaceErr)}
	case c.Space == nil:
		return nil // no data/: CheckData says so
	}
	sp := c.Space
	if err := sp.Err(); err != nil {
		if o.BackupSkipNoRoom {
			return []Finding{finding(Warn, "%v: with %s=skip the upgrade will go on WITHOUT a backup", err, config.EnvBackupIfNoSpace)}
		}
		return []Finding{finding(Fail, "%v: the upgrade will wait at the halt until there is room (or set %s=skip)", err, config.EnvBackupIfNoSpace)}
	}
	why := ""
	if c.BackupOtherFS {
		// The usual cost of data/ on its own volume with backups in the home.
		why = fmt.Sprintf(" (the data at %s is on another filesystem: reflinks and hard links are impossible, the backup is a full copy)", c.Data.Real)
	}
	return []Finding{finding(OK, "backup directory %s: writable, %s strategy%s needs about %s, %s free",
		o.BackupDir, sp.Strategy, why, backup.HumanBytes(int64(sp.Need)), backup.HumanBytes(int64(sp.Free)))}
}

// CheckPreupgrade judges COSMOVISOR_CUSTOM_PREUPGRADE: every upgrade runs it.
func CheckPreupgrade(r Report) []Finding {
	c := r.Checks
	switch {
	case c == nil || c.Preupgrade == "":
		return nil
	case c.PreupgradeErr != nil:
		return []Finding{finding(Fail, "%s: %v: every upgrade will fail at the halt", config.EnvCustomPreupgrade, c.PreupgradeErr)}
	}
	return []Finding{finding(OK, "%s %s is a program", config.EnvCustomPreupgrade, c.Preupgrade)}
}

// CheckStaged judges every upgrades/<dir>/bin/<name>. Upgrades already
// behind the installed one only warn: they run again only if an operator
// rolls back.
func CheckStaged(r Report, version func(string) (string, error)) []Finding {
	var out []Finding
	cur := r.Current
	for _, s := range r.Staged {
		if s.Current {
			continue // checked as the current binary
		}
		level := Fail
		if s.Marker != nil && cur.Err == nil && cur.Marker != nil && s.Marker.Height <= cur.Marker.Height {
			level = Warn
		}
		where := "upgrades/" + s.Dir
		if r.Layout.Recase && s.Dir != strings.ToLower(s.Dir) {
			out = append(out, finding(Warn, "%s can never be used: plan names are lowercased (%s is off), so a plan %q looks for upgrades/%s; rename the directory",
				where, config.EnvDisableRecase, s.Dir, strings.ToLower(s.Dir)))
			continue
		}
		if s.Err != nil {
			msg := s.Err.Error()
			if errors.Is(s.Err, home.ErrNotExecutable) {
				msg += "; vigil adds the execute bits at the halt if it may, but the binary cannot be verified until then: chmod +x it"
			}
			out = append(out, finding(level, "%s: %s", where, msg))
			continue
		}
		if v, err := version(s.Bin); err != nil {
			out = append(out, finding(level, "%s: %v", where, err))
		} else {
			out = append(out, finding(OK, "%s: %s runs: %s", where, s.Bin, v))
		}
	}
	return out
}
