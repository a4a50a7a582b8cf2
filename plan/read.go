package plan

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxSize bounds what Read accepts. A plan is a name, a height and an info
// field of a few URLs; 1 MiB is generous, and it keeps a link to /dev/zero
// or a runaway writer from exhausting memory.
const MaxSize = 1 << 20

// ErrNotRegular means the path names a FIFO, a device, a directory or a
// socket: something that is not a plan and may never end or never answer.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge means the file is over MaxSize.
var ErrTooLarge = fmt.Errorf("larger than %d bytes", MaxSize)

// Read returns the content of the plan file at path, never blocking and never
// reading more than MaxSize: only a regular file (after following links) is
// read. Errors wrap fs.ErrNotExist, ErrNotRegular or ErrTooLarge where they
// apply, and name what was found.
func Read(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer, for ever, with vigil's signal handling stuck behind it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: it is a %s", path, ErrNotRegular, typeName(st.Mode()))
	}
	if st.Size() > MaxSize {
		return nil, fmt.Errorf("%s: %w (%d bytes)", path, ErrTooLarge, st.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > MaxSize { // grew between the stat and the read
		return nil, fmt.Errorf("%s: %w", path, ErrTooLarge)
	}
	return b, nil
}

// Load reads and parses the plan file at path.
func Load(path string) (Plan, error) {
	b, err := Read(path)
	if err != nil {
		return Plan{}, err
	}
	return Parse(b)
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return m.Type().String()
}
