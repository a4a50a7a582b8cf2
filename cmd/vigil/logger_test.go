package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
)

func loggerConfig(mutate func(*config.Config)) config.Config {
	c := defaultConfig()
	if mutate != nil {
		mutate(&c)
	}
	return c
}

// textFields parses one TextHandler line into its key=value pairs (values without spaces only,
// which is all these tests log).
func textFields(t *testing.T, line string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range strings.Fields(line) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("not key=value: %q in %q", kv, line)
		}
		m[k] = v
	}
	return m
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestNewLoggerText(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(loggerConfig(nil), &buf, false)
	log.Info("upgrade_detected", "name", "v2", "height", 100)
	ls := lines(buf.String())
	if len(ls) != 1 {
		t.Fatalf("got %d lines: %q", len(ls), buf.String())
	}
	f := textFields(t, ls[0])
	if f["level"] != "INFO" || f["msg"] != "upgrade_detected" || f["name"] != "v2" || f["height"] != "100" {
		t.Errorf("fields = %v", f)
	}
	if _, err := time.Parse(time.Kitchen, f["time"]); err != nil {
		t.Errorf("time %q not in kitchen layout: %v", f["time"], err)
	}
	if !strings.HasPrefix(ls[0], "time=") {
		t.Errorf("line does not start with the time: %q", ls[0])
	}
}

func TestNewLoggerJSON(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(loggerConfig(func(c *config.Config) {
		c.LogFormat = "json"
		c.TimeFormat = "rfc3339nano"
		c.ColorLogs = true
	}), &buf, true) // colour requested on a terminal: JSON must stay plain
	log.Warn("backup_failed", "err", "disk full")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not JSON: %v: %q", err, buf.String())
	}
	if rec["level"] != "WARN" || rec["msg"] != "backup_failed" || rec["err"] != "disk full" {
		t.Errorf("record = %v", rec)
	}
	ts, _ := rec["time"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("time %q not RFC3339Nano: %v", ts, err)
	}
	if bytes.Contains(buf.Bytes(), []byte("\x1b[")) {
		t.Errorf("JSON output contains escape codes: %q", buf.String())
	}
}

func TestNewLoggerLevels(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  []string
	}{
		{slog.LevelDebug, []string{"DEBUG", "INFO", "WARN", "ERROR"}},
		{slog.LevelInfo, []string{"INFO", "WARN", "ERROR"}},
		{slog.LevelWarn, []string{"WARN", "ERROR"}},
		{slog.LevelError, []string{"ERROR"}},
	}
	for _, tt := range tests {
		for _, format := range []string{"text", "json"} {
			t.Run(tt.level.String()+"/"+format, func(t *testing.T) {
				var buf bytes.Buffer
				log := NewLogger(loggerConfig(func(c *config.Config) {
					c.LogLevel = tt.level
					c.LogFormat = format
				}), &buf, false)
				log.Debug("d")
				log.Info("i")
				log.Warn("w")
				log.Error("e")
				var got []string
				for _, l := range lines(buf.String()) {
					if format == "json" {
						var rec map[string]any
						if err := json.Unmarshal([]byte(l), &rec); err != nil {
							t.Fatalf("not JSON: %q", l)
						}
						got = append(got, rec["level"].(string))
					} else {
						got = append(got, textFields(t, l)["level"])
					}
				}
				if strings.Join(got, ",") != strings.Join(tt.want, ",") {
					t.Errorf("levels written = %v, want %v", got, tt.want)
				}
			})
		}
	}
}

func TestNewLoggerNoTime(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		log := NewLogger(loggerConfig(func(c *config.Config) {
			c.TimeFormat = ""
			c.LogFormat = format
		}), &buf, false)
		log.Info("hello", "k", "v")
		log.WithGroup("g").Info("grouped", "time", "user value")
		out := buf.String()
		first := lines(out)[0]
		if strings.Contains(first, "time") {
			t.Errorf("%s: time not omitted: %q", format, first)
		}
		if format == "text" && !strings.HasPrefix(first, "level=INFO msg=hello k=v") {
			t.Errorf("text line = %q", first)
		}
		// A user attribute named "time" inside a group is not the record time and stays.
		if !strings.Contains(out, "user value") {
			t.Errorf("%s: grouped time attribute dropped: %q", format, out)
		}
	}
}

