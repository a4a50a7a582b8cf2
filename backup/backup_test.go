package backup

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/testutil"
)

// childEnv selects a test's child role when a test re-executes this binary
// (in a mount namespace, or as an unprivileged user).
const childEnv = "VIGIL_BACKUP_TEST_CHILD"

var old = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// nodeData builds a small LevelDB-like data directory.
func nodeData(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "data")
	for _, d := range []string{"application.db", "blockstore.db", "cs.wal"} {
		must(t, os.MkdirAll(filepath.Join(src, d), 0o755))
	}
	write(t, filepath.Join(src, "application.db", "000005.ldb"), bytes.Repeat([]byte("L"), 1<<20), 0o644)
	write(t, filepath.Join(src, "application.db", "000007.sst"), bytes.Repeat([]byte("S"), 3000), 0o644)
	write(t, filepath.Join(src, "application.db", "000006.log"), []byte("wal"), 0o644)
	write(t, filepath.Join(src, "application.db", "MANIFEST-000004"), []byte("manifest"), 0o644)
	write(t, filepath.Join(src, "application.db", "CURRENT"), []byte("MANIFEST-000004\n"), 0o644)
	write(t, filepath.Join(src, "application.db", "LOCK"), nil, 0o644)
	write(t, filepath.Join(src, "blockstore.db", "000001.ldb"), []byte("block"), 0o644)
	write(t, filepath.Join(src, "cs.wal", "wal"), []byte("cs"), 0o600)
	write(t, filepath.Join(src, PrivvalFile), []byte(`{"height":"100","round":0,"step":3}`), 0o600)
	write(t, filepath.Join(src, "upgrade-info.json"), []byte(`{"name":"v2","height":100}`), 0o644)
	must(t, os.Symlink("application.db/CURRENT", filepath.Join(src, "link")))
	return src
}

