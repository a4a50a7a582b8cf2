package binfile

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// The dynamic loader's search, done without running the loader: a node
// whose libwasmvm is missing starts fine until the upgrade switches to it,
// then dies with "error while loading shared libraries" at the halt. Running
// the binary (or ldd, which runs the loader on it) would find out too, but
// doctor must not execute a binary just to learn what it links; reading the
// ELF file and looking where ld.so looks answers the same question.

// LdCacheFile is where glibc's ldconfig writes the library cache.
const LdCacheFile = "/etc/ld.so.cache"

// Search is where the loader looks for a binary's libraries, besides the
// binary's own DT_RPATH/DT_RUNPATH.
type Search struct {
	// LibraryPath is LD_LIBRARY_PATH as the node gets it: vigil puts the
	// version's lib/ first.
	LibraryPath []string
	// Cache maps a library name to its paths in /etc/ld.so.cache; nil when
	// the cache could not be read, and then ConfDirs stand in for it.
	Cache    map[string][]string
	ConfDirs []string // the directories of /etc/ld.so.conf, used only without a cache
	// System are the loader's built-in directories, searched last.
	System []string
}

// Lib is one shared library a binary loads, directly or through another
// library.
type Lib struct {
	Name     string   // as in DT_NEEDED
	Path     string   // where the loader would find it; "" when nowhere
	By       string   // the file that needs it
	Searched []string // where it was looked for, in order (set when not found)
}

// Libs is what a binary needs from the dynamic loader.
type Libs struct {
	Dynamic       bool   // false: a static ELF, or a script: nothing to load
	Interp        string // PT_INTERP, the loader itself
	InterpMissing bool
	Libs          []Lib // breadth first, each name once
}

// Missing are the libraries found nowhere.
func (l Libs) Missing() []Lib {
	var out []Lib
	for _, lib := range l.Libs {
		if lib.Path == "" {
			out = append(out, lib)
		}
	}
	return out
}

// maxLibs bounds the walk: a real node loads a few dozen libraries.
const maxLibs = 512

// dynInfo is what the loader reads from one ELF object.
type dynInfo struct {
	needed          []string
	rpath, runpath  []string // $ORIGIN expanded
	hasRunpath      bool
	class           elf.Class
	machine         elf.Machine
	interp          string
	dynamic, script bool
}

func readDyn(path string) (dynInfo, error) {
	var d dynInfo
	if b, err := readPrefix(path, 2); err == nil && string(b) == "#!" {
		d.script = true
		return d, nil
	}
	f, err := elf.Open(path)
	if err != nil {
		return d, err
	}
	defer f.Close()
	d.class, d.machine = f.Class, f.Machine
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_DYNAMIC:
			d.dynamic = true
		case elf.PT_INTERP:
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return d, fmt.Errorf("read PT_INTERP: %w", err)
			}
			d.interp = string(bytes.TrimRight(b, "\x00"))
		}
	}
	if !d.dynamic {
		return d, nil
	}
	// debug/elf reads the dynamic section through the section headers; a
	// file stripped of them (sstrip) would look like it needs nothing.
	if f.SectionByType(elf.SHT_DYNAMIC) == nil {
		return d, errors.New("dynamically linked but without section headers: its libraries cannot be read")
	}
	if d.needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return d, fmt.Errorf("read DT_NEEDED: %w", err)
	}
	origin := filepath.Dir(path)
	for _, t := range []struct {
		tag elf.DynTag
		out *[]string
	}{{elf.DT_RPATH, &d.rpath}, {elf.DT_RUNPATH, &d.runpath}} {
		vals, err := f.DynString(t.tag)
		if err != nil {
			return d, fmt.Errorf("read %s: %w", t.tag, err)
		}
		for _, v := range vals {
			*t.out = append(*t.out, SplitPath(v, origin)...)
		}
		if t.tag == elf.DT_RUNPATH {
			d.hasRunpath = len(vals) > 0
		}
	}
	return d, nil
}

// SplitPath splits a search path (LD_LIBRARY_PATH, DT_RUNPATH) into
// directories, with $ORIGIN as origin. Empty entries, which mean the
// working directory to the loader, are dropped: a node's working directory
// is nothing to count on.
func SplitPath(p, origin string) []string {
	var out []string
	for _, dir := range strings.FieldsFunc(p, func(r rune) bool { return r == ':' || r == ';' }) {
		if origin != "" {
			dir = strings.NewReplacer("${ORIGIN}", origin, "$ORIGIN", origin).Replace(dir)
		}
		out = append(out, dir)
	}
	return out
}