func TestNewLoggerColour(t *testing.T) {
	tests := []struct {
		colorLogs, terminal, wantColour bool
	}{
		{true, true, true},
		{true, false, false},
		{false, true, false},
		{false, false, false},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log := NewLogger(loggerConfig(func(c *config.Config) {
			c.ColorLogs = tt.colorLogs
			c.LogLevel = slog.LevelDebug
		}), &buf, tt.terminal)
		log.Debug("d")
		log.Info("i", "note", "level=ERROR in a value")
		log.Warn("w")
		log.Error("e")
		out := buf.String()
		hasEsc := strings.Contains(out, "\x1b[")
		if hasEsc != tt.wantColour {
			t.Errorf("ColorLogs=%v terminal=%v: colour=%v, want %v: %q", tt.colorLogs, tt.terminal, hasEsc, tt.wantColour, out)
			continue
		}
		if !tt.wantColour {
			continue
		}
		for _, want := range []string{
			" \x1b[90mlevel=DEBUG\x1b[0m msg=d\n",
			" \x1b[32mlevel=INFO\x1b[0m msg=i ",
			" \x1b[33mlevel=WARN\x1b[0m msg=w\n",
			" \x1b[31mlevel=ERROR\x1b[0m msg=e\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in %q", want, out)
			}
		}
		// Only the level token is coloured, once per line.
		for _, l := range lines(out) {
			if n := strings.Count(l, "\x1b[0m"); n != 1 {
				t.Errorf("line has %d resets: %q", n, l)
			}
		}
	}
}

func TestNewLoggerColourWithoutTime(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(loggerConfig(func(c *config.Config) { c.TimeFormat = "" }), &buf, true)
	log.Info("i")
	if got, want := buf.String(), "\x1b[32mlevel=INFO\x1b[0m msg=i\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNewLoggerDisabled(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(loggerConfig(func(c *config.Config) {
		c.DisableLogs = true
		c.LogLevel = slog.LevelDebug
	}), &buf, true)
	log.Error("e")
	log.Info("i")
	if buf.Len() != 0 {
		t.Errorf("disabled logger wrote %q", buf.String())
	}
	if log.Enabled(context.Background(), slog.LevelError) {
		t.Error("disabled logger reports Enabled")
	}
}

// The colour writer runs under the handler's lock; concurrent logging must not race or interleave.
func TestNewLoggerColourConcurrent(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(loggerConfig(func(c *config.Config) { c.TimeFormat = "" }), &buf, true)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			l := log.With("g", g)
			for range 100 {
				l.Info("x")
			}
		}()
	}
	for range 4 {
		<-done
	}
	ls := lines(buf.String())
	if len(ls) != 400 {
		t.Fatalf("got %d lines, want 400", len(ls))
	}
	for _, l := range ls {
		if !strings.HasPrefix(l, "\x1b[32mlevel=INFO\x1b[0m msg=x g=") {
			t.Fatalf("bad line %q", l)
		}
	}
}

// JSON logs feed collectors: with the time format left at its default
// (kitchen, no date) they get RFC 3339 instead; an explicit choice wins.
func TestNewLoggerJSONTimeDefault(t *testing.T) {
	for _, tc := range []struct {
		desc, source, want string
	}{
		{"default source gives RFC3339Nano", config.SourceDefault, time.RFC3339Nano},
		{"explicit kitchen is honoured", config.SourceEnv, time.Kitchen},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var buf bytes.Buffer
			log := NewLogger(loggerConfig(func(c *config.Config) {
				c.LogFormat = "json"
				c.TimeFormat = "kitchen"
				c.Sources = map[string]string{config.EnvTimeFormat: tc.source}
			}), &buf, false)
			log.Info("x")
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			ts, _ := rec["time"].(string)
			if _, err := time.Parse(tc.want, ts); err != nil {
				t.Fatalf("time %q not in layout %q: %v", ts, tc.want, err)
			}
		})
	}
}
