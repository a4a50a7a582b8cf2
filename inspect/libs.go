package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vigilhq/vigil/internal/binfile"
)

// The shared libraries of the binaries doctor judges: a CosmWasm node
// ships libwasmvm in upgrades/<name>/lib/, and a binary whose library is
// missing runs its `version` only if the library is found, then fails to
// start at the switch ("error while loading shared libraries"), halting a
// validator at the upgrade height. The lookup is the loader's, read from
// the files (binfile.ResolveLibs); the rule below only judges its result.

// LibCheck is where the loader would find one binary's libraries.
type LibCheck struct {
	LibDir      string       // the version's lib/: vigil puts it first in LD_LIBRARY_PATH
	LibraryPath string       // LD_LIBRARY_PATH as doctor saw it, after LibDir
	Libs        binfile.Libs // the resolution
	Err         error        // the binary could not be read
}

// libTarget is one binary whose libraries doctor judges, with the level a
// missing library gets and what it breaks.
type libTarget struct {
	what, bin, dir string
	level          Level
	breaks         string
}

// libTargets lists, each binary once, the binaries that will run: current,
// the pending upgrade, the scheduled ones, then the other staged ones.
// Only runnable binaries: the other checks say what is wrong with the rest.
func libTargets(r Report) []libTarget {
	var out []libTarget
	seen := map[string]bool{}
	add := func(t libTarget) {
		if !seen[t.bin] {
			seen[t.bin] = true
			out = append(out, t)
		}
	}
	l, c := r.Layout, r.Current
	if c.Err == nil && c.BinErr == nil && c.Bin != "" {
		add(libTarget{"current binary", c.Bin, c.Dir, Fail, "the node cannot start again (a restart, a reboot)"})
	}
	if p := r.Pending; p != nil && p.State == PlanPending && p.BinaryOK {
		add(libTarget{fmt.Sprintf("pending upgrade %s at height %d", p.Name, p.Height), p.Binary, l.UpgradeDir(p.Dir), Fail,
			"the node will not start after the switch and stays halted at the upgrade height"})
	}
	for _, s := range r.Scheduled {
		if s.Dir != "" && s.BinaryOK {
			add(libTarget{fmt.Sprintf("scheduled upgrade %s at height %d", s.Name, s.Height), s.Binary, l.UpgradeDir(s.Dir), Warn,
				"the node will not start after the switch at that height"})
		}
	}
	for _, s := range r.Staged {
		if !s.Current && s.OK && !(l.Recase && s.Dir != strings.ToLower(s.Dir)) {
			add(libTarget{"upgrades/" + s.Dir, s.Bin, l.UpgradeDir(s.Dir), Warn, "the node will not start when it is switched to"})
		}
	}
	return out
}

// gatherLibs resolves the libraries of every binary libTargets lists, with
// this process's LD_LIBRARY_PATH standing for vigil's (doctor is usually
// run with the service's environment, or none). Only on Linux: elsewhere
// the loader is another one.
func gatherLibs(r Report) map[string]LibCheck {
	if runtime.GOOS != "linux" {
		return nil
	}
	env := os.Getenv("LD_LIBRARY_PATH")
	sys := binfile.SystemSearch()
	out := map[string]LibCheck{}
	for _, t := range libTargets(r) {
		lc := LibCheck{LibDir: r.Layout.LibDir(t.dir), LibraryPath: env}
		s := sys
		// As home.ChildEnv builds it; $ORIGIN in LD_LIBRARY_PATH is the binary's directory.
		s.LibraryPath = append([]string{lc.LibDir}, binfile.SplitPath(env, filepath.Dir(t.bin))...)
		lc.Libs, lc.Err = binfile.ResolveLibs(t.bin, s)
		out[t.bin] = lc
	}
	return out
}

// CheckLibs judges whether each binary that will run finds its shared
// libraries: a missing one fails for the binaries that run now or at the
// pending upgrade, and warns for those that run later (there is time to
// add it).
func CheckLibs(r Report) []Finding {
	if r.Checks == nil || r.Checks.Libs == nil {
		return nil
	}
	var out []Finding
	for _, t := range libTargets(r) {
		lc, ok := r.Checks.Libs[t.bin]
		if !ok {
			continue
		}
		libs := lc.Libs
		miss := libs.Missing()
		switch {
		case lc.Err != nil:
			out = append(out, finding(Warn, "%s: cannot read which shared libraries %s needs: %v", t.what, t.bin, lc.Err))
			continue
		case !libs.Dynamic || (len(libs.Libs) == 0 && !libs.InterpMissing):
			out = append(out, finding(OK, "%s: %s needs no shared libraries (static binary or script)", t.what, t.bin))
			continue
		case libs.InterpMissing:
			out = append(out, finding(t.level, "%s: %s needs the program loader %s, which does not exist: %s", t.what, t.bin, libs.Interp, t.breaks))
		}
		for _, m := range miss {
			by := ""
			if m.By != t.bin {
				by = " (through " + m.By + ")"
			}
			env := ""
			if lc.LibraryPath != "" {
				env = fmt.Sprintf("; LD_LIBRARY_PATH=%s is doctor's own, the service's may differ", lc.LibraryPath)
			}
			out = append(out, finding(t.level, "%s: %s needs %s%s, found in none of %s%s: %s; put it in %s (vigil puts that first in LD_LIBRARY_PATH)",
				t.what, t.bin, m.Name, by, strings.Join(m.Searched, ", "), env, t.breaks, lc.LibDir))
		}
		if len(miss) == 0 && !libs.InterpMissing {
			fromLib := 0
			for _, l := range libs.Libs {
				if filepath.Dir(l.Path) == lc.LibDir {
					fromLib++
				}
			}
			where := ""
			if fromLib > 0 {
				where = fmt.Sprintf(" (%d from %s)", fromLib, lc.LibDir)
			}
			out = append(out, finding(OK, "%s: %s finds its %d shared libraries%s", t.what, t.bin, len(libs.Libs), where))
		}
	}
	return out
}
