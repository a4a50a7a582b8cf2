// Package binfile checks that a file is a program this machine can run:
// a regular, executable file and, on Linux, an ELF binary for this
// architecture. Upgrade binaries are checked before they are installed
// (downloads) and before an upgrade height (doctor, status), so a wrong
// file is reported while the node still runs, not at the halt.
package binfile

import (
	"debug/elf"
	"encoding/binary"
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
	class, machine, typ, err := readHeader(f)
	if err != nil {
		return fmt.Errorf("%s: bad ELF file: %w", path, err)
	}
	want, known := machines[runtime.GOARCH]
	if !known {
		return nil
	}
	if machine != want.machine || class != want.class {
		return fmt.Errorf("%s is built for %s %s, this machine is %s/%s", path, class, machine, runtime.GOOS, runtime.GOARCH)
	}
	if typ != elf.ET_EXEC && typ != elf.ET_DYN {
		return fmt.Errorf("%s is an ELF %s, not an executable", path, typ)
	}
	return nil
}

// readHeader reads the fields of the ELF identification and header that say
// what machine runs the file. It reads them by hand: elf.NewFile parses
// every section and links DWARF and zstd support, 200 KB of vigil's binary
// for three numbers.
func readHeader(f io.ReaderAt) (elf.Class, elf.Machine, elf.Type, error) {
	var h [20]byte // e_ident[16], e_type, e_machine: the same offsets for both classes
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return 0, 0, 0, fmt.Errorf("short header: %w", err)
	}
	class := elf.Class(h[elf.EI_CLASS])
	if class != elf.ELFCLASS32 && class != elf.ELFCLASS64 {
		return 0, 0, 0, fmt.Errorf("unknown class %d", h[elf.EI_CLASS])
	}
	if v := elf.Version(h[elf.EI_VERSION]); v != elf.EV_CURRENT {
		return 0, 0, 0, fmt.Errorf("unknown version %d", v)
	}
	var order binary.ByteOrder
	switch elf.Data(h[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		order = binary.BigEndian
	default:
		return 0, 0, 0, fmt.Errorf("unknown data encoding %d", h[elf.EI_DATA])
	}
	return class, elf.Machine(order.Uint16(h[18:])), elf.Type(order.Uint16(h[16:])), nil
}

func sizeOf(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}
