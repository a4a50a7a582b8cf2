package home

import (
	"fmt"
	"os"

	"github.com/vigilhq/vigil/internal/binfile"
)

// The rule for a program vigil may run (the node, an upgrade binary, a hook)
// lives here, once: a regular file whose content this machine can run. The
// format itself is binfile's to judge.

// ErrNotExecutable is Runnable's error for a file without an execute bit.
var ErrNotExecutable = binfile.ErrNotExecutable

// Runnable reports, without changing anything, why path cannot be run: for
// `vigil status` and `doctor`, which only look.
func Runnable(path string) error { return binfile.Check(path) }

// CheckFormat checks only the content (an ELF for this OS and architecture,
// or a script), for a download that is made executable afterwards.
func CheckFormat(path string) error { return binfile.CheckFormat(path) }

// CheckBinary is the one check of a program vigil is about to run (the node,
// an upgrade binary in prepare, a hook): a regular file whose content this
// machine can run (binfile.CheckFormat: an ELF for this OS and architecture,
// or a script). A file that passes but lacks execute bits gets them where
// read bits are set (cosmovisor makes binaries executable too; operators
// often forget chmod); garbage is never made executable. It reports whether
// it changed the mode.
func CheckBinary(path string) (chmodded bool, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() {
		return false, fmt.Errorf("%s is not a regular file", path)
	}
	if err := binfile.CheckFormat(path); err != nil {
		return false, err
	}
	mode := st.Mode().Perm()
	want := mode | (mode&0o444)>>2
	if want&0o100 == 0 {
		want |= 0o100
	}
	if want == mode {
		return false, nil
	}
	if err := os.Chmod(path, want); err != nil {
		return false, fmt.Errorf("make %s executable: %w", path, err)
	}
	return true, nil
}
