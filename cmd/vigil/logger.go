package main

import (
	"bytes"
	"io"
	"log/slog"
	"time"

	"github.com/vigilhq/vigil/config"
)

// NewLogger builds vigil's logger from the config, writing to w (stderr: stdout belongs to the
// node). LogFormat "json" selects slog's JSONHandler, anything else the TextHandler; records below
// LogLevel are dropped; the time is formatted with TimeLayout() and left out when that is "".
// DisableLogs gives a logger that discards everything. The level token is coloured only for text
// output when cfg.ColorLogs is set and isTerminal is true: escape codes in a file or a journal are
// noise, and in JSON they would corrupt the document.
func NewLogger(cfg config.Config, w io.Writer, isTerminal bool) *slog.Logger {
	if cfg.DisableLogs {
		return slog.New(slog.DiscardHandler)
	}
	layout := cfg.TimeLayout()
	if cfg.LogFormat == "json" && cfg.Sources[config.EnvTimeFormat] == config.SourceDefault {
		// JSON goes to log collectors: the cosmovisor default (kitchen,
		// "3:04PM") has no date. An explicit setting is still honoured.
		layout = time.RFC3339Nano
	}
	opts := &slog.HandlerOptions{
		Level: cfg.LogLevel,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 || a.Key != slog.TimeKey || a.Value.Kind() != slog.KindTime {
				return a
			}
			if layout == "" {
				return slog.Attr{}
			}
			return slog.String(slog.TimeKey, a.Value.Time().Format(layout))
		},
	}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	if cfg.ColorLogs && isTerminal {
		w = levelColorWriter{w: w}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

const (
	ansiReset  = "\x1b[0m"
	ansiGrey   = "\x1b[90m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiRed    = "\x1b[31m"
)

var levelToken = []byte("level=")

// levelColorWriter colours the `level=XXX` token of each TextHandler record. It relies on the
// handler writing one whole record per Write call, under the handler's own lock, so it needs no
// lock of its own. The text handler would quote a level value containing escape codes, which is
// why the colour is added here rather than in ReplaceAttr.
type levelColorWriter struct {
	w io.Writer
}

func (cw levelColorWriter) Write(p []byte) (int, error) {
	start := -1
	if bytes.HasPrefix(p, levelToken) {
		start = 0
	} else if i := bytes.Index(p, []byte(" level=")); i >= 0 {
		start = i + 1
	}
	if start < 0 {
		return cw.w.Write(p)
	}
	end := start + len(levelToken)
	for end < len(p) && p[end] != ' ' && p[end] != '\n' {
		end++
	}
	color := levelColor(p[start+len(levelToken) : end])
	if color == "" {
		return cw.w.Write(p)
	}
	buf := make([]byte, 0, len(p)+len(color)+len(ansiReset))
	buf = append(buf, p[:start]...)
	buf = append(buf, color...)
	buf = append(buf, p[start:end]...)
	buf = append(buf, ansiReset...)
	buf = append(buf, p[end:]...)
	if _, err := cw.w.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// levelColor matches by prefix so that levels between the named ones ("INFO+2") get the colour
// of the level below them.
func levelColor(level []byte) string {
	switch {
	case bytes.HasPrefix(level, []byte("DEBUG")):
		return ansiGrey
	case bytes.HasPrefix(level, []byte("INFO")):
		return ansiGreen
	case bytes.HasPrefix(level, []byte("WARN")):
		return ansiYellow
	case bytes.HasPrefix(level, []byte("ERROR")):
		return ansiRed
	}
	return ""
}
