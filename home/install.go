package home

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vigilhq/vigil/internal/atomicfile"
)

// ErrExists is returned (wrapped) when an install would replace a file and
// force was not given.
var ErrExists = errors.New("file already exists")

// InstallGenesis copies exe to genesis/bin/$DAEMON_NAME unless a binary is
// there already (it is never replaced), and checks what is there. It
// reports whether it copied.
func (l Layout) InstallGenesis(exe string) (bool, error) {
	bin := l.Bin(l.GenesisDir())
	copied := false
	if _, err := os.Stat(bin); errors.Is(err, fs.ErrNotExist) {
		if err := InstallBinary(exe, bin, false); err != nil {
			return false, err
		}
		copied = true
	}
	_, err := CheckBinary(bin)
	return copied, err
}

// InstallUpgrade copies exe to upgrades/<dir>/bin/$DAEMON_NAME for the
// upgrade called name, replacing a binary there only with force. It returns
// the directory name and the binary's path.
func (l Layout) InstallUpgrade(name, exe string, force bool) (dir, bin string, err error) {
	if dir, err = l.DirName(name); err != nil {
		return "", "", err
	}
	bin = l.Bin(l.UpgradeDir(dir))
	return dir, bin, InstallBinary(exe, bin, force)
}

// InstallBinary copies the program src to dst through a temporary file,
// fsynced and renamed (atomicfile.WriteFrom), so that a half-copied binary never shows under the
// real name (the reactor takes a binary's presence as "ready"). src must
// pass CheckFormat: a file this machine cannot run is refused here rather
// than at the upgrade height. An existing dst is replaced only with force.
func InstallBinary(src, dst string, force bool) error {
	if err := CheckFormat(src); err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil && !force {
		return fmt.Errorf("%w at %s", ErrExists, dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := atomicfile.WriteFrom(dst, in, 0o755); err != nil {
		return fmt.Errorf("install %s: %w", src, err)
	}
	return nil
}