func TestTakeCopyKeepsEverything(t *testing.T) {
	src := nodeData(t, t.TempDir())
	// A sparse file: 64 MiB long, two 4 KiB blocks of data.
	sparse := filepath.Join(src, "sparse.db")
	f, err := os.Create(sparse)
	must(t, err)
	must(t, f.Truncate(64<<20))
	_, err = f.WriteAt(bytes.Repeat([]byte("x"), 4096), 0)
	must(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte("y"), 4096), 32<<20)
	must(t, err)
	must(t, f.Close())
	must(t, os.Chmod(filepath.Join(src, "cs.wal", "wal"), 0o640|fs.ModeSetgid))
	for _, p := range []string{filepath.Join(src, PrivvalFile), sparse, filepath.Join(src, "cs.wal"), src} {
		must(t, os.Chtimes(p, old, old)) // directories last: after their contents changed
	}
	must(t, os.Chmod(filepath.Join(src, "blockstore.db"), 0o555)) // read-only dir: contents still copied

	dest := t.TempDir()
	res, err := Take(context.Background(), src, dest, home.BackupName("v2", 100, old), Options{Strategy: Copy, Upgrade: "v2", Height: 100, Current: "genesis"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Strategy != Copy || res.Files != 11 || filepath.Base(res.Path) != "data-backup-v2-100-20200102T030405Z" {
		t.Fatalf("result = %+v", res)
	}
	assertSameTree(t, src, res.Path)
	for _, p := range []string{PrivvalFile, "sparse.db", "cs.wal", "."} {
		st, err := os.Stat(filepath.Join(res.Path, p))
		must(t, err)
		if !st.ModTime().Equal(old) {
			t.Errorf("%s: mtime %v, want %v", p, st.ModTime(), old)
		}
	}
	st, err := os.Stat(filepath.Join(res.Path, "cs.wal", "wal"))
	must(t, err)
	if st.Mode() != 0o640|fs.ModeSetgid {
		t.Errorf("mode not kept: %v", st.Mode())
	}
	if l, _ := os.Readlink(filepath.Join(res.Path, "link")); l != "application.db/CURRENT" {
		t.Errorf("symlink not kept: %q", l)
	}
	if blocks(t, filepath.Join(res.Path, "sparse.db")) > blocks(t, sparse) {
		t.Errorf("sparse file grew: %d blocks, source %d", blocks(t, filepath.Join(res.Path, "sparse.db")), blocks(t, sparse))
	}
	if res.Copied >= res.Bytes || res.Copied < 8192 {
		t.Errorf("copied %d of %d bytes: the holes of sparse.db must not be copied", res.Copied, res.Bytes)
	}
	for _, p := range []string{"application.db/000005.ldb", PrivvalFile} {
		if sameInode(t, filepath.Join(src, p), filepath.Join(res.Path, p)) {
			t.Errorf("%s is linked in copy mode", p)
		}
	}
	m, err := ReadManifest(res.Path)
	must(t, err)
	if m.Upgrade != "v2" || m.Height != 100 || m.Strategy != Copy || m.Files != res.Files || m.Bytes != res.Bytes || m.Current != "genesis" || m.Src != src || m.Time.IsZero() {
		t.Errorf("manifest = %+v", m)
	}
	if _, err := Take(context.Background(), src, dest, filepath.Base(res.Path), Options{}); err == nil {
		t.Fatal("an existing backup must not be overwritten")
	}
}

// takeAs takes backup "b" of src into dest asking for strategy ask, and
// checks that it used want and that the backup is the same tree as src.
func takeAs(t *testing.T, src, dest string, ask, want Strategy) Result {
	t.Helper()
	res, err := Take(context.Background(), src, dest, "b", Options{Strategy: ask})
	if err != nil {
		t.Fatal(err)
	}
	if res.Strategy != want {
		t.Fatalf("strategy %s, want %s", res.Strategy, want)
	}
	assertSameTree(t, src, res.Path)
	return res
}

func TestHardlinkLinksOnlyImmutableFiles(t *testing.T) {
	src := nodeData(t, t.TempDir())
	dest := t.TempDir()
	res := takeAs(t, src, dest, Hardlink, Hardlink) // same filesystem
	for _, p := range []string{"application.db/000005.ldb", "application.db/000007.sst", "blockstore.db/000001.ldb"} {
		if !sameInode(t, filepath.Join(src, p), filepath.Join(res.Path, p)) {
			t.Errorf("%s: not hard-linked", p)
		}
	}
	for _, p := range []string{"application.db/000006.log", "application.db/MANIFEST-000004", "application.db/CURRENT", "application.db/LOCK", "cs.wal/wal", PrivvalFile, "upgrade-info.json"} {
		if sameInode(t, filepath.Join(src, p), filepath.Join(res.Path, p)) {
			t.Errorf("%s: linked, must be copied", p)
		}
	}
	if want := int64(3 + 8 + 16 + 0 + 2 + 35 + 26); res.Copied != want {
		t.Errorf("copied %d bytes, want %d (the mutable files only)", res.Copied, want)
	}
	// Writing the live WAL must not reach the backup.
	write(t, filepath.Join(src, "application.db", "000006.log"), []byte("changed"), 0o644)
	if b, _ := os.ReadFile(filepath.Join(res.Path, "application.db", "000006.log")); string(b) != "wal" {
		t.Errorf("backup WAL changed with the live one: %q", b)
	}
}

func TestAutoChoosesByFilesystem(t *testing.T) {
	src := nodeData(t, t.TempDir())
	want := Hardlink
	if probeReflink(src, t.TempDir()) == nil {
		want = Reflink
	}
	res, err := Take(context.Background(), src, t.TempDir(), "b", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Strategy != want {
		t.Fatalf("auto on one filesystem chose %s, want %s", res.Strategy, want)
	}
	assertSameTree(t, src, res.Path)
}

// Reflink asked for where the filesystem cannot (ext4, tmpfs) copies.
func TestReflinkUnsupportedFallsBack(t *testing.T) {
	src := nodeData(t, t.TempDir())
	dest := t.TempDir()
	if probeReflink(src, dest) == nil {
		t.Skip("this filesystem supports reflink")
	}
	takeAs(t, src, dest, Reflink, Copy)
}

// A destination on another filesystem: hard links are impossible, so both
// auto and an explicit hardlink copy, and the estimate counts every byte.
func TestOtherFilesystemCopies(t *testing.T) {
	src := nodeData(t, t.TempDir())
	other, err := os.MkdirTemp("/dev/shm", "vigil-backup-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	if same, _ := sameDevice(src, other); same {
		t.Skip("/dev/shm is on the same filesystem as the temp dir here")
	}
	for _, s := range []Strategy{Auto, Hardlink} {
		sp, err := Estimate(src, other, s, nil)
		must(t, err)
		if sp.Strategy != Copy || sp.Need < uint64(sp.Bytes) {
			t.Errorf("%s: estimate %+v, want copy needing all %d bytes", s, sp, sp.Bytes)
		}
		res, err := Take(context.Background(), src, other, "b-"+string(s), Options{Strategy: s})
		if err != nil {
			t.Fatal(err)
		}
		if res.Strategy != Copy || res.Copied != res.Bytes {
			t.Errorf("%s: %+v, want copy of every byte", s, res)
		}
		assertSameTree(t, src, res.Path)
	}
}

func TestEstimateByStrategy(t *testing.T) {
	src := nodeData(t, t.TempDir())
	dest := t.TempDir()
	cp, err := Estimate(src, dest, Copy, nil)
	must(t, err)
	hl, err := Estimate(src, dest, Hardlink, nil)
	must(t, err)
	if cp.Strategy != Copy || hl.Strategy != Hardlink {
		t.Fatalf("strategies %s %s", cp.Strategy, hl.Strategy)
	}
	if cp.Need-hl.Need < 1<<20 {
		t.Errorf("hardlink needs %d, copy %d: the 1 MiB .ldb must not count for hardlink", hl.Need, cp.Need)
	}
	if cp.Free == 0 || cp.Margin == 0 || cp.Margin > 256<<20 || cp.Err() != nil {
		t.Errorf("estimate %+v", cp)
	}
	big := cp
	big.Free = big.Need - 1
	var nse *NoSpaceError
	if err := big.Err(); !errors.As(err, &nse) || !strings.Contains(err.Error(), "backup needs") || !strings.Contains(err.Error(), dest) {
		t.Errorf("Err() = %v", err)
	}
}

func TestCancelledLeavesNothing(t *testing.T) {
	src := nodeData(t, t.TempDir())
	dest := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Take(ctx, src, dest, "b", Options{Strategy: Copy}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertEmpty(t, dest)
}

// A file that cannot be read fails the backup and leaves nothing. Root reads
// a mode-000 file, so as root the backup runs in a child process as nobody.
func TestUnreadableFileFails(t *testing.T) {
	if os.Getenv(childEnv) == "unreadable" {
		src, dest := os.Getenv("VIGIL_TEST_SRC"), os.Getenv("VIGIL_TEST_DEST")
		_, err := Take(context.Background(), src, dest, "b", Options{})
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("err = %v, want permission denied on secret", err)
		}
		assertEmpty(t, dest)
		return
	}
	dir, err := os.MkdirTemp("", "vigil-unreadable-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	src := nodeData(t, dir)
	// secret must be the only file nobody cannot read: the copy runs in
	// parallel, so any other unreadable file could fail first.
	must(t, os.Chmod(filepath.Join(src, "cs.wal", "wal"), 0o644))
	must(t, os.Chmod(filepath.Join(src, PrivvalFile), 0o644))
	write(t, filepath.Join(src, "application.db", "secret"), []byte("x"), 0)
	dest := filepath.Join(dir, "dest")
	must(t, os.Mkdir(dest, 0o755))
	if os.Geteuid() != 0 {
		if _, err := Take(context.Background(), src, dest, "b", Options{}); !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("err = %v, want permission denied", err)
		}
		assertEmpty(t, dest)
		return
	}
	const nobody = 65534
	must(t, os.Chown(dest, nobody, nobody))
	bin := filepath.Join(dir, "backup.test")
	b, err := os.ReadFile(os.Args[0])
	must(t, err)
	write(t, bin, b, 0o755)
	cmd := exec.Command(bin, "-test.run=^TestUnreadableFileFails$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=unreadable", "VIGIL_TEST_SRC="+src, "VIGIL_TEST_DEST="+dest)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestUnreadableFileFails")) {
		t.Fatalf("child did not run the test:\n%s", out)
	}
	assertEmpty(t, dest)
}

// No space: a 4 MiB tmpfs, mounted in a private mount namespace by a child
// of this test binary (started under unshare -m).
func TestNoSpace(t *testing.T) {
	if testutil.InMountNamespace(t, childEnv) {
		noSpaceChild(t)
	}
}

func noSpaceChild(t *testing.T) {
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, 0) }) // before TempDir's removal (LIFO)

	src := filepath.Join(t.TempDir(), "data")
	must(t, os.MkdirAll(filepath.Join(src, "application.db"), 0o755))
	for _, n := range []string{"000001.ldb", "000002.ldb", "000003.ldb", "000004.ldb", "000005.ldb", "000006.log"} {
		write(t, filepath.Join(src, "application.db", n), bytes.Repeat([]byte("z"), 1<<20), 0o644)
	}
	for _, s := range []Strategy{Auto, Copy, Hardlink} {
		sp, err := Estimate(src, mnt, s, nil)
		must(t, err)
		err = sp.Err()
		var nse *NoSpaceError
		if !errors.As(err, &nse) || !strings.Contains(err.Error(), "backup needs 6.") || !strings.Contains(err.Error(), "at "+mnt+" but") || !strings.Contains(err.Error(), "is free") {
			t.Fatalf("%s: Err() = %v, want a no-space error naming %s", s, err, mnt)
		}
	}
	// The estimate can race with the node: the backup itself must fail
	// cleanly on ENOSPC.
	_, err := Take(context.Background(), src, mnt, "data-backup-v2-1-x", Options{Strategy: Copy})
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("Take err = %v, want ENOSPC", err)
	}
	assertEmpty(t, mnt)

	small := filepath.Join(t.TempDir(), "data")
	must(t, os.Mkdir(small, 0o755))
	write(t, filepath.Join(small, "000001.ldb"), bytes.Repeat([]byte("z"), 100<<10), 0o644)
	sp, err := Estimate(small, mnt, Auto, nil)
	if err != nil || sp.Err() != nil {
		t.Fatalf("a small backup must fit: %+v %v %v", sp, err, sp.Err())
	}
	if _, err := Take(context.Background(), small, mnt, "b", Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestTakeReplacesStalePartialButNotALiveOne(t *testing.T) {
	src := nodeData(t, t.TempDir())
	dest := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dest, "b"+PartialSuffix, "junk"), 0o755))
	res, err := Take(context.Background(), src, dest, "b", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(res.Path, "junk")); err == nil {
		t.Fatal("stale partial content leaked into the backup")
	}
	if _, err := os.Stat(filepath.Join(dest, "b"+PartialSuffix)); err == nil {
		t.Fatal(".partial left behind")
	}
	// Another process writing c.partial holds its lock.
	live := filepath.Join(dest, "c"+PartialSuffix)
	must(t, os.Mkdir(live, 0o755))
	f, err := lockDir(live)
	must(t, err)
	defer f.Close()
	if _, err := Take(context.Background(), src, dest, "c", Options{}); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("Take over a live partial: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatal("a live partial was removed")
	}
}

