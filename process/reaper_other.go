//go:build unix && !linux

package process

import (
	"errors"
	"log/slog"
)

// Reaper is Linux-only; see reaper_linux.go.
type Reaper struct{}

var errNoReaper = errors.New("process: the orphan reaper is only supported on Linux")

// StartReaper fails outside Linux.
func StartReaper(*slog.Logger) (*Reaper, error) { return nil, errNoReaper }

// Stop does nothing.
func (*Reaper) Stop() {}

// Reaped returns 0.
func (*Reaper) Reaped() uint64 { return 0 }

// SetChildSubreaper fails outside Linux.
func SetChildSubreaper() error { return errNoReaper }
