package binfile

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// foreignELF is this test binary's own header with the machine field changed.
func foreignELF(t *testing.T) []byte {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	// e_machine is at offset 18 in both ELF classes; 0x28 is ARM (or x86-64 on ARM hosts).
	m := uint16(0x28)
	if binary.LittleEndian.Uint16(b[18:]) == m {
		m = 0x3e
	}
	binary.LittleEndian.PutUint16(b[18:], m)
	return b
}

func TestCheck(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	selfBytes, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"own binary", self, ""},
		{"script", write(t, "s", []byte("#!/bin/sh\nexit 0\n"), 0o755), ""},
		{"not executable", write(t, "n", selfBytes, 0o644), "not executable"},
		{"html page", write(t, "h", []byte("<html>404</html>"), 0o755), "not a Linux program"},
		{"tiny", write(t, "t", []byte("x"), 0o755), "not a program: 1-byte file"},
		{"other arch", write(t, "a", foreignELF(t), 0o755), "is built for"},
		{"directory", t.TempDir(), "not a regular file"},
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.path)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Check = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}
