//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A home prepared at one path and bind-mounted at another, as a container
// volume is, with the original path hidden (a tmpfs over it) inside vigil's
// mount namespace: `current` must still resolve (it is relative), the
// watcher must see the node's writes through the mount, and the upgrade,
// backup and hooks must all work through the new path. Needs root.
func TestE2EBindMountedHome(t *testing.T) {
	t.Parallel()
	flags := []string{"--mount", "--propagation", "private"}
	requireUnshare(t, flags...)
	h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
	script := "#!/bin/sh\n{ pwd; if [ -e \"$ORIG/cosmovisor\" ]; then echo visible; else echo hidden; fi; } > custom.out\n"
	h.writeHook("pre.sh", script)

	mnt := t.TempDir()
	wrap := `mount --bind "$1" "$2" && mount -t tmpfs tmpfs "$1" && shift 2 && exec "$@"`
	wrapper := append([]string{"unshare"}, append(flags, "sh", "-c", wrap, "sh", h.dir, mnt)...)
	v := h.startWrapped(wrapper, append([]string{"run"}, nodeArgs...),
		"DAEMON_HOME="+mnt, "ORIG="+h.dir, "COSMOVISOR_CUSTOM_PREUPGRADE=hooks/pre.sh")

	// The test sees the same files through the original path.
	v.waitLog(startLine("v2"))
	h.assertOrder(startLine("genesis"), "genesis got TERM", "v2 pre-upgrade", startLine("v2"))
	h.assertCurrent("upgrades/v2")
	h.assertMarker("v2", "v2", 100)
	b, err := os.ReadFile(h.path("custom.out"))
	must(t, err)
	if got, want := string(b), mnt+"\nhidden\n"; got != want {
		t.Fatalf("custom pre-upgrade saw %q, want %q (cwd the mounted home, original path hidden)", got, want)
	}
	backups, err := filepath.Glob(h.path("data-backup-v2-100-*"))
	must(t, err)
	if len(backups) != 1 || strings.HasSuffix(backups[0], ".partial") {
		t.Fatalf("backups %q, want one finished data-backup-v2-100-*", backups)
	}
	if _, err := os.Stat(filepath.Join(backups[0], "upgrade-info.json")); err != nil {
		t.Fatalf("backup: %v", err)
	}
	v.stopWant(v2TermCode)
}
