package home

import (
	"os"
	"path/filepath"
	"testing"
)

func TestConfiguredHaltHeight(t *testing.T) {
	for _, tc := range []struct {
		desc, file string // file "" = no app.toml
		want       int64
		err        bool
	}{
		{desc: "no app.toml"},
		{desc: "no key", file: "minimum-gas-prices = \"0stake\"\n[api]\nenable = true\n"},
		{desc: "zero", file: "halt-height = 0\n"},
		{desc: "set", file: "pruning = \"default\"\nhalt-height = 1200\nhalt-time = 0\n[api]\nenable = false\n", want: 1200},
		{desc: "malformed", file: "halt-height = \n", err: true},
		{desc: "negative", file: "halt-height = -3\n", err: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			l := Layout{Home: t.TempDir(), Name: "appd"}
			if tc.file != "" {
				if err := os.MkdirAll(filepath.Dir(l.AppConfig()), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(l.AppConfig(), []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := l.ConfiguredHaltHeight()
			if got != tc.want || (err != nil) != tc.err {
				t.Fatalf("ConfiguredHaltHeight = %d, %v; want %d, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}
