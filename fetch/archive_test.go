package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/plan"
)

const wasmvm = "lib/libwasmvm.x86_64.so"

// release is a CosmWasm-style release archive: the binary, its library, a
// README and a helper, with their modes.
func release(t testing.TB, good []byte) []member {
	return []member{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/app", body: good, mode: 0o755},
		{name: "bin/app-helper", body: []byte("#!/bin/sh\n"), mode: 0o750},
		{name: "lib/", typ: tar.TypeDir, mode: 0o755},
		{name: wasmvm, body: []byte("\x7fELF wasmvm"), mode: 0o644},
		{name: "README", body: []byte("read me"), mode: 0o666}, // group/other write is dropped
	}
}

// wantTree is what release installs under upgrades/v2: path → mode, body.
func wantTree(good []byte) map[string]struct {
	mode fs.FileMode
	body []byte
} {
	return map[string]struct {
		mode fs.FileMode
		body []byte
	}{
		"bin/app":        {0o755, good},
		"bin/app-helper": {0o750, []byte("#!/bin/sh\n")},
		wasmvm:           {0o644, []byte("\x7fELF wasmvm")},
		"README":         {0o644, []byte("read me")},
	}
}

func (e *env) assertTree(good []byte) {
	e.t.Helper()
	dir := e.l.UpgradeDir("v2")
	for rel, w := range wantTree(good) {
		p := filepath.Join(dir, rel)
		got, err := os.ReadFile(p)
		if err != nil {
			e.t.Fatalf("%s not installed: %v", rel, err)
		}
		if !bytes.Equal(got, w.body) {
			e.t.Fatalf("%s: %d bytes, want %d", rel, len(got), len(w.body))
		}
		st, _ := os.Stat(p)
		if st.Mode().Perm() != w.mode {
			e.t.Fatalf("%s: mode %v, want %v", rel, st.Mode().Perm(), w.mode)
		}
	}
	for _, d := range []string{"", "bin", "lib"} {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || st.Mode().Perm() != 0o755 {
			e.t.Fatalf("folder %q: %v (mode %v), want 0755", d, err, st.Mode().Perm())
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), tempPrefix) {
			e.t.Fatalf("temporary copy left: %s", ent.Name())
		}
	}
	e.assertClean()
}

// watchRenames records every rename of an install and checks, before each
// one, that the binary is not yet in place, and before the binary's, that
// lib/ and the README are. xdev makes renames out of the staging folder fail
// as across filesystems.
func (e *env) watchRenames(xdev bool) *[]string {
	var mu sync.Mutex
	var steps []string
	bin := e.bin("v2")
	e.f.rename = func(from, to string) error {
		mu.Lock()
		defer mu.Unlock()
		if xdev && strings.Contains(from, string(filepath.Separator)+".staging"+string(filepath.Separator)) {
			steps = append(steps, "EXDEV")
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: unix.EXDEV}
		}
		rel, _ := filepath.Rel(e.l.UpgradeDir("v2"), to)
		steps = append(steps, rel)
		if _, err := os.Lstat(bin); err == nil {
			e.t.Errorf("the binary was in place before the rename of %s", rel)
		}
		if to == bin {
			for _, p := range []string{wasmvm, "README", "bin/app-helper"} {
				if _, err := os.Stat(filepath.Join(e.l.UpgradeDir("v2"), p)); err != nil {
					e.t.Errorf("the binary is renamed into place before %s: %v", p, err)
				}
			}
		}
		return renameNoReplace(from, to)
	}
	return &steps
}

// TestFetchArchiveWhole: an archive with bin/, lib/ and a README installs
// all of it with the modes, the binary renamed into place last; with or
// without upgrades/v2 existing, and across filesystems.
func TestFetchArchiveWhole(t *testing.T) {
	t.Parallel()
	good := binary1(t, "v2-whole")
	for _, c := range []struct {
		name, path string
		body       func() []byte
		existing   bool // upgrades/v2 exists (a marker in it): merged into
		xdev       bool
		steps      string
	}{
		{name: "tar.gz", path: "/r.tar.gz", body: func() []byte { return gz(t, tarOf(t, release(t, good)...)) }, steps: ". bin/app"},
		{name: "zip", path: "/r.zip", body: func() []byte { return zipOf(t, release(t, good)...) }, steps: ". bin/app"},
		{name: "zip-into-existing", path: "/r.zip", existing: true, body: func() []byte { return zipOf(t, release(t, good)...) },
			steps: "README bin lib bin/app"},
		{name: "tar.gz-across-filesystems", path: "/r.tgz", xdev: true, body: func() []byte { return gz(t, tarOf(t, release(t, good)...)) },
			steps: "EXDEV . bin/app"},
		{name: "zip-into-existing-across-filesystems", path: "/r.zip", existing: true, xdev: true,
			body: func() []byte { return zipOf(t, release(t, good)...) }, steps: "EXDEV README bin lib bin/app"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.serve(c.path, c.body())
			e := newEnv(t, nil)
			marker := filepath.Join(e.l.UpgradeDir("v2"), plan.FileName)
			if c.existing {
				must(t, os.MkdirAll(e.l.UpgradeDir("v2"), 0o755))
				must(t, os.WriteFile(marker, []byte(`{"name":"v2","height":100}`), 0o644))
			}
			steps := e.watchRenames(c.xdev)
			res, err := e.f.Ensure(context.Background(), plan.Plan{Name: "v2", Height: 100, Info: binaries(s.url(c.path))}, "v2")
			if err != nil {
				t.Fatal(err)
			}
			if res.Files != 4 {
				t.Errorf("Result.Files = %d, want 4", res.Files)
			}
			e.assertTree(good)
			if got := strings.Join(*steps, " "); got != c.steps {
				t.Errorf("renames %q, want %q", got, c.steps)
			}
			if c.existing {
				if b, err := os.ReadFile(marker); err != nil || !strings.Contains(string(b), `"v2"`) {
					t.Errorf("the marker was touched: %q %v", b, err)
				}
			}
		})
	}
}

