//go:build linux

package main

// End-to-end tests of the commands scripts call around a node (issue 13 item 5): version before
// `init`, version -o json, init's config.toml.

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// runBare runs `vigil args...` with an empty environment plus env (env -i): no DAEMON_* at all.
func (h *nodeHome) runBare(args []string, env ...string) (*vigilProc, int) {
	h.t.Helper()
	v := h.startWrapped(append([]string{"env", "-i"}, env...), args)
	return v, v.wait()
}

// TestE2EVersionBeforeInit: vigil's version is printed and the command exits 0 whether or not an
// app can be run; the app's version is shown once one is installed, current or not.
func TestE2EVersionBeforeInit(t *testing.T) {
	t.Parallel()
	h := &nodeHome{t: t, dir: t.TempDir(), out: t.TempDir()}
	for _, tc := range []struct {
		desc string
		run  func() (*vigilProc, int)
	}{
		{"no environment", func() (*vigilProc, int) { return h.runBare([]string{"version"}) }},
		{"empty home", func() (*vigilProc, int) { return h.run([]string{"version"}) }},
	} {
		v, code := tc.run()
		if code != 0 || !strings.HasPrefix(v.stdoutText(), "vigil version: ") {
			t.Fatalf("%s: exit %d, stdout:\n%s\nstderr:\n%s", tc.desc, code, v.stdoutText(), v.stderrText())
		}
		if !strings.Contains(v.stderrText(), "app version unknown") {
			t.Errorf("%s: stderr does not say the app's version is unknown:\n%s", tc.desc, v.stderrText())
		}
	}

	// A genesis binary but no current yet: the binary run would start answers; the home is not
	// changed.
	installBin(t, h.root("genesis", "bin", daemonName))
	v, code := h.run([]string{"version"})
	if code != 0 || !strings.Contains(v.stdoutText(), "fakeapp genesis") {
		t.Fatalf("genesis, no current: exit %d, stdout:\n%s\nstderr:\n%s", code, v.stdoutText(), v.stderrText())
	}
	if _, err := os.Lstat(h.root("current")); err == nil {
		t.Error("version created current")
	}
}

// decodeOne parses s as exactly one JSON object and nothing else.
func decodeOne(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, s)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON object:\n%s", s)
	}
	return m
}

// TestE2EVersionJSON: -o json prints one JSON object with cosmovisor's keys (cosmovisor_version,
// app_version: the app's own JSON) and vigil's, whatever the app and vigil write to stderr.
func TestE2EVersionJSON(t *testing.T) {
	t.Parallel()
	h := newHome(t, nil)
	must(t, os.Remove(h.root("current"))) // before current exists too
	for _, args := range [][]string{{"version", "-o", "json"}, {"version", "--output=json"}} {
		v, code := h.run(args, "COSMOVISOR_LOG_LEVEL=debug", "COSMOVISOR_LOG_FORMAT=text")
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr:\n%s", args, code, v.stderrText())
		}
		m := decodeOne(t, v.stdoutText())
		if m["cosmovisor_version"] == "" || m["vigil_version"] != m["cosmovisor_version"] {
			t.Errorf("%v: vigil's keys: %v", args, m)
		}
		app, ok := m["app_version"].(map[string]any)
		if !ok || app["version"] != "genesis" || app["name"] != "fakeapp" || app["cosmos_sdk_version"] != "v0.50.0" {
			t.Errorf("%v: app_version = %v, want the app's JSON", args, m["app_version"])
		}
		if _, has := m["app_version_error"]; has {
			t.Errorf("%v: app_version_error with a working app: %v", args, m)
		}
	}

	// No app installed: still one object, the reason under app_version_error, exit 0.
	bare := &nodeHome{t: t, dir: t.TempDir(), out: t.TempDir()}
	v, code := bare.run([]string{"version", "-o", "json"})
	m := decodeOne(t, v.stdoutText())
	if code != 0 || m["vigil_version"] == nil || m["app_version"] != nil || m["app_version_error"] == nil {
		t.Errorf("no app: exit %d, %v", code, m)
	}
	v, code = h.run([]string{"version", "-o", "yaml"})
	if code != 1 || !strings.Contains(v.stderrText(), "text or json") {
		t.Errorf("-o yaml: exit %d, stderr:\n%s", code, v.stderrText())
	}
}

var sourceNote = regexp.MustCompile(`  \((env|file|default)\)$`)

// settingsShown is `vigil config`'s output without the source notes and the config file line:
// the effective settings only.
func settingsShown(t *testing.T, v *vigilProc, code int) string {
	t.Helper()
	if code != 0 {
		t.Fatalf("config: exit %d, stderr:\n%s", code, v.stderrText())
	}
	var b bytes.Buffer
	for line := range strings.SplitSeq(v.stdoutText(), "\n") {
		if !strings.Contains(line, "Config File:") {
			b.WriteString(sourceNote.ReplaceAllString(line, "") + "\n")
		}
	}
	return b.String()
}

// TestE2EInitWritesConfig: init writes cosmovisor/config.toml with the effective settings; with
// only that file (no environment at all) `vigil config` shows the same settings; a second init
// never overwrites it.
func TestE2EInitWritesConfig(t *testing.T) {
	t.Parallel()
	h := &nodeHome{t: t, dir: t.TempDir(), out: t.TempDir()}
	env := []string{"DAEMON_POLL_INTERVAL=1s", "VIGIL_BACKUP_KEEP=4", "UNSAFE_SKIP_BACKUP=true", "DAEMON_DOWNLOAD_MAX_TIME=1h"}
	v, code := h.run([]string{"init", fakeBin}, env...)
	file := h.root("config.toml")
	if code != 0 || !strings.Contains(v.stdoutText(), "settings written to "+file) {
		t.Fatalf("init: exit %d, stdout:\n%s\nstderr:\n%s", code, v.stdoutText(), v.stderrText())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("init wrote no config.toml: %v", err)
	}
	for _, kv := range []string{`daemon_home = "` + h.dir + `"`, `daemon_name = "app"`, `daemon_poll_interval = "1s"`, "unsafe_skip_backup = true"} {
		if !strings.Contains(string(b), "\n"+kv+"\n") {
			t.Errorf("config.toml lacks %q:\n%s", kv, b)
		}
	}

	v, code = h.run([]string{"config"}, env...)
	want := settingsShown(t, v, code)
	v, code = h.runBare([]string{"config", "--cosmovisor-config", file})
	got := settingsShown(t, v, code)
	if got != want {
		t.Errorf("settings from the file differ from init's environment:\n got:\n%s\nwant:\n%s", got, want)
	}

	must(t, os.WriteFile(file, []byte("daemon_name = 'mine'\n"), 0o644))
	v, code = h.run([]string{"init", fakeBin})
	if code != 0 || !strings.Contains(v.stdoutText(), "already exists, left as is") {
		t.Fatalf("second init: exit %d, stdout:\n%s", code, v.stdoutText())
	}
	if b, _ := os.ReadFile(file); string(b) != "daemon_name = 'mine'\n" {
		t.Errorf("second init overwrote config.toml:\n%s", b)
	}
}
