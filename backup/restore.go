package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/internal/atomicfile"
)

// PrivvalFile is CometBFT's last-signed state, inside data/.
const PrivvalFile = "priv_validator_state.json"

// Restored describes a finished Restore.
type Restored struct {
	Manifest Manifest // of the backup restored
	Data     string   // the data directory written (symlinks resolved)
	Replaced string   // where the previous data directory went; "" if there was none
	Strategy Strategy
	Files    int
	Bytes    int64
	// PrivvalKept is set when the live priv_validator_state.json was ahead
	// of the backup's and was kept.
	PrivvalKept bool
	Took        time.Duration
}

// Restore replaces dataDir with the backup at backupPath. When dataDir is a
// symlink, the link is kept and the directory it points to is replaced, on
// its own filesystem; a dangling link, or a link to the root of a mounted
// filesystem, is refused. The backup is
// copied (with the strategy Auto picks, the manifest left out) into a new
// directory beside dataDir, the live priv_validator_state.json is carried
// over if it is ahead, then dataDir is renamed to "<dataDir>.replaced-<UTC
// time>" and the copy renamed into its place. The backup itself is not
// changed. On any failure before the swap, dataDir is untouched; if the
// second rename fails, the first is undone.
//
// The caller makes sure nothing uses dataDir (the node is stopped).
func Restore(ctx context.Context, backupPath, dataDir string, log *slog.Logger) (res Restored, err error) {
	start := time.Now()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := ReadManifest(backupPath)
	if err != nil {
		return res, fmt.Errorf("%s is not a complete vigil backup: %w", backupPath, err)
	}
	// A data/ that is a symlink (to a bigger disk) stays one: its target is
	// swapped, beside itself, on the data volume. A dangling link is refused
	// (ResolveData): restoring "into" it would put a directory on the home's
	// volume in place of the link.
	dl, err := ResolveData(dataDir)
	if err != nil {
		return res, err
	}
	real := dl.Real
	if dl.MountRoot {
		// A mount point cannot be renamed, and a copy beside it would land
		// on the parent filesystem: swapping its content instead would be
		// many renames, not one, and a crash among them would mix two
		// versions of the databases.
		return res, fmt.Errorf("%s is the root of a mounted filesystem: it cannot be moved aside in one rename; "+
			"restore by hand (move its content into a subdirectory, then copy %s into it), or point %s at a directory inside that filesystem", real, backupPath, dataDir)
	}
	parent := filepath.Dir(real)
	stamp := start.UTC().Format("20060102T150405Z")
	tmp := real + ".restoring-" + stamp
	replaced := real + ".replaced-" + stamp

	sp, err := Estimate(backupPath, parent, Auto, log)
	if err != nil {
		return res, err
	}
	if err := sp.Err(); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	e := &engine{strategy: sp.Strategy, log: log}
	stop := e.progress(log, "restore progress", start, 0)
	err = e.tree(ctx, backupPath, tmp, ManifestFile, nil)
	stop()
	if err != nil {
		return res, fmt.Errorf("copy %s to %s: %w", backupPath, tmp, err)
	}
	kept, err := keepNewerPrivval(filepath.Join(real, PrivvalFile), filepath.Join(tmp, PrivvalFile))
	if err != nil {
		return res, err
	}
	if err := syncfs(tmp); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	res = Restored{Manifest: m, Data: real, Strategy: sp.Strategy, Files: int(e.files.Load()), Bytes: e.bytes.Load(), PrivvalKept: kept}
	if res.Replaced, err = swapIn(tmp, real, replaced); err != nil {
		return Restored{}, err
	}
	if err := atomicfile.SyncDir(parent); err != nil {
		return res, err
	}
	res.Took = time.Since(start)
	log.Info("restore complete", "backup", backupPath, "data", real, "replaced", res.Replaced, "strategy", res.Strategy, "files", res.Files, "bytes", res.Bytes, "took", res.Took)
	return res, nil
}

// signState is the part of CometBFT's FilePVLastSignState that orders
// signatures. Height is a JSON string (amino's int64); round and step are
// numbers; both forms are accepted for each.
type signState struct{ height, round, step int64 }

func (a signState) after(b signState) bool {
	if a.height != b.height {
		return a.height > b.height
	}
	if a.round != b.round {
		return a.round > b.round
	}
	return a.step > b.step
}

func readSignState(path string) (signState, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return signState{}, nil, err
	}
	var raw struct{ Height, Round, Step json.RawMessage }
	if err := json.Unmarshal(b, &raw); err != nil {
		return signState{}, b, fmt.Errorf("%s: %w", path, err)
	}
	var s signState
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *int64
	}{{"height", raw.Height, &s.height}, {"round", raw.Round, &s.round}, {"step", raw.Step, &s.step}} {
		v := bytes.Trim(f.raw, `"`)
		if len(v) == 0 {
			continue // absent: CometBFT's zero value
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return signState{}, b, fmt.Errorf("%s: %s %s: %w", path, f.name, f.raw, err)
		}
		*f.dst = n
	}
	return s, b, nil
}

// keepNewerPrivval puts the live sign state into the restored directory when
// it is ahead (or the backup has none): signing again at a height, round and
// step already signed is how a validator double-signs.
func keepNewerPrivval(live, restored string) (bool, error) {
	ls, lb, err := readSignState(live)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot read the live %s, so cannot tell whether the backup's is behind; not restoring: %w", PrivvalFile, err)
	}
	rs, _, rerr := readSignState(restored)
	if rerr == nil && !ls.after(rs) {
		return false, nil
	}
	st, err := os.Stat(live)
	if err != nil {
		return false, err
	}
	if err := atomicfile.WriteFile(restored, lb, st.Mode().Perm()); err != nil {
		return false, err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		// The node, not root, must be able to rewrite it.
		if err := os.Lchown(restored, int(sys.Uid), int(sys.Gid)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// swapIn moves real (if any) aside to replaced and tmp into its place; on
// failure the old data is put back. It returns where the old data went (""
// if there was none).
func swapIn(tmp, real, replaced string) (string, error) {
	moved := ""
	if _, err := os.Lstat(real); err == nil {
		if err := os.Rename(real, replaced); err != nil {
			return "", fmt.Errorf("move %s aside: %w", real, err)
		}
		moved = replaced
	}
	if err := os.Rename(tmp, real); err != nil {
		if moved != "" {
			if uerr := os.Rename(replaced, real); uerr != nil {
				return "", fmt.Errorf("put %s in place: %w; and moving the old data back failed too (%v): it is at %s", tmp, err, uerr, replaced)
			}
		}
		return "", fmt.Errorf("put %s in place: %w", tmp, err)
	}
	return moved, nil
}
