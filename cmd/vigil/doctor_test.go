//go:build linux

package main

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"runtime"
	"strings"
	"testing"
)

// runDoctor runs `vigil doctor` on h (no DAEMON_* in the environment) and returns its findings
// (stdout lines) and exit code.
func runDoctor(t *testing.T, h *nodeHome, extraEnv []string, args ...string) ([]string, int) {
	t.Helper()
	out, errOut, code := cliRun(t, extraEnv, append([]string{"doctor", "--home", h.dir, "--timeout", "2s"}, args...)...)
	t.Logf("vigil doctor (exit %d):\n%s%s", code, out, errOut)
	return strings.Split(strings.TrimRight(out, "\n"), "\n"), code
}

// wantFinding fails unless one line has this level and contains every part.
func wantFinding(t *testing.T, lines []string, level string, parts ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.HasPrefix(l, level+" ") {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return
		}
	}
	t.Errorf("no %s line with %q in:\n%s", level, parts, strings.Join(lines, "\n"))
}

func noFinding(t *testing.T, lines []string, level string) {
	t.Helper()
	for _, l := range lines {
		if strings.HasPrefix(l, level+" ") {
			t.Errorf("unexpected %s: %s", level, l)
		}
	}
}

func TestDoctorHealthy(t *testing.T) {
	t.Parallel()
	h := newHome(t, nil)
	h.writeInfo("v2", 100)
	lines, code := runDoctor(t, h, nil)
	if code != 0 {
		t.Fatalf("exit %d on a healthy home, want 0", code)
	}
	noFinding(t, lines, levelFail)
	noFinding(t, lines, levelWarn)
	wantFinding(t, lines, levelOK, "current -> genesis", "relative")
	wantFinding(t, lines, levelOK, "current binary", "fakeapp genesis")
	wantFinding(t, lines, levelOK, "upgrades/v2", "fakeapp v2")
	wantFinding(t, lines, levelOK, "pending upgrade v2 at height 100", "is ready")
	wantFinding(t, lines, levelOK, "backup directory", "writable")
	wantFinding(t, lines, levelOK, "data directory")
}

func TestDoctorBroken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		env       []string
		breakHome func(t *testing.T, h *nodeHome)
		want      []string // parts of the FAIL line
	}{
		{"not executable", nil, func(t *testing.T, h *nodeHome) {
			must(t, os.Chmod(h.root("upgrades", "v2", "bin", daemonName), 0o644))
		}, []string{"upgrades/v2", "not executable", "chmod +x"}},

		{"other arch", nil, func(t *testing.T, h *nodeHome) {
			flipMachine(t, h.root("upgrades", "v2", "bin", daemonName))
		}, []string{"upgrades/v2", "is built for"}},

		{"version hangs", nil, func(t *testing.T, h *nodeHome) {
			bin := h.root("upgrades", "v2", "bin", daemonName)
			must(t, os.Remove(bin))
			must(t, os.WriteFile(bin, []byte("#!/bin/sh\nsleep 30\n"), 0o755))
		}, []string{"upgrades/v2", "did not finish within 2s"}},

		{"case mismatch", nil, func(t *testing.T, h *nodeHome) {
			must(t, os.Rename(h.root("upgrades", "v2"), h.root("upgrades", "V2")))
			h.writeInfo("V2", 100) // lowercased to v2, which does not exist
		}, []string{"pending upgrade V2 at height 100", "upgrades/v2", "only upgrades/V2 exists"}},

		{"case mismatch without recase", []string{"COSMOVISOR_DISABLE_RECASE=true"}, func(t *testing.T, h *nodeHome) {
			h.writeInfo("V2", 100) // kept as V2; only v2 exists
		}, []string{"upgrades/V2", "COSMOVISOR_DISABLE_RECASE is on", "only upgrades/v2 exists"}},

		{"dangling current", nil, func(t *testing.T, h *nodeHome) {
			must(t, os.Remove(h.root("current")))
			must(t, os.Symlink("upgrades/gone", h.root("current")))
		}, []string{"upgrades/gone", "does not resolve"}},

		{"missing binary, no downloads", nil, func(t *testing.T, h *nodeHome) {
			h.writeInfo("v3", 200)
		}, []string{"pending upgrade v3 at height 200", "missing and downloads are off"}},

		{"no data dir", nil, func(t *testing.T, h *nodeHome) {
			must(t, os.Remove(h.path("data")))
		}, []string{"data directory", "refuses to start"}},

		{"bad pre-upgrade script", []string{"COSMOVISOR_CUSTOM_PREUPGRADE=pre.sh"}, func(t *testing.T, h *nodeHome) {
			must(t, os.WriteFile(h.root("pre.sh"), []byte("#!/bin/sh\n"), 0o644))
		}, []string{"COSMOVISOR_CUSTOM_PREUPGRADE", "not executable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t, nil)
			tc.breakHome(t, h)
			lines, code := runDoctor(t, h, tc.env)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			wantFinding(t, lines, levelFail, tc.want...)
		})
	}
}

// With downloads on, a missing binary is a warning, not a failure.
func TestDoctorDownloadsOn(t *testing.T) {
	t.Parallel()
	h := newHome(t, nil)
	h.writeInfo("v3", 200)
	lines, code := runDoctor(t, h, []string{"DAEMON_ALLOW_DOWNLOAD_BINARIES=true"})
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	wantFinding(t, lines, levelWarn, "v3", "will download it")
}

// flipMachine rewrites the ELF e_machine of a binary to another architecture's.
func flipMachine(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	other := elf.EM_AARCH64
	if runtime.GOARCH == "arm64" {
		other = elf.EM_X86_64
	}
	binary.LittleEndian.PutUint16(b[18:20], uint16(other)) // e_machine; both are little-endian
	must(t, os.WriteFile(path, b, 0o755))
}