// TestFetchArchiveLayouts: the layouts that installed only the binary
// before still work, and what else they hold comes along.
func TestFetchArchiveLayouts(t *testing.T) {
	t.Parallel()
	good := binary1(t, "v2-layouts")
	lib := []byte("lib")
	for _, c := range []struct {
		name string
		body func() []byte
		path string
		want []string // files under upgrades/v2, sorted
	}{
		{name: "name-at-top-to-bin", path: "/r.tar.gz",
			body: func() []byte {
				return gz(t, tarOf(t, member{name: "app", body: good}, member{name: "lib/libfoo.so", body: lib, mode: 0o644}))
			},
			want: []string{"bin/app", "lib/libfoo.so"}},
		{name: "name-at-top-beside-a-bin-folder", path: "/r.zip",
			body: func() []byte {
				return zipOf(t, member{name: "app", body: good}, member{name: "bin/appcli", body: lib})
			},
			want: []string{"bin/app", "bin/appcli"}},
		{name: "single-file-in-folders", path: "/r.zip",
			body: func() []byte {
				return zipOf(t, member{name: "app-v2/", typ: tar.TypeDir}, member{name: "app-v2/bin/", typ: tar.TypeDir},
					member{name: "app-v2/bin/app-linux", body: good})
			},
			want: []string{"bin/app"}},
		{name: "bare", path: "/app", body: func() []byte { return good }, want: []string{"bin/app"}},
		{name: "gz", path: "/app.gz", body: func() []byte { return gz(t, good) }, want: []string{"bin/app"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.serve(c.path, c.body())
			e := newEnv(t, nil)
			if err := e.fetch(binaries(s.url(c.path))); err != nil {
				t.Fatal(err)
			}
			e.assertInstalled(good)
			var got []string
			filepath.WalkDir(e.l.UpgradeDir("v2"), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(e.l.UpgradeDir("v2"), p)
					got = append(got, rel)
				}
				return nil
			})
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("installed %q, want %q", got, c.want)
			}
		})
	}
}

// TestFetchArchiveRefused: archives that cannot be installed whole as they
// are fail, leaving nothing.
func TestFetchArchiveRefused(t *testing.T) {
	t.Parallel()
	good := binary1(t, "v2-refused")
	for _, c := range []struct {
		name string
		body []byte
		want []string
	}{
		{name: "wrapped-in-a-folder", want: []string{"no bin/app or app", "everything is inside app-v2/", "as it is"},
			body: gz(t, tarOf(t, member{name: "app-v2/bin/app", body: good}, member{name: "app-v2/" + wasmvm, body: []byte("so")}))},
		{name: "marker-in-archive", want: []string{"upgrade-info.json", "refused"},
			body: gz(t, tarOf(t, member{name: "bin/app", body: good}, member{name: "upgrade-info.json", body: []byte(`{"name":"v9"}`)}))},
		{name: "symlinked-lib", want: []string{`"lib/libwasmvm.so" is a symlink`},
			body: gz(t, tarOf(t, member{name: "bin/app", body: good}, member{name: "lib/libwasmvm.so", typ: tar.TypeSymlink, link: "/usr/lib/x.so"}))},
		{name: "lib-escapes", want: []string{"leaves the archive's folder"},
			body: gz(t, tarOf(t, member{name: "bin/app", body: good}, member{name: "lib/../../../x.so", body: []byte("so")}))},
		{name: "bin-is-a-file", want: []string{"a file named bin"},
			body: gz(t, tarOf(t, member{name: "app", body: good}, member{name: "bin", body: []byte("x")}))},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.serve("/r.tar.gz", c.body)
			e := newEnv(t, nil)
			wantErr(t, e.fetch(binaries(s.url("/r.tar.gz"))), c.want...)
			e.assertNothing()
		})
	}
}

