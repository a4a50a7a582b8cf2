// Package plan parses and validates upgrade-info.json, the file the Cosmos SDK
// x/upgrade module writes when the chain halts for an upgrade, and the marker
// vigil keeps in each installed upgrade directory.
//
// The file is untrusted input that may be observed half-written (x/upgrade
// uses a plain truncate-and-write), so Parse never panics and reports every
// problem as an error; callers treat an error as "not finished yet".
package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// FileName is the name x/upgrade writes in $DAEMON_HOME/data and vigil writes
// in each applied upgrade directory.
const FileName = "upgrade-info.json"

// Plan is one scheduled upgrade.
type Plan struct {
	Name   string
	Height int64
	Info   string
}

// ErrEmpty means the file has no content yet.
var ErrEmpty = errors.New("empty upgrade-info.json")

// wire mirrors the JSON written by x/upgrade. Height and Info are raw so that
// a numeric-string height (gogoproto jsonpb) is accepted and a wrong type gets
// a message naming the field.
type wire struct {
	Name                string          `json:"name"`
	Height              json.RawMessage `json:"height"`
	Info                json.RawMessage `json:"info"`
	Time                *string         `json:"time"`
	UpgradedClientState json.RawMessage `json:"upgraded_client_state"`
}

// Parse decodes and validates upgrade-info.json content. Unknown fields are
// ignored.
func Parse(data []byte) (Plan, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return Plan{}, ErrEmpty
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return Plan{}, fmt.Errorf("invalid upgrade-info.json: %w", err)
	}
	p := Plan{Name: w.Name}
	var errs []error
	if strings.TrimSpace(w.Name) == "" {
		errs = append(errs, errors.New("name cannot be empty"))
	}
	h, err := parseHeight(w.Height)
	if err != nil {
		errs = append(errs, err)
	}
	p.Height = h
	if len(w.Info) > 0 && string(w.Info) != "null" {
		if err := json.Unmarshal(w.Info, &p.Info); err != nil {
			errs = append(errs, fmt.Errorf("info must be a string, got %s", w.Info))
		}
	}
	if w.Time != nil && *w.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, *w.Time)
		if err != nil {
			errs = append(errs, fmt.Errorf("time %q: %w", *w.Time, err))
		} else if !t.IsZero() {
			errs = append(errs, errors.New("time-based upgrades have been deprecated in the SDK"))
		}
	}
	if len(w.UpgradedClientState) > 0 && string(w.UpgradedClientState) != "null" {
		errs = append(errs, errors.New("upgrade logic for IBC has been moved to the IBC module"))
	}
	if len(errs) > 0 {
		return Plan{}, fmt.Errorf("invalid upgrade-info.json content: %w", errors.Join(errs...))
	}
	return p, nil
}

func parseHeight(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("height must be greater than 0")
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("height: %w", err)
		}
	}
	h, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("height must be an integer, got %s", raw)
	}
	if h <= 0 {
		return 0, errors.New("height must be greater than 0")
	}
	return h, nil
}

// Marshal renders p the way cosmovisor writes its marker, so tools that read
// `current/upgrade-info.json` keep working:
// {"name":"v2","time":"0001-01-01T00:00:00Z","height":100,"info":"..."}.
func (p Plan) Marshal() []byte {
	out := struct {
		Name   string `json:"name"`
		Time   string `json:"time"`
		Height int64  `json:"height"`
		Info   string `json:"info,omitempty"`
	}{p.Name, "0001-01-01T00:00:00Z", p.Height, p.Info}
	b, err := json.Marshal(out)
	if err != nil {
		panic(err) // only strings and an int: cannot fail
	}
	return b
}

// LogValue keeps log lines short: the info field can hold a whole JSON
// document of download URLs.
func (p Plan) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", p.Name), slog.Int64("height", p.Height))
}
