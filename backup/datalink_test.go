package backup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/testutil"
	"golang.org/x/sys/unix"
)

// data/ as a symlink to a directory elsewhere (the data on its own volume):
// what the link points to is backed up, estimated and restored, never the
// link itself.

// linkedData makes home/data a symlink (absolute, or relative when rel) to a
// node data directory vol/data.
func linkedData(t *testing.T, dir, vol string, rel bool) (link, real string) {
	t.Helper()
	real = nodeData(t, vol)
	target := real
	if rel {
		var err error
		target, err = filepath.Rel(dir, real)
		must(t, err)
	}
	link = filepath.Join(dir, "data")
	must(t, os.Symlink(target, link))
	return link, real
}

func TestTakeThroughSymlink(t *testing.T) {
	for _, s := range []Strategy{Auto, Reflink, Hardlink, Copy} {
		for _, rel := range []bool{false, true} {
			name := string(s) + "/absolute"
			if rel {
				name = string(s) + "/relative"
			}
			t.Run(name, func(t *testing.T) {
				link, real := linkedData(t, t.TempDir(), t.TempDir(), rel)
				dest := t.TempDir()
				want := s
				reflinkOK := probeReflink(real, dest) == nil
				switch {
				case s == Auto && reflinkOK:
					want = Reflink
				case s == Auto:
					want = Hardlink
				case s == Reflink && !reflinkOK:
					want = Copy
				}

				sp, err := Estimate(link, dest, s, nil)
				must(t, err)
				direct, err := Estimate(real, dest, s, nil)
				must(t, err)
				if sp.Files != direct.Files || sp.Bytes != direct.Bytes || sp.Need != direct.Need || sp.Strategy != want {
					t.Errorf("estimate through the link %+v, want the data's own %+v (strategy %s)", sp, direct, want)
				}

				res, err := Take(context.Background(), link, dest, "b", Options{Strategy: s})
				if err != nil {
					t.Fatal(err)
				}
				if res.Strategy != want {
					t.Errorf("strategy %s, want %s", res.Strategy, want)
				}
				if st, err := os.Lstat(res.Path); err != nil || !st.IsDir() {
					t.Fatalf("the backup is not a directory: %v %v", st, err)
				}
				assertSameTree(t, real, res.Path)
				if res.Files != direct.Files || res.Bytes != direct.Bytes {
					t.Errorf("backed up %d files, %d bytes; the data has %d, %d", res.Files, res.Bytes, direct.Files, direct.Bytes)
				}
				if want == Hardlink && !sameInode(t, filepath.Join(real, "application.db", "000005.ldb"), filepath.Join(res.Path, "application.db", "000005.ldb")) {
					t.Error("hardlink: the .ldb is not linked to the data's own file")
				}
				m, err := ReadManifest(res.Path)
				must(t, err)
				if m.Src != link || m.Target != real {
					t.Errorf("manifest src %q target %q, want %q and %q", m.Src, m.Target, link, real)
				}
			})
		}
	}
}

func TestDanglingDataLink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "data")
	gone := filepath.Join(t.TempDir(), "unmounted", "data")
	must(t, os.Symlink(gone, link))
	dest := t.TempDir()
	var de *DanglingError
	if _, err := Estimate(link, dest, Auto, nil); !errors.As(err, &de) || !strings.Contains(err.Error(), gone) {
		t.Errorf("Estimate err = %v, want a dangling link error naming %s", err, gone)
	}
	if _, err := Take(context.Background(), link, dest, "b", Options{}); !errors.As(err, &de) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Take err = %v, want a dangling link error", err)
	}
	assertEmpty(t, dest)

	// Restoring must not put a directory on the home's disk in the link's place.
	src := nodeData(t, t.TempDir())
	res, err := Take(context.Background(), src, t.TempDir(), "b", Options{})
	must(t, err)
	if _, err := Restore(context.Background(), res.Path, link, nil); !errors.As(err, &de) {
		t.Errorf("Restore err = %v, want a dangling link error", err)
	}
	if got, err := os.Readlink(link); err != nil || got != gone {
		t.Errorf("data/ is no longer the link: %q %v", got, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "data.*")); len(m) != 0 {
		t.Errorf("left in the home: %q", m)
	}
}

