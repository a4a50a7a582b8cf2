package main

import (
	"slices"
	"testing"

	"github.com/vigilhq/vigil/config"
)

func TestExtractConfigFlag(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantPath string
		wantRest []string
		wantErr  bool
	}{
		{"none", []string{"start", "--home", "x"}, "", []string{"start", "--home", "x"}, false},
		{"empty", nil, "", []string{}, false},
		{"double dash", []string{"--cosmovisor-config", "/c.toml", "start"}, "/c.toml", []string{"start"}, false},
		{"single dash", []string{"start", "-cosmovisor-config", "/c.toml"}, "/c.toml", []string{"start"}, false},
		{"equals", []string{"start", "--cosmovisor-config=/c.toml", "--home", "x"}, "/c.toml", []string{"start", "--home", "x"}, false},
		{"single dash equals", []string{"-cosmovisor-config=/c.toml"}, "/c.toml", []string{}, false},
		{"case insensitive", []string{"start", "--Cosmovisor-Config", "/c.toml", "--x"}, "/c.toml", []string{"start", "--x"}, false},
		{"first only", []string{"--cosmovisor-config", "/a", "start", "--cosmovisor-config", "/b"}, "/a", []string{"start", "--cosmovisor-config", "/b"}, false},
		{"other args untouched", []string{"start", "--home", "x", "-c", "y", "--cosmovisor-configx", "z"}, "", []string{"start", "--home", "x", "-c", "y", "--cosmovisor-configx", "z"}, false},
		{"middle", []string{"start", "--home", "x", "--cosmovisor-config", "/c", "--trace"}, "/c", []string{"start", "--home", "x", "--trace"}, false},
		{"missing value", []string{"start", "--cosmovisor-config"}, "", nil, true},
		{"empty equals", []string{"--cosmovisor-config=", "start"}, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := slices.Clone(tt.args)
			path, rest, err := ExtractConfigFlag(tt.args)
			if tt.wantErr {
				if err == nil || err.Error() != "--cosmovisor-config requires an argument" {
					t.Fatalf("err = %v, want requires an argument", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if path != tt.wantPath {
				t.Errorf("path = %q, want %q", path, tt.wantPath)
			}
			if !slices.Equal(rest, tt.wantRest) || rest == nil {
				t.Errorf("rest = %#v, want %#v", rest, tt.wantRest)
			}
			if !slices.Equal(tt.args, orig) {
				t.Errorf("input modified: %q, was %q", tt.args, orig)
			}
		})
	}
}

// defaultConfig is the configuration of home /h and name appd with every other setting at its
// default, without the record of where values came from.
func defaultConfig() config.Config {
	env := map[string]string{config.EnvHome: "/h", config.EnvName: "appd"}
	c, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "")
	if err != nil {
		panic(err)
	}
	c.Sources, c.ConfigFile = nil, ""
	return c
}
