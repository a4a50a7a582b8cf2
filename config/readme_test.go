package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// readmeSettings parses the table of README.md's "## Settings" section (up to the next "## ")
// into variable -> default, backticks removed, and the order of the rows.
func readmeSettings(t *testing.T) (defaults map[string]string, order []string) {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Settings\n")
	if !ok {
		t.Fatal(`README.md has no "## Settings" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	defaults = map[string]string{}
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "| `") || len(cells) < 4 {
			continue // prose, the header or the separator row
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if _, dup := defaults[name]; dup {
			t.Errorf("README: %s has two rows", name)
		}
		defaults[name] = strings.ReplaceAll(strings.TrimSpace(cells[2]), "`", "")
		order = append(order, name)
	}
	if len(defaults) == 0 {
		t.Fatal("README: no rows found in the Settings table")
	}
	return defaults, order
}

// The README's settings table names every declared setting with its declared default, and
// nothing else.
func TestREADMESettingsTable(t *testing.T) {
	readme, _ := readmeSettings(t)
	declared := map[string]bool{}
	for _, s := range Settings {
		declared[s.Name] = true
		got, ok := readme[s.Name]
		switch {
		case !ok:
			t.Errorf("README: no row for %s (default %q)", s.Name, s.Default)
		case got != s.Default:
			t.Errorf("README: %s default is %q, declared %q", s.Name, got, s.Default)
		}
	}
	for name := range readme {
		if !declared[name] {
			t.Errorf("README: row %s names no declared setting", name)
		}
	}
}

// A default written as a plain value is the typed default: setting it explicitly changes nothing.
// The others describe what the default does.
func TestDeclaredDefaultIsTheDefault(t *testing.T) {
	descriptive := map[string]bool{EnvHome: true, EnvName: true, EnvBackupDir: true, EnvCustomPreupgrade: true,
		EnvRPCAddress: true, EnvListen: true, EnvTimeFormat: true}
	def, err := Load(envOf(minimalEnv()), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings {
		if descriptive[s.Name] {
			continue
		}
		env := minimalEnv()
		env[s.Name] = s.Default
		c, err := Load(envOf(env), "")
		if err != nil {
			t.Errorf("%s=%q (the declared default): %v", s.Name, s.Default, err)
			continue
		}
		if !reflect.DeepEqual(withoutMeta(c), withoutMeta(def)) {
			t.Errorf("%s=%q (the declared default) changes the config:\n got %+v\nwant %+v", s.Name, s.Default, withoutMeta(c), withoutMeta(def))
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 300 * time.Millisecond: "300ms", 30 * time.Second: "30s", 15 * time.Minute: "15m",
		90 * time.Second: "1m30s", 2 * time.Hour: "2h", 2*time.Hour + 5*time.Minute: "2h5m",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// Every setting is declared once, parses, and prints.
func TestSettingsTableWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings {
		if seen[s.Name] {
			t.Errorf("%s declared twice", s.Name)
		}
		seen[s.Name] = true
		if s.Name == "" || s.Default == "" || s.Doc == "" || s.load == nil || s.show == nil {
			t.Errorf("incomplete declaration: %+v", s)
		}
		if ignoredFileKeys[strings.ToLower(s.Name)] {
			t.Errorf("%s is both declared and ignored in files", s.Name)
		}
	}
}
