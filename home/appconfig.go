package home

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pelletier/go-toml/v2"
)

// AppConfig is the node's app.toml, where an operator may set halt-height.
func (l Layout) AppConfig() string { return filepath.Join(l.Home, "config", "app.toml") }

// ConfiguredHaltHeight is app.toml's halt-height, 0 when the file or the key
// is absent. It is the operator's halt when the command line gives none, and
// vigil must know it: a --halt-height vigil adds for a scheduled upgrade
// overrides it in the node.
func (l Layout) ConfiguredHaltHeight() (int64, error) {
	b, err := os.ReadFile(l.AppConfig())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var c struct {
		HaltHeight uint64 `toml:"halt-height"`
	}
	if err := toml.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("halt-height in %s: %w", l.AppConfig(), err)
	}
	if c.HaltHeight > 1<<62 {
		return 0, fmt.Errorf("halt-height in %s: %d is not a height", l.AppConfig(), c.HaltHeight)
	}
	return int64(c.HaltHeight), nil
}
