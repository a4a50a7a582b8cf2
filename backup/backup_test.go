package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCopy(t *testing.T) {
	src := filepath.Join(t.TempDir(), "data")
	must(t, os.MkdirAll(filepath.Join(src, "application.db"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "application.db", "000001.ldb"), []byte(strings.Repeat("x", 1<<20)), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "priv_validator_state.json"), []byte(`{"height":"5"}`), 0o600))
	must(t, os.Symlink("application.db", filepath.Join(src, "link")))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(src, "priv_validator_state.json"), old, old))

	dest := t.TempDir()
	res, err := Copy(context.Background(), src, dest, Name("v2", 100, old))
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 2 || res.Bytes != 1<<20+14 || filepath.Base(res.Path) != "data-backup-v2-100-20200102T030405Z" {
		t.Fatalf("result = %+v", res)
	}
	b, err := os.ReadFile(filepath.Join(res.Path, "priv_validator_state.json"))
	if err != nil || string(b) != `{"height":"5"}` {
		t.Fatalf("copy content %q %v", b, err)
	}
	st, _ := os.Stat(filepath.Join(res.Path, "priv_validator_state.json"))
	if st.Mode().Perm() != 0o600 || !st.ModTime().Equal(old) {
		t.Fatalf("mode/mtime not kept: %v %v", st.Mode(), st.ModTime())
	}
	if l, _ := os.Readlink(filepath.Join(res.Path, "link")); l != "application.db" {
		t.Fatalf("symlink not kept: %q", l)
	}
	if _, err := Copy(context.Background(), src, dest, filepath.Base(res.Path)); err == nil {
		t.Fatal("an existing backup must not be overwritten")
	}
}

func TestCopyFailureLeavesNothing(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads unreadable files; use a cancelled context as the failure instead.
		src := t.TempDir()
		must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
		dest := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Copy(ctx, src, dest, "b"); err == nil {
			t.Fatal("expected an error")
		}
		assertEmpty(t, dest)
		return
	}
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "secret"), []byte("x"), 0o000))
	dest := t.TempDir()
	if _, err := Copy(context.Background(), src, dest, "b"); err == nil {
		t.Fatal("expected an error for an unreadable file")
	}
	assertEmpty(t, dest)
}

func TestCopyReplacesStalePartial(t *testing.T) {
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	dest := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dest, "b"+PartialSuffix, "junk"), 0o755))
	res, err := Copy(context.Background(), src, dest, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(res.Path, "junk")); err == nil {
		t.Fatal("stale partial content leaked into the backup")
	}
	if _, err := os.Stat(filepath.Join(dest, "b"+PartialSuffix)); err == nil {
		t.Fatal(".partial left behind")
	}
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("%s not empty after a failed backup: %v", dir, ents)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
