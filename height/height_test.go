package height

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
)

// The test binary doubles as a node: with writerEnv set it opens the database read-write,
// commits the height, says so on stdout and then waits to be killed, as a node would.
const writerEnv = "HEIGHT_TEST_WRITER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(writerEnv); spec != "" {
		os.Exit(writer(spec))
	}
	os.Exit(m.Run())
}

// writer is the child node: spec is "dir height".
func writer(spec string) int {
	dir, hs, _ := strings.Cut(spec, " ")
	h, err := strconv.ParseInt(hs, 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 2
	}
	db, err := leveldb.OpenFile(dir, nil)
	if err == nil {
		// A plain Put, as the SDK's commit does: it reaches the journal, not a table.
		err = db.Put([]byte("s/latest"), sdkValue(h), nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 1
	}
	fmt.Println("committed")
	select {} // never closes the database: only SIGKILL ends it
}

// sdkValue encodes h as gogotypes.StdInt64Marshal does: empty for 0, else field 1 varint.
func sdkValue(h int64) []byte {
	if h == 0 {
		return []byte{}
	}
	return binary.AppendUvarint([]byte{0x08}, uint64(h))
}

// writeDB creates dataDir/application.db holding s/latest = value (no key when value is nil)
// and closes it, as a node that stopped cleanly leaves it.
func writeDB(t *testing.T, dataDir string, value []byte) string {
	t.Helper()
	path := filepath.Join(dataDir, "application.db")
	db, err := leveldb.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Another key, so the database is not empty even without s/latest.
	if err := db.Put([]byte("s/k:bank/"), []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if value != nil {
		if err := db.Put([]byte("s/latest"), value, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCommitted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte
		want  int64
	}{
		{"no key", nil, 0},
		{"zero", sdkValue(0), 0},
		{"one", sdkValue(1), 1},
		{"35", sdkValue(35), 35},
		{"1<<40", sdkValue(1 << 40), 1 << 40},
		{"max", sdkValue(1<<63 - 1), 1<<63 - 1},
		{"repeated field, last wins", append(sdkValue(3), sdkValue(9)...), 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			writeDB(t, data, tc.value)
			got, err := Committed(data)
			if err != nil || got != tc.want {
				t.Fatalf("Committed = %d, %v; want %d, nil", got, err, tc.want)
			}
		})
	}
}

func TestCommittedFreshNode(t *testing.T) {
	data := t.TempDir()
	got, err := Committed(data)
	if err != nil || got != 0 {
		t.Fatalf("Committed = %d, %v; want 0, nil", got, err)
	}
	if _, err := os.Stat(filepath.Join(data, "application.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("application.db after reading: %v; want it still absent", err)
	}
}

func TestCommittedNoDataDir(t *testing.T) {
	got, err := Committed(filepath.Join(t.TempDir(), "missing"))
	if err != nil || got != 0 {
		t.Fatalf("Committed = %d, %v; want 0, nil", got, err)
	}
}

// A later commit that is only in the journal (the table holds an older height) must win.
func TestCommittedJournalOnly(t *testing.T) {
	data := t.TempDir()
	path := writeDB(t, data, sdkValue(7))
	db, err := leveldb.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Reopening compacted the first journal into a table: height 7 is now in an .ldb.
	if err := db.Put([]byte("s/latest"), sdkValue(8), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(path, "*.ldb"))
	if len(tables) == 0 {
		t.Fatal("no table: the test does not have an older height in a table")
	}
	got, err := Committed(data)
	if err != nil || got != 8 {
		t.Fatalf("Committed = %d, %v; want 8, nil", got, err)
	}
}

// A node SIGKILLed after its commit leaves the database unclosed, the height only in the journal.
func TestCommittedAfterSIGKILL(t *testing.T) {
	data := t.TempDir()
	path := writeDB(t, data, sdkValue(41))
	cmd, _ := startWriter(t, path, 42)

	got, err := Committed(data)
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("while the writer runs: Committed = %d, %v; want ErrInUse", got, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	got, err = Committed(data)
	if err != nil || got != 42 {
		t.Fatalf("after SIGKILL: Committed = %d, %v; want 42, nil", got, err)
	}
}

// startWriter runs the child node on path and waits until it has committed h.
func startWriter(t *testing.T, path string, h int64) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", writerEnv, path, h))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := bufio.NewReader(out)
	line := make(chan string, 1)
	go func() { s, _ := r.ReadString('\n'); line <- s }()
	select {
	case s := <-line:
		if s != "committed\n" {
			t.Fatalf("writer said %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writer did not commit in 10s")
	}
	return cmd, r
}

func TestCommittedInUseInProcess(t *testing.T) {
	data := t.TempDir()
	path := writeDB(t, data, sdkValue(5))
	db, err := leveldb.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = Committed(data)
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Committed: %v; want ErrInUse", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

// Reading must leave the database exactly as the node left it: no LOG, no new journal or
// manifest, no compaction, no rewritten CURRENT.
func TestCommittedWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"closed", func(t *testing.T, path string) {}},
		{"killed", func(t *testing.T, path string) {
			cmd, _ := startWriter(t, path, 99)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			path := writeDB(t, data, sdkValue(98))
			tc.setup(t, path)
			// goleveldb's own LOG is the one file a read-write open always writes; remove it
			// so that one showing up afterwards is caught.
			for _, n := range []string{"LOG", "LOG.old"} {
				if err := os.Remove(filepath.Join(path, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
			}
			before := snapshot(t, data)
			if _, err := Committed(data); err != nil {
				t.Fatal(err)
			}
			after := snapshot(t, data)
			if before != after {
				t.Fatalf("reading changed the directory\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if strings.Contains(after, "application.db/LOG") {
				t.Fatalf("LOG present:\n%s", after)
			}
		})
	}
}

// snapshot lists every file under dir with its size, modification time and content hash.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			fmt.Fprintf(&b, "%s/ %s\n", rel, fi.ModTime().Format(time.RFC3339Nano))
			return nil
		}
		c, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %s %x\n", rel, fi.Size(), fi.ModTime().Format(time.RFC3339Nano), sha256.Sum256(c))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestCommittedOtherBackends(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		// pebble and rocksdb keep an OPTIONS file; pebble also has CURRENT and MANIFEST.
		{"pebble", func(t *testing.T, path string) {
			writeFiles(t, path, "CURRENT", "MANIFEST-000001", "OPTIONS-000003", "000002.log")
		}},
		// A goleveldb database with an OPTIONS file beside it is still refused: no guessing.
		{"goleveldb with OPTIONS", func(t *testing.T, path string) {
			writeDB(t, filepath.Dir(path), sdkValue(3))
			writeFiles(t, path, "OPTIONS-000005")
		}},
		{"no CURRENT", func(t *testing.T, path string) {
			writeFiles(t, path, "000001.sst")
		}},
		{"garbage CURRENT", func(t *testing.T, path string) {
			writeDB(t, filepath.Dir(path), sdkValue(3))
			if err := os.WriteFile(filepath.Join(path, "CURRENT"), []byte("nonsense\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			path := filepath.Join(data, "application.db")
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, path)
			got, err := Committed(data)
			if err == nil {
				t.Fatalf("Committed = %d, nil; want an error", got)
			}
			if errors.Is(err, ErrInUse) {
				t.Fatalf("Committed: %v; want not ErrInUse", err)
			}
			for _, want := range []string{path, "only goleveldb", "app-db-backend"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCommittedBadValue(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"text", []byte("42")},
		{"truncated varint", []byte{0x08, 0x80}},
		{"tag only", []byte{0x08}},
		{"other field", []byte{0x10, 0x05}},
		{"field 1 as bytes", []byte{0x0a, 0x01, 0x05}},
		{"trailing garbage", append(sdkValue(5), 0xff)},
		{"negative", binary.AppendUvarint([]byte{0x08}, uint64(1<<64-1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			writeDB(t, data, tc.value)
			got, err := Committed(data)
			if err == nil {
				t.Fatalf("Committed = %d, nil; want an error", got)
			}
			if !strings.Contains(err.Error(), "s/latest") || !strings.Contains(err.Error(), "application.db") {
				t.Errorf("error %q does not name the key and the database", err)
			}
		})
	}
}

// data/ is often a symlink to another volume.
func TestCommittedDataDirSymlink(t *testing.T) {
	real := t.TempDir()
	writeDB(t, real, sdkValue(12))
	link := filepath.Join(t.TempDir(), "data")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	got, err := Committed(link)
	if err != nil || got != 12 {
		t.Fatalf("Committed = %d, %v; want 12, nil", got, err)
	}
}

func TestCommittedNotADirectory(t *testing.T) {
	data := t.TempDir()
	writeFiles(t, data, "application.db")
	if _, err := Committed(data); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Committed: %v; want a not-a-directory error", err)
	}
}
