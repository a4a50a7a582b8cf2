package backup

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/home"
	"github.com/vigilhq/vigil/internal/runlock"
	"github.com/vigilhq/vigil/plan"
)

// policyHome is a home running upgrades/v2 whose data was backed up at the
// v2 halt while genesis ran.
func policyHome(t *testing.T) (home.Layout, Policy) {
	t.Helper()
	l := home.Layout{Home: t.TempDir(), Name: "simd", Recase: true}
	must(t, os.MkdirAll(filepath.Join(l.GenesisDir(), "bin"), 0o755))
	must(t, os.MkdirAll(filepath.Join(l.UpgradeDir("v2"), "bin"), 0o755))
	nodeData(t, l.Home)
	must(t, os.Symlink("genesis", l.Current()))
	return l, Policy{Layout: l, Dest: l.Home, Strategy: Copy, Keep: 2, Log: slog.New(slog.DiscardHandler)}
}

// Two backups of one upgrade within a second get two names; an unchanged
// halt is reused instead of copied again.
func TestPolicyBackupNamesAndReuse(t *testing.T) {
	l, b := policyHome(t)
	p := plan.Plan{Name: "v2", Height: 100}
	first, err := b.Backup(context.Background(), p, "v2")
	must(t, err)
	again, err := b.Backup(context.Background(), p, "v2")
	must(t, err)
	if again.Path != first.Path {
		t.Errorf("unchanged data backed up again: %s, then %s", first.Path, again.Path)
	}
	write(t, filepath.Join(l.DataDir(), "cs.wal", "wal"), []byte("moved on"), 0o600)
	second, err := b.Backup(context.Background(), p, "v2")
	must(t, err)
	if second.Path == first.Path {
		t.Fatalf("changed data reused %s", first.Path)
	}
	if take, err := b.Check(context.Background(), p); err != nil || !take {
		t.Errorf("Check = %v, %v; want a backup planned", take, err)
	}
}

func TestRestoreHome(t *testing.T) {
	l, b := policyHome(t)
	res, err := b.Backup(context.Background(), plan.Plan{Name: "v2", Height: 100}, "v2")
	must(t, err)
	name := filepath.Base(res.Path)
	must(t, l.Switch("v2"))
	write(t, filepath.Join(l.DataDir(), "cs.wal", "wal"), []byte("after the upgrade"), 0o600)
	ctx, log := context.Background(), slog.New(slog.DiscardHandler)

	lock, err := runlock.Acquire(l.RunLock())
	must(t, err)
	if r, err := RestoreHome(ctx, l, l.Home, name, log); !errors.Is(err, runlock.ErrHeld) || r.Backup != nil {
		t.Errorf("with vigil running: %+v, %v; want ErrHeld and nothing done", r, err)
	}
	lock.Release()

	if _, err := RestoreHome(ctx, l, l.Home, "nope", log); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("an unknown name: %v, want the list of backups", err)
	}
	r, err := RestoreHome(ctx, l, l.Home, name, log)
	must(t, err)
	if !r.Relinked || r.Restored.Replaced == "" || r.Pending == nil || r.Pending.Name != "v2" || r.PendingBin != l.Bin(l.UpgradeDir("v2")) {
		t.Errorf("restored: %+v", r)
	}
	if cur, _ := os.Readlink(l.Current()); cur != "genesis" {
		t.Errorf("current -> %s, want genesis", cur)
	}
	if got, _ := os.ReadFile(filepath.Join(l.DataDir(), "cs.wal", "wal")); string(got) != "cs" {
		t.Errorf("cs.wal/wal = %q after the restore", got)
	}
}
