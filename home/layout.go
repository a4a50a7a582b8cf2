// Package home is the one authority on a node home: cosmovisor's folder
// layout under $DAEMON_HOME and vigil's files in it, what is installed and
// what upgrade-info.json means against it (Decide), and which programs may
// run (CheckBinary). It keeps the `current` link and the per-upgrade markers
// consistent:
//
//	$DAEMON_HOME/cosmovisor/{genesis,upgrades/<dir>}/bin/$DAEMON_NAME
//	$DAEMON_HOME/cosmovisor/current -> genesis | upgrades/<dir>   (relative)
//	$DAEMON_HOME/cosmovisor/upgrades/<dir>/upgrade-info.json      (marker)
//	$DAEMON_HOME/cosmovisor/{genesis,upgrades/<dir>}/lib/         (LD_LIBRARY_PATH, ChildEnv)
//	$DAEMON_HOME/cosmovisor/vigil.lock, vigil.procs, vigil-status.json, vigil-batch.lock
//	$DAEMON_HOME/data/upgrade-info.json.batch                       (Schedule)
//	$DAEMON_DATA_BACKUP_DIR/data-backup-<dir>-<height>-<UTC time>
//
// `current` is only ever replaced atomically and always with a relative target,
// so a home bind-mounted at another path still resolves. Nothing here silently
// repairs an unexpected state: a `current` that is a real directory or a
// dangling link is an error for the operator to look at.
package home

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/vigilhq/vigil/internal/atomicfile"
	"github.com/vigilhq/vigil/plan"
)

// Layout names the paths of one node home.
type Layout struct {
	Home   string // $DAEMON_HOME, absolute
	Name   string // $DAEMON_NAME
	Recase bool   // lowercase upgrade names (cosmovisor's default)
}

func (l Layout) Root() string            { return filepath.Join(l.Home, "cosmovisor") }
func (l Layout) Current() string         { return filepath.Join(l.Root(), "current") }
func (l Layout) GenesisDir() string      { return filepath.Join(l.Root(), "genesis") }
func (l Layout) UpgradesDir() string     { return filepath.Join(l.Root(), "upgrades") }
func (l Layout) DataDir() string         { return filepath.Join(l.Home, "data") }
func (l Layout) UpgradeInfoFile() string { return filepath.Join(l.DataDir(), plan.FileName) }

// RunLock is held (flock) by `vigil run` for its lifetime: one vigil per
// home. Restore and status probe it.
func (l Layout) RunLock() string { return filepath.Join(l.Root(), "vigil.lock") }

// BatchLock serializes the read-modify-write of the batch file (Schedule,
// Unschedule) between processes: the CLI adding plans while the running
// vigil removes the one it promoted. Unlike RunLock it is taken by any
// command, and only for the length of one update.
func (l Layout) BatchLock() string { return filepath.Join(l.Root(), "vigil-batch.lock") }

// StatusFile is where a running vigil keeps its status for `vigil status`.
func (l Layout) StatusFile() string { return filepath.Join(l.Root(), "vigil-status.json") }

// BackupPrefix starts the name of every data backup, complete or partial.
const BackupPrefix = "data-backup-"

// BackupTimeLayout is the UTC time at the end of a backup's name.
const BackupTimeLayout = "20060102T150405Z"

// BackupName is the folder name of a backup of data/ taken for the upgrade
// in directory dir at height: upgrade, height and UTC time, so two upgrades
// on the same day never share a folder (cosmovisor's do).
func BackupName(dir string, height int64, at time.Time) string {
	return BackupNamePrefix(dir, height) + at.UTC().Format(BackupTimeLayout)
}

// BackupNamePrefix is what the names of all backups of one upgrade directory
// at one height start with.
func BackupNamePrefix(dir string, height int64) string {
	return fmt.Sprintf("%s%s-%d-", BackupPrefix, dir, height)
}

// ProcsFile records the processes a running vigil has started and not yet
// reaped (the node, a hook), beside the run lock, so that the next vigil can
// end what a killed one left behind.
func (l Layout) ProcsFile() string { return filepath.Join(l.Root(), "vigil.procs") }

