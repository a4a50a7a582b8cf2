package home

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pelletier/go-toml/v2"

	"github.com/vigilhq/vigil/height"
	"github.com/vigilhq/vigil/plan"
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

// OperatorHalt is the halt height the operator gave the node: --halt-height
// among its arguments (the node's flag wins over app.toml), else app.toml's
// halt-height; 0 = none.
func (l Layout) OperatorHalt(nodeArgs []string) (int64, error) {
	h, given, err := plan.HaltHeight(nodeArgs)
	if err != nil {
		return 0, fmt.Errorf("the node's arguments: %w", err)
	}
	if given {
		return h, nil
	}
	return l.ConfiguredHaltHeight()
}

// CommittedHeight is the height the node's app has committed, read from its
// database with the node stopped (height.Committed).
func (l Layout) CommittedHeight() (int64, error) { return height.Committed(l.DataDir()) }
