package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

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
		value, err := tomlValue(s.file(&c))
		if err != nil {
			return nil, fmt.Errorf("config file key %s: %w", key, err)
		}
		fmt.Fprintf(&b, "\n# %s (default: %s)\n%s = %s\n", s.Doc, s.Default, key, value)
	}
	return b.Bytes(), nil
}

// tomlValue renders one scalar setting as TOML. The settings are strings,
// booleans and integers only: go-toml's encoder (the decoder reads the file)
// would cost the binary more than these lines.
func tomlValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return tomlString(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	}
	return "", fmt.Errorf("no TOML form for %T", v)
}

// tomlString is a TOML basic string: quotes, backslashes and control
// characters escaped, everything else as is (TOML is UTF-8).
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
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
