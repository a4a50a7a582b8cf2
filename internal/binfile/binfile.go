// Package binfile checks that a file is a program this machine can run:
// a regular, executable file and, on Linux, an ELF binary for this
// architecture. Upgrade binaries are checked before they are installed
// (downloads) and before an upgrade height (doctor, status), so a wrong
// file is reported while the node still runs, not at the halt.
package binfile

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

// machines maps GOARCH to the ELF machine and class it runs.
var machines = map[string]struct {
	machine elf.Machine
	class   elf.Class
}{
	"amd64":   {elf.EM_X86_64, elf.ELFCLASS64},
	"arm64":   {elf.EM_AARCH64, elf.ELFCLASS64},
	"386":     {elf.EM_386, elf.ELFCLASS32},
	"arm":     {elf.EM_ARM, elf.ELFCLASS32},
	"riscv64": {elf.EM_RISCV, elf.ELFCLASS64},
	"ppc64le": {elf.EM_PPC64, elf.ELFCLASS64},
	"s390x":   {elf.EM_S390, elf.ELFCLASS64},
}

// ErrNotExecutable is returned for a regular file without an execute bit.
var ErrNotExecutable = errors.New("not executable")

// Check returns nil if path is a regular executable file that this machine
// can run. Scripts (#!) are accepted: pre-upgrade hooks may be scripts and
// an operator may wrap the node in one.
func Check(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s: %w (mode %s)", path, ErrNotExecutable, fi.Mode().Perm())
	}
	return CheckFormat(path)
}

// CheckFormat checks only the content: an ELF binary for this OS and
// architecture, or a script. It ignores the mode, so a download can be
// checked before it is made executable.
func CheckFormat(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return fmt.Errorf("%s is not a program: %d-byte file", path, sizeOf(f))
	}
	if magic[0] == '#' && magic[1] == '!' {
		return nil
	}
	if string(magic[:]) != elf.ELFMAG {
		if runtime.GOOS == "linux" {
			return fmt.Errorf("%s is not a Linux program (no ELF header; an archive, an HTML error page or a binary for another OS?)", path)
		}
		return nil // Mach-O and friends: the OS will say when it runs it
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("%s: bad ELF file: %w", path, err)
	}
	want, known := machines[runtime.GOARCH]
	if !known {
		return nil
	}
	if ef.Machine != want.machine || ef.Class != want.class {
		return fmt.Errorf("%s is built for %s %s, this machine is %s/%s", path, ef.Class, ef.Machine, runtime.GOOS, runtime.GOARCH)
	}
	if ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN {
		return fmt.Errorf("%s is an ELF %s, not an executable", path, ef.Type)
	}
	return nil
}

func sizeOf(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}
