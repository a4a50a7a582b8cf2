package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// origin says where a raw value came from, so that an error names what the operator has to fix:
// the env var, or the key in the file.
type origin struct {
	name     string // env var name, or lowercase file key
	fromFile bool
}

func (o origin) kind() string {
	if o.fromFile {
		return "config key"
	}
	return "env variable"
}

type loader struct {
	getenv  func(string) (string, bool)
	file    map[string]any
	sources map[string]string
}

// lookup finds the raw value of a setting: environment first, then the file, and records where
// it came from. raw is nil when neither has it, and the setting stores its default. Empty strings
// count as unset unless the setting says otherwise, in the file as in the environment.
func (l *loader) lookup(s Setting) (raw any, o origin) {
	if v, set := l.getenv(s.Name); set && (v != "" || s.emptyIsValue) {
		l.sources[s.Name] = SourceEnv
		return v, origin{name: s.Name}
	}
	key := strings.ToLower(s.Name)
	if v, has := l.file[key]; has {
		if str, isStr := v.(string); !isStr || str != "" || s.emptyIsValue {
			l.sources[s.Name] = SourceFile
			return v, origin{name: key, fromFile: true}
		}
	}
	l.sources[s.Name] = SourceDefault
	return nil, origin{}
}

func typeError(o origin, want string, raw any) error {
	return fmt.Errorf("config key %q must be %s, got %T %v", o.name, want, raw, raw)
}

func parseString(raw any, o origin) (string, error) {
	s, isStr := raw.(string)
	if !isStr {
		return "", typeError(o, "a string", raw)
	}
	return s, nil
}

func parseBool(raw any, o origin) (bool, error) {
	switch v := raw.(type) {
	case bool:
		return v, nil
	case string:
		// Strings are accepted in the file too: viper (cosmovisor) decodes weakly typed input.
		switch p := strings.ToLower(v); p {
		case "true":
			return true, nil
		case "false":
			return false, nil
		default:
			return false, fmt.Errorf("%s %q must have a boolean value (\"true\" or \"false\"), got %q", o.kind(), o.name, p)
		}
	default:
		return false, typeError(o, "a boolean", raw)
	}
}

type zeroRule int

const (
	zeroAllowed      zeroRule = iota // 0 is a valid value (no delay)
	zeroMeansDefault                 // 0 selects the default (vigil never kills without a grace period)
	mustBePositive                   // 0 is an error (a ticker cannot run with period 0)
)

func parseDuration(raw any, o origin, rule zeroRule) (time.Duration, error) {
	var d time.Duration
	switch v := raw.(type) {
	case int64:
		// cosmovisor's `init` writes durations as integer nanoseconds.
		d = time.Duration(v)
	case string:
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("invalid: %s: could not parse '%s' into a duration: %w", o.name, v, err)
		}
	default:
		return 0, typeError(o, `a duration string ("300ms") or integer nanoseconds`, raw)
	}
	switch {
	case rule == mustBePositive && d <= 0:
		return 0, fmt.Errorf("invalid: %s: must be greater than 0", o.name)
	case d < 0:
		return 0, fmt.Errorf("invalid: %s: must not be negative", o.name)
	}
	return d, nil
}

// parseCount reads a non-negative integer.
func parseCount(raw any, o origin) (int, error) {
	var n int
	switch v := raw.(type) {
	case int64:
		if v > math.MaxInt || v < math.MinInt {
			return 0, fmt.Errorf("%s is out of range: %d", o.name, v)
		}
		n = int(v)
	case string:
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			return 0, fmt.Errorf("%s could not be parsed to int: %w", o.name, err)
		}
	default:
		return 0, typeError(o, "an integer", raw)
	}
	if n < 0 {
		// cosmovisor accepts a negative count and then fails the first pre-upgrade attempt.
		return 0, fmt.Errorf("%s must not be negative, got %d", o.name, n)
	}
	return n, nil
}