// InferName is the daemon name a home implies when none is given (status,
// doctor): the one file in genesis/bin; an error when there is not exactly
// one.
func (l Layout) InferName() (string, error) {
	dir := filepath.Join(l.GenesisDir(), "bin")
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

// UpgradeDir is the absolute directory of the upgrade whose directory name is dir.
func (l Layout) UpgradeDir(dir string) string { return filepath.Join(l.UpgradesDir(), dir) }

// Bin is the daemon binary inside a version directory.
func (l Layout) Bin(versionDir string) string { return filepath.Join(versionDir, "bin", l.Name) }

// DirName maps a plan name to its directory name under upgrades/: lowercased
// unless recase is off, then path-escaped (as cosmovisor does). Names that
// would leave upgrades/ or cannot be a file name are refused.
func (l Layout) DirName(name string) (string, error) {
	if l.Recase {
		name = strings.ToLower(name)
	}
	if strings.TrimSpace(name) == "" {
		return "", errors.New("upgrade name is empty")
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("upgrade name %q contains control characters", name)
	}
	dir := url.PathEscape(name)
	if dir == "." || dir == ".." {
		return "", fmt.Errorf("upgrade name %q would resolve outside %s", name, l.UpgradesDir())
	}
	return dir, nil
}

// Installed is what `current` points at.
type Installed struct {
	Dir       string     // resolved absolute version directory
	Upgrade   string     // directory name under upgrades/, "" for genesis or elsewhere
	Marker    *plan.Plan // the plan recorded in Dir, nil if none
	MarkerErr error      // why an existing marker could not be read
}

// ErrNoCurrent means `current` does not exist yet (a fresh home).
var ErrNoCurrent = errors.New("current link does not exist")

// Installed resolves `current`.
func (l Layout) Installed() (Installed, error) {
	cur := l.Current()
	st, err := os.Lstat(cur)
	if errors.Is(err, fs.ErrNotExist) {
		return Installed{}, ErrNoCurrent
	}
	if err != nil {
		return Installed{}, fmt.Errorf("inspect %s: %w", cur, err)
	}
	if st.Mode()&fs.ModeSymlink == 0 {
		return Installed{}, fmt.Errorf("%s is a %s, not a symlink; vigil will not replace it: move it away and run `vigil init`, or make it a link to genesis or upgrades/<name>", cur, kind(st))
	}
	target, err := os.Readlink(cur)
	if err != nil {
		return Installed{}, fmt.Errorf("read link %s: %w", cur, err)
	}
	dir := target
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(l.Root(), dir)
	}
	dir = filepath.Clean(dir)
	if st, err := os.Stat(dir); err != nil {
		return Installed{}, fmt.Errorf("%s points to %s, which does not resolve: %w", cur, target, err)
	} else if !st.IsDir() {
		return Installed{}, fmt.Errorf("%s points to %s, which is not a directory", cur, target)
	}
	in := Installed{Dir: dir}
	if filepath.Dir(dir) == l.UpgradesDir() {
		in.Upgrade = filepath.Base(dir)
	}
	in.Marker, in.MarkerErr = ReadMarker(dir)
	return in, nil
}

// Foreign reports whether in is neither genesis nor a directory under
// upgrades/: `current` was pointed elsewhere by hand. vigil runs it, but
// cannot tell its version, and its binary and marker are outside what vigil
// manages and backs up.
func (l Layout) Foreign(in Installed) bool {
	return in.Upgrade == "" && in.Dir != l.GenesisDir()
}

func kind(st fs.FileInfo) string {
	if st.IsDir() {
		return "directory"
	}
	return "regular file"
}

// EnsureCurrent creates `current -> genesis` when no `current` exists. It
// reports whether it created the link.
func (l Layout) EnsureCurrent() (bool, error) {
	_, err := os.Lstat(l.Current())
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("inspect %s: %w", l.Current(), err)
	}
	if err := atomicfile.Symlink("genesis", l.Current()); err != nil {
		return false, err
	}
	return true, nil
}

// Switch points `current` at upgrades/<dir> atomically.
func (l Layout) Switch(dir string) error { return l.relink(filepath.Join("upgrades", dir)) }

// SwitchNoSync points `current` at upgrades/<dir> atomically but not yet
// durably; SyncRoot makes it durable. The upgrade's swap starts the new node
// in between: a power loss before the sync brings the old `current` back,
// and the plan, still pending in data/upgrade-info.json, is applied again at
// the next start. The marker, which must be durable before the switch, is
// written with WriteMarker first.
func (l Layout) SwitchNoSync(dir string) error {
	if err := l.checkRelink(); err != nil {
		return err
	}
	return atomicfile.ReplaceSymlink(filepath.Join("upgrades", dir), l.Current())
}

