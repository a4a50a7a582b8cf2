// Package testutil holds what several packages' tests need.
package testutil

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer safe for one writer goroutine (a logger) and a
// reading test at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Count reports how many times sub occurs in what was written so far.
func (s *Buffer) Count(sub string) int { return strings.Count(s.String(), sub) }