// TestDataLinkOtherFS puts the data on a tmpfs (another filesystem than the
// backups and the dir), mounted in a private mount namespace by a child of
// this test binary.
func TestDataLinkOtherFS(t *testing.T) {
	if testutil.InMountNamespace(t, childEnv) {
		dataLinkChild(t)
	}
}

func dataLinkChild(t *testing.T) {
	vol := t.TempDir()
	if err := unix.Mount("tmpfs", vol, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(vol, unix.MNT_DETACH) })
	dir := t.TempDir()
	link, real := linkedData(t, dir, vol, false)
	if same, _ := sameDevice(real, dir); same {
		t.Fatal("the tmpfs is not another filesystem")
	}

	t.Run("backup", func(t *testing.T) {
		for _, s := range []Strategy{Auto, Reflink, Hardlink, Copy} {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			sp, err := Estimate(link, dir, s, nil)
			must(t, err)
			if sp.Strategy != Copy || sp.Dir != dir || sp.Need < uint64(sp.Bytes) || sp.Bytes < 1<<20 {
				t.Errorf("%s: estimate %+v, want copy into %s needing every byte of the data", s, sp, dir)
			}
			res, err := Take(context.Background(), link, dir, "b-"+string(s), Options{Strategy: s, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			if res.Strategy != Copy || res.Copied != res.Bytes || res.Bytes != sp.Bytes {
				t.Errorf("%s: %+v, want a copy of every byte (%d)", s, res, sp.Bytes)
			}
			assertSameTree(t, real, res.Path)
			// An explicit faster mode that cannot apply says so.
			if (s == Reflink || s == Hardlink) && !strings.Contains(buf.String(), "level=WARN") {
				t.Errorf("%s: no warning about the fallback to copy:\n%s", s, buf.String())
			}
		}
	})

	t.Run("restore", func(t *testing.T) {
		res, err := Take(context.Background(), link, dir, "r", Options{})
		must(t, err)
		write(t, filepath.Join(real, "application.db", "000006.log"), []byte("later"), 0o644)
		r, err := Restore(context.Background(), res.Path, link, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.Readlink(link); err != nil || got != real {
			t.Fatalf("data/ is no longer a link to %s: %q %v", real, got, err)
		}
		if r.Data != real || !strings.HasPrefix(r.Replaced, real+".replaced-") {
			t.Errorf("restored %+v, want into %s with the old data beside it", r, real)
		}
		if b, _ := os.ReadFile(filepath.Join(real, "application.db", "000006.log")); string(b) != "wal" {
			t.Errorf("WAL not restored on the data volume: %q", b)
		}
		if same, _ := sameDevice(r.Replaced, vol); !same {
			t.Error("the old data was moved off the data volume")
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "data.*")); len(m) != 0 {
			t.Errorf("left in the home: %q", m)
		}
	})

	t.Run("mount root", func(t *testing.T) {
		// data/ -> the volume itself: a mount point cannot be renamed aside.
		root := t.TempDir()
		must(t, unix.Mount("tmpfs", root, "tmpfs", 0, "size=16m"))
		t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
		write(t, filepath.Join(root, "marker"), []byte("live"), 0o644)
		h := t.TempDir()
		l := filepath.Join(h, "data")
		must(t, os.Symlink(root, l))
		d, err := ResolveData(l)
		if err != nil || !d.MountRoot || d.Real != root || d.Link != root {
			t.Fatalf("ResolveData = %+v, %v", d, err)
		}
		res, err := Take(context.Background(), l, h, "m", Options{})
		must(t, err)
		if _, err := Restore(context.Background(), res.Path, l, nil); err == nil || !strings.Contains(err.Error(), "root of a mounted filesystem") {
			t.Errorf("Restore err = %v, want a refusal", err)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "marker")); string(b) != "live" {
			t.Error("a refused restore changed the data")
		}
		if m, _ := filepath.Glob(filepath.Join(filepath.Dir(root), filepath.Base(root)+".*")); len(m) != 0 {
			t.Errorf("left beside the mount point: %q", m)
		}
	})
}
