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
		{"truncated header", write(t, "th", selfBytes[:12], 0o755), "bad ELF file: short header"},
		{"unknown class", write(t, "uc", patched(selfBytes, 4, 9), 0o755), "bad ELF file: unknown class 9"},
		{"unknown encoding", write(t, "ue", patched(selfBytes, 5, 7), 0o755), "bad ELF file: unknown data encoding 7"},
		{"unknown version", write(t, "uv", patched(selfBytes, 6, 2), 0o755), "bad ELF file: unknown version"},
		{"other class", write(t, "oc", patched(selfBytes, 4, 3-selfBytes[4]), 0o755), "is built for"},
		{"other byte order", write(t, "bo", patched(selfBytes, 5, 3-selfBytes[5]), 0o755), "is built for"},
		{"object file", write(t, "o", patched(selfBytes, 16, 1), 0o755), "is an ELF ET_REL, not an executable"},
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

// patched is a copy of b with b[i] = v.
func patched(b []byte, i int, v byte) []byte {
	c := append([]byte(nil), b...)
	c[i] = v
	return c
}
