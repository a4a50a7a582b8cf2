//go:build linux

package main

// End-to-end tests of the commands scripts call around a node (issue 13 item 5): version before
// `init`, version -o json, init's config.toml.

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
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

// TestE2EAddBatchUpgrade: add-batch-upgrade checks the whole list before
// installing anything, then installs and schedules it (always with force);
// show-manual-upgrades prints the batch; a malformed batch is an error that
// names the file.
func TestE2EAddBatchUpgrade(t *testing.T) {
	t.Parallel()
	h := newHome(t, nil)
	batch := h.path("data", "upgrade-info.json.batch")
	show := func() string {
		t.Helper()
		v, code := h.run([]string{"show-manual-upgrades"})
		if code != 0 {
			t.Fatalf("show-manual-upgrades: exit %d: %s", code, v.stderrText())
		}
		return v.stdoutText()
	}
	if got := show(); got != "[]\n" {
		t.Fatalf("no batch: show-manual-upgrades printed %q, want \"[]\\n\"", got)
	}
	csv := filepath.Join(t.TempDir(), "upgrades.csv")
	must(t, os.WriteFile(csv, []byte("v5, "+fakeBin+", 500\nv3,"+fakeBin+",350\n"), 0o644))
	badCSV := filepath.Join(t.TempDir(), "bad.csv")
	must(t, os.WriteFile(badCSV, []byte("v5,"+fakeBin+",x\n"), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "either --upgrade-file or --upgrade-list must be provided"},
		{[]string{"--upgrade-list", "v3:" + fakeBin + ":300", "--upgrade-file", csv}, "cannot be used together"},
		{[]string{"--upgrade-list", "v3:" + fakeBin + ":300,v4:/nonexistent:400"}, "invalid executable path for upgrade v4"},
		{[]string{"--upgrade-list", "v3:" + fakeBin + ":300,v4:" + fakeBin}, "argument at position 1 (v4:" + fakeBin + ") is invalid"},
		{[]string{"--upgrade-list=v3:" + fakeBin + ":300,v4:" + fakeBin + ":-4"}, "upgrade height at position 1 (-4) is invalid"},
		{[]string{"--upgrade-list", "v3:" + fakeBin + ":300,v4:" + fakeBin + ":300"}, "upgrades v3 and v4 cannot both be scheduled at height 300"},
		{[]string{"--upgrade-file", badCSV}, "upgrade height at position 0 (x) is invalid"},
		{[]string{"--upgrade-file", csv + ".missing"}, "error parsing upgrade CSV file " + csv + ".missing"},
		{[]string{"v3", fakeBin}, "add-batch-upgrade takes no arguments"},
	} {
		v, code := h.run(append([]string{"add-batch-upgrade"}, tc.args...))
		if code != 1 || !strings.Contains(v.stderrText(), tc.want) {
			t.Fatalf("add-batch-upgrade %q: exit %d, stderr %q; want exit 1 and %q", tc.args, code, v.stderrText(), tc.want)
		}
		if _, err := os.Stat(h.root("upgrades", "v3")); err == nil {
			t.Fatalf("add-batch-upgrade %q failed but installed upgrades/v3", tc.args)
		}
		if _, err := os.Stat(batch); err == nil {
			t.Fatalf("add-batch-upgrade %q failed but wrote %s", tc.args, batch)
		}
	}

	v, code := h.run([]string{"add-batch-upgrade", "--upgrade-list=V4:" + fakeBin + ":400,v3:" + fakeBin + ":300"})
	if code != 0 {
		t.Fatalf("add-batch-upgrade --upgrade-list: exit %d: %s", code, v.stderrText())
	}
	for _, want := range []string{"upgrade v3 scheduled at height 300", "upgrade v4 scheduled at height 400"} {
		if !strings.Contains(v.stdoutText(), want) {
			t.Fatalf("add-batch-upgrade printed %q, want %q", v.stdoutText(), want)
		}
	}
	for _, dir := range []string{"v3", "v4"} {
		if _, err := os.Stat(h.root("upgrades", dir, "bin", daemonName)); err != nil {
			t.Fatalf("upgrades/%s not installed: %v", dir, err)
		}
	}
	want := `[
  {
    "name": "v3",
    "time": "0001-01-01T00:00:00Z",
    "height": 300
  },
  {
    "name": "v4",
    "time": "0001-01-01T00:00:00Z",
    "height": 400
  }
]
`
	if got := show(); got != want {
		t.Fatalf("show-manual-upgrades printed\n%s\nwant\n%s", got, want)
	}
	if st, err := os.Stat(batch); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v; want mode 0600", batch, st, err)
	}
	// The CSV reschedules v3 (add-batch-upgrade always forces) and adds v5.
	if v, code := h.run([]string{"add-batch-upgrade", "--upgrade-file=" + csv}); code != 0 {
		t.Fatalf("add-batch-upgrade --upgrade-file: exit %d: %s", code, v.stderrText())
	}
	got := show()
	if !strings.Contains(got, `"height": 350`) || strings.Contains(got, `"height": 300`) || !strings.Contains(got, `"name": "v5"`) {
		t.Fatalf("after the CSV, show-manual-upgrades printed\n%s", got)
	}

	// status and doctor show the schedule; a plan whose binary went missing warns.
	must(t, os.RemoveAll(h.root("upgrades", "v5")))
	r := statusJSON(t, nil, "--home", h.dir, "--name", daemonName)
	if len(r.Scheduled) != 3 || r.Scheduled[0].Name != "v3" || r.Scheduled[0].Height != 350 || !r.Scheduled[0].BinaryOK ||
		r.Scheduled[2].Name != "v5" || r.Scheduled[2].BinaryOK {
		t.Fatalf("status --json scheduled = %+v", r.Scheduled)
	}
	text, _, _ := cliRun(t, nil, "status", "--home", h.dir, "--name", daemonName)
	if got := field(t, text, "scheduled"); got != "v3 at height 350 -> upgrades/v3; binary ready" {
		t.Fatalf("status scheduled line %q", got)
	}
	lines, _ := runDoctor(t, h, nil)
	wantFinding(t, lines, "OK", "scheduled upgrade v3 at height 350")
	wantFinding(t, lines, "WARN", "scheduled upgrade v5 at height 500", "is not installed")

	must(t, os.WriteFile(batch, []byte(`[{"name":"v3","height":`), 0o600))
	if lines, code := runDoctor(t, h, nil); code != 1 {
		t.Fatalf("doctor over a malformed batch: exit %d", code)
	} else {
		wantFinding(t, lines, "FAIL", batch)
	}
	if r := statusJSON(t, nil, "--home", h.dir, "--name", daemonName); !strings.Contains(r.ScheduledError, batch) {
		t.Fatalf("status --json scheduled_error = %q, want it to name %s", r.ScheduledError, batch)
	}
	for _, args := range [][]string{{"show-manual-upgrades"}, {"add-upgrade", "v6", fakeBin, "--upgrade-height", "600"}} {
		v, code := h.run(args)
		if code != 1 || !strings.Contains(v.stderrText(), batch) {
			t.Fatalf("%q over a malformed batch: exit %d, stderr %q; want exit 1 naming %s", args, code, v.stderrText(), batch)
		}
	}
	if _, err := os.Stat(h.root("upgrades", "v6")); err == nil {
		t.Fatal("add-upgrade installed v6 although the batch could not be read")
	}
}