// ResolveLibs finds, as the loader would, every shared library bin loads.
// A script or a static binary has none (Dynamic false).
func ResolveLibs(bin string, s Search) (Libs, error) {
	var out Libs
	exe, err := readDyn(bin)
	if err != nil || exe.script || !exe.dynamic {
		return out, err
	}
	out.Dynamic, out.Interp = true, exe.interp
	if exe.interp != "" {
		if _, err := os.Stat(exe.interp); err != nil {
			out.InterpMissing = true
		}
	}
	// The executable's DT_RPATH applies to every library's lookup, unless
	// it has a DT_RUNPATH (which applies to its own needs only).
	var exeRpath []string
	if !exe.hasRunpath {
		exeRpath = exe.rpath
	}
	type job struct {
		by   string
		info dynInfo
	}
	seen := map[string]bool{}
	queue := []job{{bin, exe}}
	for len(queue) > 0 && len(out.Libs) < maxLibs {
		j := queue[0]
		queue = queue[1:]
		var first []string // DT_RPATH: before LD_LIBRARY_PATH
		if !j.info.hasRunpath {
			first = j.info.rpath
		}
		if j.by != bin {
			first = append(append([]string(nil), first...), exeRpath...)
		}
		for _, name := range j.info.needed {
			if seen[name] {
				continue
			}
			seen[name] = true
			lib := Lib{Name: name, By: j.by}
			var searched []string
			lib.Path, searched = s.find(name, first, j.info.runpath, exe.class, exe.machine)
			if lib.Path == "" {
				lib.Searched = searched
			} else if info, err := readDyn(lib.Path); err == nil && info.dynamic {
				queue = append(queue, job{lib.Path, info})
			}
			out.Libs = append(out.Libs, lib)
		}
	}
	return out, nil
}

// find looks name up in the loader's order: DT_RPATH (without a
// DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, the cache, the built-in
// directories. A file of another class or machine is skipped, as the loader
// skips it. It returns the path, or "" and where it looked.
func (s Search) find(name string, rpath, runpath []string, class elf.Class, machine elf.Machine) (string, []string) {
	if strings.Contains(name, "/") { // a path, not a name: no search
		if matches(name, class, machine) {
			return name, nil
		}
		return "", []string{name}
	}
	var searched []string
	inDirs := func(dirs []string) string {
		for _, d := range dirs {
			searched = append(searched, d)
			if p := filepath.Join(d, name); matches(p, class, machine) {
				return p
			}
		}
		return ""
	}
	if p := inDirs(rpath); p != "" {
		return p, nil
	}
	if p := inDirs(s.LibraryPath); p != "" {
		return p, nil
	}
	if p := inDirs(runpath); p != "" {
		return p, nil
	}
	if s.Cache != nil {
		searched = append(searched, LdCacheFile)
		for _, p := range s.Cache[name] {
			if matches(p, class, machine) {
				return p, nil
			}
		}
	} else if p := inDirs(s.ConfDirs); p != "" {
		return p, nil
	}
	if p := inDirs(s.System); p != "" {
		return p, nil
	}
	return "", searched
}

// matches reports whether path is an ELF object of class and machine.
func matches(path string, class elf.Class, machine elf.Machine) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	c, m, _, err := readHeader(f)
	return err == nil && c == class && m == machine
}

func readPrefix(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, 0)
	return b, err
}

// triplets are Debian's multiarch directory names, by GOARCH.
var triplets = map[string]string{
	"amd64":   "x86_64-linux-gnu",
	"arm64":   "aarch64-linux-gnu",
	"386":     "i386-linux-gnu",
	"arm":     "arm-linux-gnueabihf",
	"riscv64": "riscv64-linux-gnu",
	"ppc64le": "powerpc64le-linux-gnu",
	"s390x":   "s390x-linux-gnu",
}

