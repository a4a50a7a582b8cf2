package plan

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	good := `{"name":"v2","height":100}`
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(path("plain"), []byte(good), 0o600))
	must(os.Symlink("plain", path("link-to-plain")))
	must(syscall.Mkfifo(path("fifo"), 0o600))
	must(os.Symlink("/dev/zero", path("zero")))
	must(os.Mkdir(path("dir"), 0o755))
	must(os.WriteFile(path("big"), []byte(strings.Repeat(" ", MaxSize)+good), 0o600))
	must(os.WriteFile(path("max"), []byte(good+strings.Repeat(" ", MaxSize-len(good))), 0o600))

	tests := []struct {
		name    string
		wantErr error  // nil = the content is returned
		says    string // part of the message
	}{
		{"plain", nil, ""},
		{"link-to-plain", nil, ""},
		{"max", nil, ""},
		// Opening a FIFO without O_NONBLOCK waits for a writer for ever.
		{"fifo", ErrNotRegular, "named pipe"},
		// Reading /dev/zero never ends.
		{"zero", ErrNotRegular, "character device"},
		{"dir", ErrNotRegular, "directory"},
		{"big", ErrTooLarge, "bytes"},
		{"missing", fs.ErrNotExist, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Read(path(tt.name))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if p, err := Parse(b); err != nil || p.Name != "v2" {
					t.Fatalf("Parse(Read) = %+v, %v", p, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Read err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), tt.name) {
				t.Fatalf("Read err = %q: want it to name the file and say %q", err, tt.says)
			}
		})
	}
}
