//go:build linux

package fetch

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/internal/testutil"
	"golang.org/x/sys/unix"
)

// childEnv marks the re-executed test binary running in its own mount
// namespace.
const childEnv = "VIGIL_FETCH_TEST_MOUNTNS"

// TestFetchSmallDisk runs tmpfsCases in a private mount namespace (root and
// unshare(1) required): the test binary re-executes itself under
// `unshare -m --propagation private` and mounts small tmpfs filesystems.
func TestFetchSmallDisk(t *testing.T) {
	if testutil.InMountNamespace(t, childEnv) {
		tmpfsCases(t)
	}
}

func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o755))
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

func tmpfsCases(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		// cosmovisor/ (staging and upgrades) on a 1 MiB filesystem; the
		// download is 4 MiB.
		home := t.TempDir()
		mountTmpfs(t, filepath.Join(home, "cosmovisor"), "1m")
		e := newEnvAt(t, home, nil)
		s := newServer(t)
		s.serve("/bin", elfFor(hostMachine(t), "big", 4<<20))
		err := e.fetch(binaries(s.url("/bin")))
		wantErr(t, err, "no space left")
		t.Logf("full disk: %v", err)
		e.assertNothing()
		if n := s.count("/bin"); n != 1 {
			t.Errorf("%d requests, want 1 (a full disk is not retried within a Fetch)", n)
		}
		// The failed download freed its space: a smaller binary fits.
		small := binary1(t, "small")
		s.serve("/bin", small)
		if err := e.fetch(binaries(s.url("/bin"))); err != nil {
			t.Fatalf("fetch after the fix: %v", err)
		}
		e.assertInstalled(small)
	})
	t.Run("upgrades-on-own-filesystem", func(t *testing.T) {
		// upgrades/ is another filesystem than the staging folder: the
		// rename crosses devices and falls back to a copy.
		home := t.TempDir()
		e := newEnvAt(t, home, nil)
		mountTmpfs(t, e.l.UpgradesDir(), "8m")
		good, s := serveBinary(t)
		if err := e.fetch(binaries(s.url("/bin"))); err != nil {
			t.Fatal(err)
		}
		e.assertInstalled(good)
		ents, _ := os.ReadDir(filepath.Dir(e.bin("v2")))
		if len(ents) != 1 {
			t.Fatalf("bin/ holds %v, want only the binary", ents)
		}
	})
	t.Run("upgrades-full", func(t *testing.T) {
		// Room to download, none to install across the mount.
		home := t.TempDir()
		e := newEnvAt(t, home, nil)
		mountTmpfs(t, e.l.UpgradesDir(), "1m")
		s := newServer(t)
		s.serve("/bin", elfFor(hostMachine(t), "big", 4<<20))
		err := e.fetch(binaries(s.url("/bin")))
		wantErr(t, err, "no space left")
		e.assertNothing()
	})
}
