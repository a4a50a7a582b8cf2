package backup

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/home"
)

// A resumed upgrade reuses the backup of its halt only while the data is
// exactly what was backed up.
func TestSameDataAndOfHalt(t *testing.T) {
	dir := t.TempDir()
	link, real := linkedData(t, dir, t.TempDir(), true)
	res, err := Take(context.Background(), link, dir, home.BackupName("v2", 100, old), Options{Upgrade: "V2", Height: 100})
	must(t, err)
	fakeBackup(t, dir, home.BackupName("v2-100", 5, old), Manifest{Upgrade: "v2-100", Height: 5, Src: link})
	fakeBackup(t, dir, home.BackupName("v2", 100, old.Add(1e9)), Manifest{Upgrade: "V2", Height: 100, Src: "/other/data"})
	must(t, os.Mkdir(filepath.Join(dir, home.BackupName("v2", 100, old.Add(2e9))+PartialSuffix), 0o700))

	found, err := OfHalt(dir, link, "v2", "V2", 100)
	must(t, err)
	if len(found) != 1 || found[0].Path != res.Path {
		t.Fatalf("OfHalt = %+v, want only %s", found, res.Path)
	}
	if same, why, err := SameData(link, res.Path); err != nil || !same {
		t.Fatalf("SameData right after the backup = %v %q %v", same, why, err)
	}
	for _, change := range []struct {
		name string
		do   func()
	}{
		{"rewritten", func() { write(t, filepath.Join(real, "application.db", "000006.log"), []byte("wa1"), 0o644) }},
		{"new", func() { write(t, filepath.Join(real, "application.db", "000010.ldb"), nil, 0o644) }},
		{"gone", func() { must(t, os.Remove(filepath.Join(real, "cs.wal", "wal"))) }},
	} {
		t.Run(change.name, func(t *testing.T) {
			// Each case on a fresh copy of the backed-up data.
			must(t, os.RemoveAll(real))
			_, err := Take(context.Background(), res.Path, filepath.Dir(real), filepath.Base(real), Options{Strategy: Copy})
			must(t, err)
			must(t, os.Remove(filepath.Join(real, ManifestFile)))
			if same, why, err := SameData(link, res.Path); err != nil || !same {
				t.Fatalf("SameData of a copy of the backup = %v %q %v", same, why, err)
			}
			change.do()
			if same, why, err := SameData(link, res.Path); err != nil || same || why == "" {
				t.Errorf("SameData after a change = %v %q %v", same, why, err)
			}
		})
	}
}
