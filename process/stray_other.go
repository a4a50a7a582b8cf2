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

// MarkEnv returns env unchanged: without /proc no later vigil could read
// the mark.
func MarkEnv(env []string, _ string) []string { return env }

// Holders is Linux-only: it needs /proc.
func Holders(string) ([]Holder, error) {
	return nil, fmt.Errorf("process: finding a file's holders: %w", errors.ErrUnsupported)
}

// OrphanOf is Linux-only: it needs /proc; nothing is ever an orphan here.
func OrphanOf(int, string) (Ident, bool, string, error) {
	return Ident{}, false, "unsupported on this system", nil
}

// MarkedOrphans is Linux-only: it needs /proc; nothing is ever found here.
func MarkedOrphans(string) ([]Orphan, error) { return nil, nil }
