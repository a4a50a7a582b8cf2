package testutil

import (
	"bytes"
	"debug/elf"
	"os"
	"runtime"
	"testing"
)

// DynamicBin copies a small dynamically linked system binary that needs
// libc.so.6 to dst (mode 0755); the test is skipped where there is none.
func DynamicBin(t testing.TB, dst string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the dynamic loader's search is Linux's")
	}
	for _, src := range []string{"/bin/true", "/usr/bin/true", "/bin/ls"} {
		b, err := os.ReadFile(src)
		if err != nil || !bytes.Contains(b, []byte("libc.so.6\x00")) {
			continue
		}
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil || f.SectionByType(elf.SHT_DYNAMIC) == nil {
			continue
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Skip("no dynamically linked glibc binary on this system")
}

// PatchNeeded renames the string from to to (same length) in bin's
// .dynstr, in place: with from a DT_NEEDED name, a binary that needs a
// library nobody has.
func PatchNeeded(t testing.TB, bin, from, to string) {
	t.Helper()
	if len(from) != len(to) {
		t.Fatal("the names must have the same length")
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	sec := f.Section(".dynstr")
	f.Close()
	if sec == nil {
		t.Fatal("no .dynstr")
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	tab := b[sec.Offset : sec.Offset+sec.Size]
	i := bytes.Index(tab, []byte("\x00"+from+"\x00"))
	if i < 0 {
		t.Fatalf("%q not in .dynstr of %s", from, bin)
	}
	copy(tab[i+1:], to)
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
