package inspect

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/backup"
	"github.com/vigilhq/vigil/home"
)

// Checks are the facts only doctor judges: how data/ is laid out, whether
// the backup at the halt can be written and will fit, the pre-upgrade
// script, the shared libraries of the binaries. Gathering them walks data/ (the backup estimate), which status
// has no reason to pay for.
type Checks struct {
	Data        backup.DataLayout
	DataErr     error // data/ cannot be resolved (*backup.DanglingError: a dangling link)
	DataOtherFS bool  // data/ links to another filesystem than $DAEMON_HOME

	// The backup directory, unless backups are off.
	BackupDirErr    error         // it cannot be stat'ed
	BackupDirNotDir bool          // it is not a directory
	BackupDirAccess error         // this user cannot write into it
	Space           *backup.Space // the estimate; nil when not made
	SpaceErr        error         // the estimate failed
	BackupOtherFS   bool          // data/ is on another filesystem than the backup directory

	Preupgrade    string // the pre-upgrade script's path; "" when none is set
	PreupgradeErr error  // home.Runnable of it

	// Libs are the shared libraries of the binaries that will run, by
	// binary path (libTargets); nil where the loader is not Linux's.
	Libs map[string]LibCheck
}

func gatherChecks(l home.Layout, o Options) *Checks {
	c := &Checks{}
	c.Data, c.DataErr = backup.ResolveData(l.DataDir())
	if c.DataErr == nil && c.Data.IsLink() {
		c.DataOtherFS = otherFS(c.Data.Real, l.Home)
	}
	if !o.SkipBackup {
		c.gatherBackupDir(l, o)
	}
	if o.CustomPreupgrade != "" {
		c.Preupgrade = filepath.Join(l.Root(), o.CustomPreupgrade)
		c.PreupgradeErr = home.Runnable(c.Preupgrade)
	}
	return c
}

// gatherBackupDir estimates the backup as the backup itself does before the
// stop.
func (c *Checks) gatherBackupDir(l home.Layout, o Options) {
	dir := o.BackupDir
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		c.BackupDirErr = err
		return
	case !st.IsDir():
		c.BackupDirNotDir = true
		return
	}
	if c.BackupDirAccess = unix.Access(dir, unix.W_OK|unix.X_OK); c.BackupDirAccess != nil {
		return
	}
	if c.DataErr != nil || !c.Data.Exists {
		return
	}
	sp, err := backup.Estimate(l.DataDir(), dir, o.BackupMode, nil)
	if err != nil {
		c.SpaceErr = err
		return
	}
	c.Space = &sp
	c.BackupOtherFS = otherFS(c.Data.Real, dir)
}

// otherFS is true when a and b are known to be on different filesystems.
func otherFS(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev != sb.Dev
}