func TestCleanPartials(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "data-backup-v2-100-20200102T030405Z"+PartialSuffix)
	live := filepath.Join(dir, "data-backup-v3-200-20200102T030405Z"+PartialSuffix)
	foreign := []string{filepath.Join(dir, "other"+PartialSuffix), filepath.Join(dir, "data-backup-v1-1-x"), filepath.Join(dir, "data")}
	for _, d := range append([]string{stale, live}, foreign...) {
		must(t, os.MkdirAll(filepath.Join(d, "sub"), 0o755))
	}
	write(t, filepath.Join(dir, "data-backup-file"+PartialSuffix), nil, 0o644) // not a directory
	f, err := lockDir(live)
	must(t, err)
	defer f.Close()
	removed, err := CleanPartials(dir, nil)
	must(t, err)
	if len(removed) != 1 || removed[0] != stale {
		t.Fatalf("removed %q, want only %s", removed, stale)
	}
	for _, d := range append([]string{live, filepath.Join(dir, "data-backup-file"+PartialSuffix)}, foreign...) {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed", d)
		}
	}
}

func TestRetainKeepsNewestOfOurs(t *testing.T) {
	dir := t.TempDir()
	src := "/home/node/data"
	var ours []string
	for i := range 4 {
		ours = append(ours, fakeBackup(t, dir, home.BackupName("v", int64(i), old), Manifest{Src: src, Time: old.Add(time.Duration(i) * time.Hour)}))
	}
	// The newest by name is the oldest by time: the manifest decides.
	oldest := fakeBackup(t, dir, home.BackupName("z", 9, old.Add(100*time.Hour)), Manifest{Src: src, Time: old.Add(-time.Hour)})
	otherHome := fakeBackup(t, dir, home.BackupName("w", 1, old), Manifest{Src: "/other/data", Time: old.Add(-2 * time.Hour)})
	noManifest := filepath.Join(dir, home.BackupName("v", 0, old.Add(-3*time.Hour)))
	must(t, os.Mkdir(noManifest, 0o755))
	partial := filepath.Join(dir, home.BackupName("v", 0, old.Add(-4*time.Hour))+PartialSuffix)
	must(t, os.Mkdir(partial, 0o755))
	write(t, filepath.Join(partial, ManifestFile), []byte(`{}`), 0o644)
	unrelated := filepath.Join(dir, "snapshots")
	must(t, os.Mkdir(unrelated, 0o755))

	removed, err := Retain(dir, src, 0, nil)
	if err != nil || len(removed) != 0 {
		t.Fatalf("keep 0 removed %q, %v", removed, err)
	}
	removed, err = Retain(dir, src+"/", 2, nil)
	must(t, err)
	want := []string{oldest, ours[0], ours[1]}
	if strings.Join(removed, ",") != strings.Join(want, ",") {
		t.Fatalf("removed %q, want %q", removed, want)
	}
	for _, p := range []string{ours[2], ours[3], otherHome, noManifest, partial, unrelated} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s must be kept: %v", p, err)
		}
	}
	list, err := List(dir)
	must(t, err)
	if len(list) != 3 || list[0].Path != otherHome || list[2].Path != ours[3] {
		t.Fatalf("List = %+v", list)
	}
}

func TestRestoreRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, live string
		wantLive   bool
	}{
		{"live ahead by height", `{"height":"150","round":0,"step":1}`, true},
		{"live ahead by round", `{"height":"100","round":2,"step":1}`, true},
		{"live ahead by step", `{"height":"100","round":0,"step":4}`, true},
		{"live behind", `{"height":"99","round":5,"step":3}`, false},
		{"live equal", `{"height":"100","round":0,"step":3,"signature":"x"}`, false},
		{"numbers instead of strings", `{"height":101,"round":"0","step":"1"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := nodeData(t, dir)
			res, err := Take(context.Background(), data, dir, home.BackupName("v2", 100, old), Options{Current: "genesis"})
			must(t, err)
			snapshot := filepath.Join(t.TempDir(), "expected")
			_, err = Take(context.Background(), data, filepath.Dir(snapshot), "expected", Options{Strategy: Copy})
			must(t, err)
			must(t, os.Remove(filepath.Join(snapshot, ManifestFile)))

			// The node moves on after the backup.
			write(t, filepath.Join(data, "application.db", "000006.log"), []byte("later"), 0o644)
			must(t, os.Remove(filepath.Join(data, "application.db", "000005.ldb")))
			write(t, filepath.Join(data, "application.db", "000009.ldb"), []byte("new"), 0o644)
			write(t, filepath.Join(data, PrivvalFile), []byte(tc.live), 0o600)

			r, err := Restore(context.Background(), res.Path, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.PrivvalKept != tc.wantLive || r.Manifest.Current != "genesis" || r.Data != data {
				t.Fatalf("restored %+v", r)
			}
			if tc.wantLive {
				write(t, filepath.Join(snapshot, PrivvalFile), []byte(tc.live), 0o600)
			}
			assertSameTree(t, snapshot, data)
			if _, err := os.Stat(filepath.Join(data, ManifestFile)); err == nil {
				t.Error("the manifest was restored into data/")
			}
			// The old data is kept aside, complete.
			if !strings.HasPrefix(r.Replaced, data+".replaced-") {
				t.Fatalf("replaced = %q", r.Replaced)
			}
			if b, _ := os.ReadFile(filepath.Join(r.Replaced, "application.db", "000009.ldb")); string(b) != "new" {
				t.Errorf("old data not kept at %s", r.Replaced)
			}
			// The backup is unchanged and still complete.
			if _, err := ReadManifest(res.Path); err != nil {
				t.Error(err)
			}
			if b, _ := os.ReadFile(filepath.Join(res.Path, PrivvalFile)); string(b) != `{"height":"100","round":0,"step":3}` {
				t.Errorf("backup's sign state changed: %s", b)
			}
			leftovers, _ := filepath.Glob(data + ".restoring-*")
			if len(leftovers) != 0 {
				t.Errorf("left behind: %q", leftovers)
			}
		})
	}
}

func TestRestoreFailuresChangeNothing(t *testing.T) {
	dir := t.TempDir()
	data := nodeData(t, dir)
	res, err := Take(context.Background(), data, dir, "b", Options{})
	must(t, err)
	write(t, filepath.Join(data, "marker"), []byte("live"), 0o644)

	if _, err := Restore(context.Background(), data, data, nil); err == nil {
		t.Error("restoring from a folder without manifest must fail")
	}
	write(t, filepath.Join(data, PrivvalFile), []byte("{garbage"), 0o600)
	if _, err := Restore(context.Background(), res.Path, data, nil); err == nil || !strings.Contains(err.Error(), PrivvalFile) {
		t.Errorf("unreadable live sign state: err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "marker")); string(b) != "live" {
		t.Fatal("data changed by a failed restore")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "data.*")); len(m) != 0 {
		t.Fatalf("left behind: %q", m)
	}
	// No data/ at all: restored, nothing replaced.
	must(t, os.RemoveAll(data))
	r, err := Restore(context.Background(), res.Path, data, nil)
	if err != nil || r.Replaced != "" {
		t.Fatalf("restore into a missing data/: %+v %v", r, err)
	}
}

func TestTakeLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src := nodeData(t, t.TempDir())
	_, err := Take(context.Background(), src, t.TempDir(), "b", Options{Strategy: Copy, Logger: log, progressEvery: time.Millisecond})
	must(t, err)
	if !strings.Contains(buf.String(), `"msg":"backup complete"`) || !strings.Contains(buf.String(), `"strategy":"copy"`) || !strings.Contains(buf.String(), `"files":10`) {
		t.Fatalf("log:\n%s", buf.String())
	}
}

// ---- helpers ----

func fakeBackup(t *testing.T, dir, name string, m Manifest) string {
	t.Helper()
	p := filepath.Join(dir, name)
	must(t, os.Mkdir(p, 0o755))
	must(t, writeManifest(p, m))
	return p
}

// assertSameTree compares two trees: types, contents, modes, symlink targets;
// a manifest in b is ignored.
func assertSameTree(t *testing.T, a, b string) {
	t.Helper()
	seen := map[string]bool{}
	must(t, filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		must(t, err)
		rel, _ := filepath.Rel(a, p)
		seen[rel] = true
		q := filepath.Join(b, rel)
		sa, err := os.Lstat(p)
		must(t, err)
		sb, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s missing from %s", rel, b)
			return nil
		}
		if sa.Mode() != sb.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, sb.Mode(), sa.Mode())
		}
		switch {
		case sa.Mode()&fs.ModeSymlink != 0:
			la, _ := os.Readlink(p)
			lb, _ := os.Readlink(q)
			if la != lb {
				t.Errorf("%s: link %q, want %q", rel, lb, la)
			}
		case sa.Mode().IsRegular():
			ca, _ := os.ReadFile(p)
			cb, _ := os.ReadFile(q)
			if !bytes.Equal(ca, cb) {
				t.Errorf("%s: content differs", rel)
			}
		}
		return nil
	}))
	must(t, filepath.WalkDir(b, func(p string, d fs.DirEntry, err error) error {
		must(t, err)
		rel, _ := filepath.Rel(b, p)
		if !seen[rel] && rel != ManifestFile {
			t.Errorf("%s: extra %s", b, rel)
		}
		return nil
	}))
}

func sameInode(t *testing.T, a, b string) bool {
	t.Helper()
	sa, err := os.Stat(a)
	must(t, err)
	sb, err := os.Stat(b)
	must(t, err)
	return os.SameFile(sa, sb)
}

func blocks(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Stat(p, &st))
	return st.Blocks
}

func write(t *testing.T, p string, b []byte, mode fs.FileMode) {
	t.Helper()
	must(t, os.WriteFile(p, b, mode))
	must(t, os.Chmod(p, mode))
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("%s not empty after a failed backup: %q", dir, names)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
