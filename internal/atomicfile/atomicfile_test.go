package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileReplacesAndLeavesNoTemp(t *testing.T) {
	for name, write := range map[string]func(string, []byte, os.FileMode) error{"WriteFile": WriteFile, "Replace": Replace} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f.json")
			if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := write(p, []byte("new"), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if err != nil || string(got) != "new" {
				t.Fatalf("content = %q, %v", got, err)
			}
			st, _ := os.Stat(p)
			if st.Mode().Perm() != 0o600 {
				t.Errorf("perm = %v, want 0600", st.Mode().Perm())
			}
			assertOnly(t, dir, "f.json")
		})
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "current")
	for _, n := range []string{".current.tmp-1a2b", ".current.tmp-x", "current", ".other.tmp-1", "current.tmp-1"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveTemps(p)
	if err != nil || len(removed) != 2 {
		t.Fatalf("RemoveTemps = %v, %v; want the two .current.tmp-* files", removed, err)
	}
	assertOnly(t, dir, ".other.tmp-1", "current", "current.tmp-1")
}

func TestWriteFileMissingDirFails(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "nope", "f"), []byte("x"), 0o644); err == nil {
		t.Fatal("expected an error for a missing directory")
	}
}

func TestSymlinkCreatesAndSwitches(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "current")
	for _, target := range []string{"genesis", "upgrades/v2", "upgrades/v3"} {
		if err := Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		got, err := os.Readlink(link)
		if err != nil || got != target {
			t.Fatalf("readlink = %q, %v; want %q", got, err, target)
		}
	}
	assertOnly(t, dir, "current")
}

func TestSymlinkRefusesToReplaceDirectory(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "current")
	if err := os.MkdirAll(filepath.Join(link, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Symlink("genesis", link); err == nil {
		t.Fatal("expected an error when current is a non-empty directory")
	}
	if st, err := os.Lstat(link); err != nil || !st.IsDir() {
		t.Fatalf("directory must be left alone: %v %v", st, err)
	}
	assertOnly(t, dir, "current")
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("dir holds %v, want %v (no temporary leftovers)", got, names)
	}
}

func TestWriteNewNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.toml")
	wrote, err := WriteNew(p, []byte("first"), 0o644)
	if err != nil || !wrote {
		t.Fatalf("WriteNew on a free name = %v, %v; want true, nil", wrote, err)
	}
	wrote, err = WriteNew(p, []byte("second"), 0o644)
	if err != nil || wrote {
		t.Fatalf("WriteNew over an existing file = %v, %v; want false, nil", wrote, err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "first" {
		t.Fatalf("content = %q, %v; want the first write", got, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("perm = %v, want 0644", st.Mode().Perm())
	}
	assertOnly(t, dir, "config.toml")
}
