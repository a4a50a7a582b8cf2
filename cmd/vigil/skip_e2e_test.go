package main

import (
	"strings"
	"testing"
)

// TestE2ESkipUpgrades: a plan at a height the node was told to skip
// (--unsafe-skip-upgrades, in the SDK's and in cosmovisor's forms) is not
// applied and the node runs on; another height still upgrades.
func TestE2ESkipUpgrades(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		skip bool
	}{
		{"sdk form", []string{"start", "--unsafe-skip-upgrades=50,100"}, true},
		{"cosmovisor form", []string{"start", "--unsafe-skip-upgrades", "100", "--x=1"}, true},
		{"other height", []string{"start", "--unsafe-skip-upgrades=99"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, obj{"genesis": obj{"halt": haltCfg("inplace", "stay")}, "v2": v2Quiet()})
			v := h.start(append([]string{"run"}, tc.args...), "UNSAFE_SKIP_BACKUP=true")
			started := func(version string) string { return version + " start " + strings.Join(tc.args, " ") }
			if !tc.skip {
				v.waitLog(started("v2"))
				h.assertCurrent("upgrades/v2")
				v.stop()
				return
			}
			v.waitMsg("not applying upgrade-info.json: its height is in --unsafe-skip-upgrades; the node runs on")
			v.assertRunning()
			h.assertNoLog("genesis got TERM")
			h.assertCurrent("genesis")
			if n := h.countLog(started("genesis")); n != 1 {
				t.Fatalf("genesis started %d times, want once", n)
			}
			v.stop()
		})
	}
}
