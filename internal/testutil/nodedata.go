package testutil

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// NodeData writes n files of size bytes of incompressible data under dir,
// laid out like a node's LevelDB stores (application.db, blockstore.db,
// state.db: a log, a manifest and .ldb tables), for backup benchmarks.
func NodeData(t testing.TB, dir string, n, size int) {
	t.Helper()
	stores := []string{"application.db", "blockstore.db", "state.db"}
	for _, s := range stores {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, size)
	for i := range n {
		name := fmt.Sprintf("%06d.ldb", i+10)
		switch i {
		case 0:
			name = "000009.log"
		case 1:
			name = "MANIFEST-000008"
		}
		rng.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, stores[i%len(stores)], name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
