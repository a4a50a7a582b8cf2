package binfile

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/testutil"
)

func findLib(libs Libs, name string) *Lib {
	for i := range libs.Libs {
		if libs.Libs[i].Name == name {
			return &libs.Libs[i]
		}
	}
	return nil
}

func TestResolveLibs(t *testing.T) {
	dir := t.TempDir()
	libDir := filepath.Join(dir, "lib")
	bin := filepath.Join(dir, "simd")
	testutil.DynamicBin(t, bin)
	sys := SystemSearch()
	sys.LibraryPath = []string{libDir}

	// As shipped: everything is found through the system.
	libs, err := ResolveLibs(bin, sys)
	if err != nil {
		t.Fatal(err)
	}
	libc := findLib(libs, "libc.so.6")
	if !libs.Dynamic || libs.InterpMissing || libc == nil || libc.Path == "" || len(libs.Missing()) > 0 {
		t.Fatalf("system binary: %+v", libs)
	}
	if strings.HasPrefix(libc.Path, libDir) {
		t.Fatalf("libc found in the empty lib/: %s", libc.Path)
	}

	// It needs libq.so.6, which exists nowhere: missing, with where it was looked for.
	testutil.PatchNeeded(t, bin, "libc.so.6", "libq.so.6")
	libs, err = ResolveLibs(bin, sys)
	if err != nil {
		t.Fatal(err)
	}
	miss := libs.Missing()
	if len(miss) != 1 || miss[0].Name != "libq.so.6" || miss[0].By != bin {
		t.Fatalf("patched binary: missing %+v", miss)
	}
	if s := miss[0].Searched; len(s) < 2 || s[0] != libDir || (sys.Cache != nil && !slices.Contains(s, LdCacheFile)) {
		t.Errorf("searched %q: want lib/ first and the cache", s)
	}

	// A file of that name that is not a library of this machine is skipped.
	must(t, os.MkdirAll(libDir, 0o755))
	must(t, os.WriteFile(filepath.Join(libDir, "libq.so.6"), []byte("#!/bin/sh\n"), 0o755))
	if libs, _ := ResolveLibs(bin, sys); len(libs.Missing()) != 1 {
		t.Fatalf("a script named libq.so.6 counts as the library: %+v", libs)
	}

	// The version's lib/ provides it (libc renamed): found there, and its
	// own needs (the loader) through the system.
	b, err := os.ReadFile(libc.Path)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(libDir, "libq.so.6"), b, 0o755))
	libs, err = ResolveLibs(bin, sys)
	if err != nil {
		t.Fatal(err)
	}
	if q := findLib(libs, "libq.so.6"); q == nil || q.Path != filepath.Join(libDir, "libq.so.6") || len(libs.Missing()) > 0 {
		t.Fatalf("lib/ provides libq.so.6: %+v", libs)
	}
	if len(libs.Libs) < 2 {
		t.Errorf("libq.so.6's own needs were not followed: %+v", libs.Libs)
	}
}

func TestResolveLibsNothingToLoad(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	must(t, os.WriteFile(script, []byte("#!/bin/sh\nexec simd \"$@\"\n"), 0o755))
	static := ""
	if p, err := exec.LookPath("go"); err == nil { // the go command is a static binary
		if f, err := elf.Open(p); err == nil {
			if !slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_DYNAMIC }) {
				static = p
			}
			f.Close()
		}
	}
	for _, bin := range []string{script, static} {
		if bin == "" {
			continue
		}
		libs, err := ResolveLibs(bin, Search{})
		if err != nil || libs.Dynamic || len(libs.Libs) > 0 {
			t.Errorf("%s: %+v, %v: want nothing to load", bin, libs, err)
		}
	}
}

func TestSplitPath(t *testing.T) {
	got := SplitPath("$ORIGIN/../lib::/opt/x;${ORIGIN}", "/h/bin")
	want := []string{"/h/bin/../lib", "/opt/x", "/h/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("SplitPath = %q, want %q", got, want)
	}
}

