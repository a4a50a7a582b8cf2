package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/vigilhq/vigil/internal/atomicfile"
)

// FileName is the config file `vigil init` writes in Root(), where `cosmovisor init` writes it.
const FileName = "config.toml"

// File renders c as a config file for --cosmovisor-config: every setting of Settings under its
// key (the variable's name in lower case), in table order, each after its doc line. Load of the
// file with an empty environment gives c back. cosmovisor reads it too: it ignores the keys it
// does not know and takes durations as strings.
func (c Config) File() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# vigil (and cosmovisor) settings, written by `vigil init`. Use it with\n" +
		"# --cosmovisor-config " + filepath.Join(c.Root(), FileName) + "; the environment wins over it.\n")
	for _, s := range Settings {
		key := strings.ToLower(s.Name)
		line, err := toml.Marshal(map[string]any{key: s.file(&c)})
		if err != nil {
			return nil, fmt.Errorf("config file key %s: %w", key, err)
		}
		fmt.Fprintf(&b, "\n# %s (default: %s)\n", s.Doc, s.Default)
		b.Write(line)
	}
	return b.Bytes(), nil
}

// WriteFile writes File() to path unless a file is there already, which it never replaces
// (cosmovisor asks before overwriting; a script cannot answer). It reports whether it wrote.
func (c Config) WriteFile(path string) (bool, error) {
	b, err := c.File()
	if err != nil {
		return false, err
	}
	wrote, err := atomicfile.WriteNew(path, b, 0o644)
	if err != nil {
		return false, fmt.Errorf("write the config file: %w", err)
	}
	return wrote, nil
}
