package inspect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/home"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "appd")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersionJSON(t *testing.T) {
	for _, tc := range []struct {
		desc, body, want, wantErr string
	}{
		{"stdout only, stderr noise ignored", `echo 'WARN {"not":"this"}' >&2; echo '{"version": "1.2.3"}'`, `{"version":"1.2.3"}`, ""},
		{"the args reach the app", `echo "{\"args\": \"$*\"}"`, `{"args":"version --long --output json --home /h"}`, ""},
		{"a notice before the JSON", `echo 'some notice'; echo '{"version":"1"}'`, `{"version":"1"}`, ""},
		{"old SDK: on stderr", `echo '{"version":"0.45"}' >&2`, `{"version":"0.45"}`, ""},
		{"no JSON", `echo 'v1.2.3'`, "", "printed no JSON object"},
		{"fails", `echo 'unknown flag: --long' >&2; exit 3`, "", "exit status 3: unknown flag: --long"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := VersionJSON(script(t, tc.body), []string{"--home", "/h"}, 10*time.Second)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("= %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestAppBin(t *testing.T) {
	l := home.Layout{Home: t.TempDir(), Name: "appd"}
	if _, err := AppBin(l); err == nil || !strings.Contains(err.Error(), "vigil init") {
		t.Fatalf("empty home: err = %v, want the init hint", err)
	}
	gen := l.Bin(l.GenesisDir())
	if err := os.MkdirAll(filepath.Dir(gen), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gen, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if bin, err := AppBin(l); err != nil || bin != gen {
		t.Fatalf("no current: = %q, %v; want genesis %s", bin, err, gen)
	}
	if _, err := os.Lstat(l.Current()); err == nil {
		t.Error("AppBin created current")
	}
	up := l.Bin(l.UpgradeDir("v2"))
	if err := os.MkdirAll(filepath.Dir(up), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(up, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.Switch("v2"); err != nil {
		t.Fatal(err)
	}
	if bin, err := AppBin(l); err != nil || bin != up {
		t.Fatalf("current -> v2: = %q, %v; want %s", bin, err, up)
	}
}