func TestReadLdConf(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "ld.so.conf.d")
	must(t, os.MkdirAll(d, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "ld.so.conf"), []byte("# comment\ninclude ld.so.conf.d/*.conf\n/opt/a # trailing\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(d, "b.conf"), []byte("/opt/b\n\n/opt/c:/opt/d\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(d, "a.conf"), []byte("/opt/e\ninclude "+filepath.Join(dir, "ld.so.conf")+"\n"), 0o644))
	got := ReadLdConf(filepath.Join(dir, "ld.so.conf"))
	want := []string{"/opt/e", "/opt/b", "/opt/c", "/opt/d", "/opt/a"}
	if !slices.Equal(got, want) {
		t.Errorf("ReadLdConf = %q, want %q", got, want)
	}
	if got := ReadLdConf(filepath.Join(dir, "absent")); got != nil {
		t.Errorf("absent file: %q", got)
	}
}

// newCache writes a new-format ld.so.cache of entries (name, path), in order.
func newCache(order binary.ByteOrder, entries [][2]string) []byte {
	head := make([]byte, cacheHeadNew)
	copy(head, cacheMagicNew)
	order.PutUint32(head[20:], uint32(len(entries)))
	if order == binary.BigEndian {
		head[28] = 3
	} else {
		head[28] = 2
	}
	strOff := cacheHeadNew + len(entries)*cacheEntryNew
	var strs []byte
	body := make([]byte, 0, len(entries)*cacheEntryNew)
	for _, e := range entries {
		ent := make([]byte, cacheEntryNew)
		order.PutUint32(ent[0:], 0x303)
		order.PutUint32(ent[4:], uint32(strOff+len(strs)))
		strs = append(strs, e[0]+"\x00"...)
		order.PutUint32(ent[8:], uint32(strOff+len(strs)))
		strs = append(strs, e[1]+"\x00"...)
		body = append(body, ent...)
	}
	order.PutUint32(head[24:], uint32(len(strs)))
	return append(append(head, body...), strs...)
}

func TestParseLdCache(t *testing.T) {
	entries := [][2]string{{"libwasmvm.x86_64.so", "/usr/local/lib/libwasmvm.x86_64.so"}, {"libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"}, {"libc.so.6", "/lib32/libc.so.6"}}
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		b := newCache(order, entries)
		m, err := ParseLdCache(b)
		if err != nil {
			t.Fatalf("%v: %v", order, err)
		}
		if got := m["libc.so.6"]; !slices.Equal(got, []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib32/libc.so.6"}) {
			t.Errorf("%v: libc.so.6 -> %q", order, got)
		}
		if got := m["libwasmvm.x86_64.so"]; len(got) != 1 {
			t.Errorf("%v: libwasmvm -> %q", order, got)
		}
	}
	// Behind an old-format part, as glibc before 2.32 wrote it (one old entry).
	old := make([]byte, 16+cacheEntryOld)
	copy(old, cacheMagicOld)
	binary.NativeEndian.PutUint32(old[12:], 1)
	old = append(old, make([]byte, 4)...) // 28 -> 32: the new part is 8-aligned
	if m, err := ParseLdCache(append(old, newCache(binary.NativeEndian, entries)...)); err != nil || len(m) != 2 {
		t.Errorf("old+new: %v, %v", m, err)
	}
	// What it cannot read is an error, not a guess.
	good := newCache(binary.LittleEndian, entries)
	for name, b := range map[string][]byte{
		"empty":      nil,
		"other":      []byte("not a cache at all, but long enough to have a header of 48 bytes"),
		"old only":   old[:16],
		"truncated":  good[:cacheHeadNew+cacheEntryNew],
		"bad offset": append(append([]byte(nil), good[:cacheHeadNew]...), bytes.Repeat([]byte{0xff}, cacheEntryNew)...),
	} {
		if b != nil && name == "bad offset" {
			binary.LittleEndian.PutUint32(b[20:], 1)
		}
		if m, err := ParseLdCache(b); err == nil {
			t.Errorf("%s: parsed %v", name, m)
		}
	}
	// This system's cache, if it has one, lists libc.
	if b, err := os.ReadFile(LdCacheFile); err == nil && bytes.HasPrefix(b, []byte(cacheMagicNew)) {
		m, err := ParseLdCache(b)
		if err != nil || len(m["libc.so.6"]) == 0 {
			t.Errorf("%s: libc.so.6 -> %q, %v", LdCacheFile, m["libc.so.6"], err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