// SyncRoot makes the renames in cosmovisor/ (a SwitchNoSync) durable.
func (l Layout) SyncRoot() error { return atomicfile.SyncDir(l.Root()) }

// SwitchGenesis points `current` back at genesis atomically (restoring a
// backup taken before the first upgrade).
func (l Layout) SwitchGenesis() error { return l.relink("genesis") }

// relink replaces `current` with a link to target, relative to Root().
func (l Layout) relink(target string) error {
	if err := l.checkRelink(); err != nil {
		return err
	}
	return atomicfile.Symlink(target, l.Current())
}

// checkRelink refuses to replace a `current` that is not a symlink.
func (l Layout) checkRelink() error {
	if st, err := os.Lstat(l.Current()); err == nil && st.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("%s is a %s, not a symlink; refusing to replace it", l.Current(), kind(st))
	}
	return nil
}

// CleanTemps removes what a write of `current`, of a marker or of the batch
// killed half-way left behind (`.current.tmp-*`, `.vigil.procs.tmp-*`,
// `upgrades/<dir>/.upgrade-info.json.tmp-*`,
// `data/.upgrade-info.json.batch.tmp-*`).
// Only `vigil run` writes the first three, so it calls this once it holds
// the run lock; the batch is also written by the CLI, so its temporary files
// are removed under the batch lock, never under a running Schedule.
func (l Layout) CleanTemps(log *slog.Logger) error {
	paths := []string{l.Current(), l.ProcsFile()}
	ents, err := os.ReadDir(l.UpgradesDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			paths = append(paths, filepath.Join(l.UpgradeDir(e.Name()), plan.FileName))
		}
	}
	var errs []error
	for _, p := range paths {
		errs = append(errs, removeTemps(p, log))
	}
	errs = append(errs, l.withBatchLock(func() error { return removeTemps(l.BatchFile(), log) }))
	return errors.Join(errs...)
}

func removeTemps(path string, log *slog.Logger) error {
	removed, err := atomicfile.RemoveTemps(path)
	for _, r := range removed {
		log.Info("removed a temporary file left by an interrupted write", "path", r)
	}
	return err
}

// ReadMarker reads the plan recorded in a version directory; (nil, nil) when
// there is none.
func ReadMarker(versionDir string) (*plan.Plan, error) {
	p, err := plan.Load(filepath.Join(versionDir, plan.FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// WriteMarker records p in upgrades/<dir> (atomically, durably), with the
// name as it maps to the directory, as cosmovisor does.
func (l Layout) WriteMarker(dir string, p plan.Plan) error {
	if l.Recase {
		p.Name = strings.ToLower(p.Name)
	}
	return atomicfile.WriteFile(filepath.Join(l.UpgradeDir(dir), plan.FileName), p.Marshal(), 0o644)
}

// LibDir is the folder of shared libraries a version ships beside its
// binary (CosmWasm chains: libwasmvm*.so), as cosmovisor's layout allows.
func (l Layout) LibDir(versionDir string) string { return filepath.Join(versionDir, "lib") }

// ChildEnv returns the environment for a node (or its pre-upgrade hook) run
// from versionDir: env with versionDir/lib put first in LD_LIBRARY_PATH when
// that folder exists, so a binary whose libraries came with it in an archive
// finds them without the operator editing the unit. Without lib/ it returns
// env unchanged. env itself is never modified; when it sets LD_LIBRARY_PATH
// more than once, the last value counts (as for exec) and one entry remains.
// versionDir should be the resolved directory (Installed.Dir, or
// upgrades/<dir>), not the `current` link, so a running node keeps the
// libraries of its own version.
func (l Layout) ChildEnv(versionDir string, env []string) []string {
	lib := l.LibDir(versionDir)
	if st, err := os.Stat(lib); err != nil || !st.IsDir() {
		return env
	}
	const key = "LD_LIBRARY_PATH="
	old, out := "", make([]string, 0, len(env)+1)
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key); ok {
			old = v
			continue
		}
		out = append(out, kv)
	}
	val := lib
	if old == lib || strings.HasPrefix(old, lib+":") {
		val = old
	} else if old != "" {
		val = lib + ":" + old
	}
	return append(out, key+val)
}