// SystemDirs are the directories a loader searches after its cache: the
// multiarch ones of this architecture (Debian, Ubuntu), then the classic
// ones (the others).
func SystemDirs() []string {
	var out []string
	if t, ok := triplets[runtime.GOARCH]; ok {
		out = append(out, "/lib/"+t, "/usr/lib/"+t)
	}
	return append(out, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}

// SystemSearch reads the system's part of the search: the cache, or, when
// it cannot be read (absent, as on musl, or a format this parser does not
// know), the directories of /etc/ld.so.conf.
func SystemSearch() Search {
	s := Search{System: SystemDirs()}
	if b, err := os.ReadFile(LdCacheFile); err == nil {
		s.Cache, _ = ParseLdCache(b)
	}
	if s.Cache == nil {
		s.ConfDirs = ReadLdConf("/etc/ld.so.conf")
	}
	return s
}

// ReadLdConf lists the directories of an ld.so.conf, following its
// include lines (globs, relative to the file's directory); unreadable files
// are skipped.
func ReadLdConf(path string) []string {
	var out []string
	seen := map[string]bool{}
	var read func(string, int)
	read = func(path string, depth int) {
		if seen[path] || depth > 8 {
			return
		}
		seen[path] = true
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			line, _, _ = strings.Cut(line, "#")
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "hwcap ") {
				continue
			}
			if rest, ok := strings.CutPrefix(line, "include"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
				for _, pat := range strings.Fields(rest) {
					if !filepath.IsAbs(pat) {
						pat = filepath.Join(filepath.Dir(path), pat)
					}
					files, _ := filepath.Glob(pat) // sorted, as ldconfig reads them
					for _, f := range files {
						read(f, depth+1)
					}
				}
				continue
			}
			// Old syntax allowed "dir=TYPE" and several directories on a line.
			for _, d := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == ':' }) {
				d, _, _ = strings.Cut(d, "=")
				out = append(out, d)
			}
		}
	}
	read(path, 0)
	return out
}

// The new (glibc 2.3 onward, alone since 2.32) format of ld.so.cache. An
// old-format ("ld.so-1.7.0") prefix, which older glibc wrote before it, is
// skipped.
const (
	cacheMagicOld = "ld.so-1.7.0"
	cacheMagicNew = "glibc-ld.so.cache1.1"
	cacheHeadNew  = 48 // magic, version, nlibs, len_strings, flags, padding, extension_offset, unused
	cacheEntryNew = 24 // flags, key, value, osversion, hwcap
	cacheEntryOld = 12 // flags, key, value
)

// ParseLdCache reads ld.so.cache into library name -> paths, in the
// cache's order (the loader takes the first that fits). Anything it does
// not recognise is an error, so the caller falls back to ld.so.conf rather
// than trusting a misread.
func ParseLdCache(b []byte) (map[string][]string, error) {
	if bytes.HasPrefix(b, []byte(cacheMagicOld)) {
		if len(b) < 16 {
			return nil, errors.New("ld.so.cache: truncated old header")
		}
		n := uint64(binary.NativeEndian.Uint32(b[12:]))
		off := (16 + n*cacheEntryOld + 7) &^ 7 // the new part is 8-aligned
		if off >= uint64(len(b)) {
			return nil, errors.New("ld.so.cache: old format only")
		}
		b = b[off:]
	}
	if len(b) < cacheHeadNew || string(b[:len(cacheMagicNew)]) != cacheMagicNew {
		return nil, errors.New("ld.so.cache: unknown format")
	}
	var order binary.ByteOrder = binary.NativeEndian
	switch b[28] & 3 { // cache_file_new_flags_endian_*
	case 2:
		order = binary.LittleEndian
	case 3:
		order = binary.BigEndian
	}
	n := uint64(order.Uint32(b[20:]))
	if cacheHeadNew+n*cacheEntryNew > uint64(len(b)) {
		return nil, fmt.Errorf("ld.so.cache: %d entries do not fit in %d bytes", n, len(b))
	}
	str := func(off uint32) (string, bool) {
		if uint64(off) >= uint64(len(b)) {
			return "", false
		}
		end := bytes.IndexByte(b[off:], 0)
		if end < 0 {
			return "", false
		}
		return string(b[off : off+uint32(end)]), true
	}
	out := make(map[string][]string, n)
	for i := range n {
		e := b[cacheHeadNew+i*cacheEntryNew:]
		key, ok1 := str(order.Uint32(e[4:]))
		val, ok2 := str(order.Uint32(e[8:]))
		if !ok1 || !ok2 || key == "" || !filepath.IsAbs(val) {
			return nil, fmt.Errorf("ld.so.cache: entry %d is malformed", i)
		}
		out[key] = append(out[key], val)
	}
	return out, nil
}