// TestFetchArchiveHandPlaced: files placed by hand in upgrades/v2 are never
// overwritten. A clash refuses the whole download before anything moves; a
// file with the archive's own bytes is not a clash; other files stay.
func TestFetchArchiveHandPlaced(t *testing.T) {
	t.Parallel()
	good := binary1(t, "v2-hand")
	mineLib := []byte("my own build of wasmvm")
	for _, c := range []struct {
		name  string
		place func(dir string)
		want  []string // error; nil = installs
	}{
		{name: "lib-differs", want: []string{"lib/libwasmvm.x86_64.so (differs)", "never overwrites", "bin/app"},
			place: func(dir string) {
				must(t, os.MkdirAll(filepath.Join(dir, "lib"), 0o755))
				must(t, os.WriteFile(filepath.Join(dir, wasmvm), mineLib, 0o644))
			}},
		{name: "lib-is-a-file", want: []string{"lib (not a folder there)"},
			place: func(dir string) { must(t, os.WriteFile(filepath.Join(dir, "lib"), mineLib, 0o644)) }},
		{name: "readme-is-a-folder", want: []string{"README (a folder there)"},
			place: func(dir string) { must(t, os.MkdirAll(filepath.Join(dir, "README"), 0o755)) }},
		{name: "same-bytes-and-other-files", // an install interrupted half-way, plus the operator's notes
			place: func(dir string) {
				must(t, os.MkdirAll(filepath.Join(dir, "lib"), 0o755))
				must(t, os.WriteFile(filepath.Join(dir, wasmvm), []byte("\x7fELF wasmvm"), 0o644))
				must(t, os.WriteFile(filepath.Join(dir, "lib", "notes"), mineLib, 0o600))
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			s.serve("/r.tgz", gz(t, tarOf(t, release(t, good)...)))
			e := newEnv(t, nil)
			dir := e.l.UpgradeDir("v2")
			must(t, os.MkdirAll(dir, 0o755))
			c.place(dir)
			before := snapshot(t, dir)
			err := e.fetch(binaries(s.url("/r.tgz")))
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				e.assertTree(good)
				if b, err := os.ReadFile(filepath.Join(dir, "lib", "notes")); err != nil || !bytes.Equal(b, mineLib) {
					t.Fatalf("a file placed by hand changed: %q %v", b, err)
				}
				return
			}
			wantErr(t, err, c.want...)
			if after := snapshot(t, dir); after != before {
				t.Fatalf("upgrades/v2 changed by a refused download:\nbefore %s\nafter  %s", before, after)
			}
			e.assertClean()
		})
	}
}

// snapshot lists a tree with its files' contents.
func snapshot(t testing.TB, dir string) string {
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		must(t, err)
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel)
		if !d.IsDir() {
			body, _ := os.ReadFile(p)
			b.WriteString("=" + string(body))
		}
		b.WriteString("; ")
		return nil
	})
	return b.String()
}

// TestFetchArchiveInterrupted: an install that fails before the binary's
// rename leaves no binary (the reactor sees nothing ready), and the next
// Fetch completes it over the files already moved.
func TestFetchArchiveInterrupted(t *testing.T) {
	t.Parallel()
	good := binary1(t, "v2-interrupted")
	s := newServer(t)
	s.serve("/r.zip", zipOf(t, release(t, good)...))
	e := newEnv(t, nil)
	must(t, os.MkdirAll(e.l.UpgradeDir("v2"), 0o755)) // so that lib/ and the README move one by one
	e.f.rename = func(from, to string) error {
		if to == e.bin("v2") {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: unix.EIO}
		}
		return renameNoReplace(from, to)
	}
	if err := e.fetch(binaries(s.url("/r.zip"))); !errors.Is(err, unix.EIO) {
		t.Fatalf("err = %v, want the injected EIO", err)
	}
	if _, err := os.Stat(filepath.Join(e.l.UpgradeDir("v2"), wasmvm)); err != nil {
		t.Fatalf("lib/ was not moved before the failure: %v", err)
	}
	if _, err := os.Lstat(e.bin("v2")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("binary in place after a failed install: %v", err)
	}
	e.f.rename = nil
	if err := e.fetch(binaries(s.url("/r.zip"))); err != nil {
		t.Fatalf("second fetch: %v", err)
	}
	e.assertTree(good)
}

// TestFetchArchiveBinaryMeanwhile: a binary put in by hand while an archive
// downloads is kept, and nothing of the archive is installed beside it.
func TestFetchArchiveBinaryMeanwhile(t *testing.T) {
	t.Parallel()
	good, mine := binary1(t, "v2"), binary1(t, "by hand")
	body := gz(t, tarOf(t, release(t, good)...))
	s := newServer(t)
	e := newEnv(t, nil)
	s.handle("/r.tar.gz", func(w http.ResponseWriter, r *http.Request) {
		must(t, os.MkdirAll(filepath.Dir(e.bin("v2")), 0o755))
		must(t, os.WriteFile(e.bin("v2"), mine, 0o755))
		w.Write(body)
	})
	res, err := e.f.Ensure(context.Background(), plan.Plan{Name: "v2", Height: 1, Info: binaries(s.url("/r.tar.gz"))}, "v2")
	if err != nil || !res.Already {
		t.Fatalf("Ensure = %+v, %v; want Already", res, err)
	}
	e.assertInstalled(mine)
	if _, err := os.Stat(filepath.Join(e.l.UpgradeDir("v2"), "lib")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the archive's lib/ was installed beside a binary placed by hand: %v", err)
	}
}
