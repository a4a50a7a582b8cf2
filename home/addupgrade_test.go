package home

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/plan"
)

func TestParseUpgradeList(t *testing.T) {
	got, err := ParseUpgradeList([]string{"v2:/bin/a:100", "V3:/bin/b:200"})
	want := []Upgrade{{"v2", "/bin/a", 100}, {"V3", "/bin/b", 200}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseUpgradeList = %+v, %v; want %+v", got, err, want)
	}
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "either --upgrade-file or --upgrade-list must be provided"},
		{[]string{"v2:/bin/a:100", "v3:/bin/b"}, "argument at position 1 (v3:/bin/b) is invalid"},
		{[]string{"v2:/c:/bin/a:100"}, "argument at position 0 (v2:/c:/bin/a:100) is invalid"},
		{[]string{":/bin/a:100"}, "argument at position 0"},
		{[]string{"v2:/bin/a:ten"}, "upgrade height at position 0 (ten) is invalid"},
		{[]string{"v2:/bin/a:0"}, "upgrade height at position 0 (0) is invalid"},
		{[]string{"v2:/bin/a:-5"}, "upgrade height at position 0 (-5) is invalid"},
	} {
		if _, err := ParseUpgradeList(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseUpgradeList(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestReadUpgradeCSV(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := ReadUpgradeCSV(write("ok.csv", "v2, /bin/a, 100\nv3,/bin/b,200\n"))
	want := []Upgrade{{"v2", "/bin/a", 100}, {"v3", "/bin/b", 200}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadUpgradeCSV = %+v, %v; want %+v", got, err, want)
	}
	for _, tc := range []struct{ file, content, want string }{
		{"fields.csv", "v2,/bin/a,100\nv3,/bin/b\n", "argument at position 1 (v3,/bin/b) is invalid"},
		{"height.csv", "v2,/bin/a,x\n", "upgrade height at position 0 (x) is invalid"},
		{"quote.csv", "v2,\"/bin/a,100\n", "error parsing upgrade CSV file"},
		{"empty.csv", "", "no upgrades"},
	} {
		p := write(tc.file, tc.content)
		if _, err := ReadUpgradeCSV(p); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file containing %q", tc.file, err, tc.want)
		}
	}
	missing := filepath.Join(dir, "missing.csv")
	if _, err := ReadUpgradeCSV(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "error parsing upgrade CSV file "+missing) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestAddUpgradesChecksEverythingFirst(t *testing.T) {
	l := homeWithData(t)
	good := l.Bin(l.GenesisDir())
	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, []byte("not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.Schedule([]plan.Plan{{Name: "old", Height: 500}}, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc  string
		us    []Upgrade
		force bool
		want  string
	}{
		{"a binary that cannot run", []Upgrade{{"v3", good, 100}, {"v4", garbage, 200}}, true, "upgrade v4"},
		{"a missing binary", []Upgrade{{"v3", good, 100}, {"v4", "/nonexistent", 200}}, true, "invalid executable path for upgrade v4"},
		{"a height taken", []Upgrade{{"v3", good, 100}, {"v4", good, 500}}, true, "upgrades old and v4 cannot both be scheduled at height 500"},
		{"a name twice", []Upgrade{{"v3", good, 100}, {"V3", good, 200}}, true, "given twice"},
		{"an existing binary without force", []Upgrade{{"v3", good, 100}, {"v2", good, 200}}, false, "file already exists"},
		{"a bad name", []Upgrade{{"v3", good, 100}, {"..", good, 200}}, true, "outside"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if _, err := l.AddUpgrades(tc.us, tc.force, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AddUpgrades = %v, want an error containing %q", err, tc.want)
			}
			if _, err := os.Stat(l.UpgradeDir("v3")); err == nil {
				t.Fatal("upgrades/v3 was installed although the batch was refused")
			}
			if got := scheduled(t, l); len(got) != 1 {
				t.Fatalf("schedule changed: %+v", got)
			}
		})
	}
}

func TestAddUpgradesInstallsAndSchedules(t *testing.T) {
	l := homeWithData(t)
	exe := l.Bin(l.GenesisDir())
	added, err := l.AddUpgrades([]Upgrade{{"V3", exe, 300}, {"v4", exe, 0}, {"some upgrade", exe, 200}}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if added[0].Plan.Name != "v3" || added[0].Dir != "v3" || added[0].Bin != l.Bin(l.UpgradeDir("v3")) {
		t.Fatalf("added[0] = %+v", added[0])
	}
	for _, a := range added {
		if _, err := CheckBinary(a.Bin); err != nil {
			t.Fatalf("%s: %v", a.Bin, err)
		}
	}
	// The plan keeps the name (lowercased), not its escaped directory:
	// the reactor maps it to its directory again.
	want := []plan.Plan{{Name: "some upgrade", Height: 200}, {Name: "v3", Height: 300}}
	if got := scheduled(t, l); !reflect.DeepEqual(got, want) {
		t.Fatalf("Scheduled = %+v, want %+v (v4 had no height)", got, want)
	}
	if _, err := l.AddUpgrades([]Upgrade{{"v3", exe, 350}}, false, nil); err == nil {
		t.Fatal("re-adding v3 without force succeeded")
	}
	if _, err := l.AddUpgrades([]Upgrade{{"v3", exe, 350}}, true, nil); err != nil {
		t.Fatalf("force: %v", err)
	}
	if got := scheduled(t, l); got[1] != (plan.Plan{Name: "v3", Height: 350}) {
		t.Fatalf("after force: %+v", got)
	}
}
