package fetch

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/testutil"
	"github.com/vigilhq/vigil/plan"
)

const name = "app"

// elfFor returns a minimal ELF executable header for machine followed by a
// payload, enough for binfile.CheckFormat; tag makes contents distinct.
func elfFor(machine elf.Machine, tag string, size int) []byte {
	h := make([]byte, 64)
	copy(h, elf.ELFMAG)
	h[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	le := binary.LittleEndian
	le.PutUint16(h[16:], uint16(elf.ET_EXEC))
	le.PutUint16(h[18:], uint16(machine))
	le.PutUint32(h[20:], uint32(elf.EV_CURRENT))
	le.PutUint16(h[52:], 64)   // ehsize
	le.PutUint16(h[54:], 0x38) // phentsize
	le.PutUint16(h[58:], 0x40) // shentsize
	b := append(h, []byte(tag)...)
	for len(b) < size {
		b = append(b, byte(len(b)))
	}
	return b
}

func hostMachine(t testing.TB) elf.Machine {
	switch runtime.GOARCH {
	case "amd64":
		return elf.EM_X86_64
	case "arm64":
		return elf.EM_AARCH64
	}
	t.Skipf("no test ELF for %s", runtime.GOARCH)
	return 0
}

func otherMachine() elf.Machine {
	if runtime.GOARCH == "arm64" {
		return elf.EM_X86_64
	}
	return elf.EM_AARCH64
}

func binary1(t testing.TB, tag string) []byte { return elfFor(hostMachine(t), tag, 4096) }

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func sha512hex(b []byte) string { s := sha512.Sum512(b); return hex.EncodeToString(s[:]) }

// ---- archives ----

type member struct {
	name string
	body []byte
	typ  byte   // tar type; 0 = regular
	link string // symlink / hard link target
	mode int64
}

func tarOf(t testing.TB, ms ...member) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Mode: 0o755, Size: int64(len(m.body)), Typeflag: tar.TypeReg, Linkname: m.link}
		if m.mode != 0 {
			h.Mode = m.mode
		}
		if m.typ != 0 {
			h.Typeflag = m.typ
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		must(t, tw.WriteHeader(h))
		if h.Size > 0 {
			_, err := tw.Write(m.body)
			must(t, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	must(t, err)
	must(t, zw.Close())
	return buf.Bytes()
}

func zipOf(t testing.TB, ms ...member) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range ms {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		mode := fs.FileMode(0o755)
		if m.mode != 0 {
			mode = fs.FileMode(m.mode)
		}
		if m.typ == tar.TypeDir {
			mode |= fs.ModeDir
		}
		if m.typ == tar.TypeSymlink {
			mode |= fs.ModeSymlink
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		must(t, err)
		body := m.body
		if m.typ == tar.TypeSymlink {
			body = []byte(m.link)
		}
		_, err = w.Write(body)
		must(t, err)
	}
	must(t, zw.Close())
	return buf.Bytes()
}

// ---- server ----

// server is a local HTTP server whose routes a test can change between
// fetches; it counts requests per path.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	hits   map[string]int
}

func newServer(t testing.TB) *server {
	s := &server{routes: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		h := s.routes[r.URL.Path]
		s.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// serveBinary starts a server whose /bin is a v2 binary for this host, and
// returns that binary with the server.
func serveBinary(t testing.TB) ([]byte, *server) {
	t.Helper()
	good := binary1(t, "v2")
	s := newServer(t)
	s.serve("/bin", good)
	return good, s
}

func (s *server) handle(path string, h http.HandlerFunc) {
	s.mu.Lock()
	s.routes[path] = h
	s.mu.Unlock()
}

func (s *server) serve(path string, body []byte) {
	s.handle(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
}

func (s *server) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *server) url(path string) string { return s.URL + path }

// ---- home and fetcher ----

type env struct {
	t   testing.TB
	l   home.Layout
	f   *Fetcher
	log *testutil.Buffer
}

// newEnv makes a home with genesis installed and current → genesis, and a
// Fetcher with short timeouts; mod adjusts its config.
func newEnv(t testing.TB, mod func(*Config)) *env {
	home := t.TempDir()
	return newEnvAt(t, home, mod)
}

func newEnvAt(t testing.TB, dir string, mod func(*Config)) *env {
	l := home.Layout{Home: dir, Name: name, Recase: true}
	writeFile(t, l.Bin(l.GenesisDir()), binary1(t, "genesis"), 0o755)
	must(t, os.Symlink("genesis", l.Current()))
	buf := &testutil.Buffer{}
	cfg := Config{
		Layout:       l,
		MaxTime:      3 * time.Second,
		StallTimeout: 300 * time.Millisecond,
		RetryInitial: 20 * time.Millisecond,
		RetryMax:     100 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	e := &env{t: t, l: l, f: New(cfg), log: buf}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fetch log:\n%s", buf.String())
		}
	})
	return e
}

func (e *env) bin(dir string) string { return e.l.Bin(e.l.UpgradeDir(dir)) }

func (e *env) fetch(info string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return e.f.Fetch(ctx, plan.Plan{Name: "V2", Height: 100, Info: info}, "v2")
}

// binaries renders a plan info naming url for this platform.
func binaries(url string) string {
	return fmt.Sprintf(`{"binaries": {"%s/%s": %q}}`, runtime.GOOS, runtime.GOARCH, url)
}

// assertInstalled checks the binary at upgrades/v2/bin/app is want, 0755.
func (e *env) assertInstalled(want []byte) {
	e.t.Helper()
	got, err := os.ReadFile(e.bin("v2"))
	if err != nil {
		e.t.Fatalf("installed binary: %v", err)
	}
	if !bytes.Equal(got, want) {
		e.t.Fatalf("installed binary has %d bytes (%q…), want %d (%q…)", len(got), got[64:min(len(got), 80)], len(want), want[64:min(len(want), 80)])
	}
	st, _ := os.Stat(e.bin("v2"))
	if st.Mode().Perm() != 0o755 {
		e.t.Fatalf("installed binary mode %v, want 0755", st.Mode().Perm())
	}
	e.assertClean()
}

// assertNothing checks a failed fetch left no trace: nothing under
// upgrades/, no staging, current unchanged.
func (e *env) assertNothing() {
	e.t.Helper()
	if _, err := os.Lstat(e.l.UpgradeDir("v2")); !errors.Is(err, fs.ErrNotExist) {
		ents, _ := os.ReadDir(e.l.UpgradeDir("v2"))
		e.t.Fatalf("upgrades/v2 exists after a failed fetch (err %v, entries %v)", err, ents)
	}
	e.assertClean()
}

func (e *env) assertClean() {
	e.t.Helper()
	stage := filepath.Join(e.l.Root(), ".staging", "v2")
	ents, _ := os.ReadDir(stage)
	for _, ent := range ents {
		if ent.Name() != "lock" {
			e.t.Fatalf("staging left behind: %s", filepath.Join(stage, ent.Name()))
		}
	}
	if got, err := os.Readlink(e.l.Current()); err != nil || got != "genesis" {
		e.t.Fatalf("current -> %q (%v), want genesis", got, err)
	}
}

func wantErr(t testing.TB, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("fetch succeeded, want an error mentioning %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %q", err, s)
		}
	}
}

// writeFile writes path, creating its parent folders (0o755) first.
func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, data, mode))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
