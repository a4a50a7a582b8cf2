//go:build unix && !linux

package process

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Without /proc there are no start times to tell a stray from a stranger.
func identOf(int, bool) Ident { return Ident{} }

// EndStray is Linux-only: it needs /proc and pidfds.
func EndStray(context.Context, Ident, time.Duration) (StrayResult, error) {
	return StrayResult{}, fmt.Errorf("process: ending a stray process: %w", errors.ErrUnsupported)
}
