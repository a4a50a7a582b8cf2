package backup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/internal/testutil"
	"golang.org/x/sys/unix"
)

// BenchmarkBackup backs up a LevelDB-like data folder of 2 GiB in 2,048
// files (1 MiB each: .ldb tables, a WAL .log and a MANIFEST in three
// stores) with each strategy this filesystem supports, beside `cp -a` of the
// same folder, destination on the same filesystem. Run it as
//
//	go test -run '^$' -bench Backup -benchtime 1x ./backup
//
// The folder is generated once (outside the timer) and removed at the end.
// Page caches are warm for every contender (dropping them is system-wide and
// not done); `sync` runs before each timed run so that the writeback of one
// run is not charged to the next. Take ends with syncfs (a backup must be on
// disk before it is renamed complete), so "cp-a+sync" is the like-for-like
// comparison for the copy strategy.
func BenchmarkBackup(b *testing.B) {
	root := b.TempDir()
	src := filepath.Join(root, "data")
	testutil.NodeData(b, src, 2048, 1<<20)
	run := func(name string, f func(b *testing.B, dest string) error) {
		b.Run(name, func(b *testing.B) {
			for i := range b.N {
				b.StopTimer()
				dest := filepath.Join(root, fmt.Sprintf("%s-%d", name, i))
				unix.Sync()
				b.StartTimer()
				if err := f(b, dest); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(dest)
			}
			b.SetBytes(2 << 30)
		})
	}
	run("cp-a", func(_ *testing.B, dest string) error { return exec.Command("cp", "-a", src, dest).Run() })
	run("cp-a+sync", func(_ *testing.B, dest string) error {
		if err := exec.Command("cp", "-a", src, dest).Run(); err != nil {
			return err
		}
		return syncfs(dest)
	})
	for _, s := range []Strategy{Copy, Hardlink, Reflink} {
		run(string(s), func(b *testing.B, dest string) error {
			res, err := Take(context.Background(), src, root, filepath.Base(dest), Options{Strategy: s})
			if err == nil && res.Strategy != s {
				b.Skipf("%s is not supported here (used %s)", s, res.Strategy)
			}
			return err
		})
	}
}
