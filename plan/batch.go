package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
)

// BatchFileName is the file in $DAEMON_HOME/data holding the upgrades
// scheduled at a height without governance (`add-upgrade --upgrade-height`,
// `add-batch-upgrade`): a JSON array of plans, the format cosmovisor v1.7
// writes, so a home can move between the two.
const BatchFileName = "upgrade-info.json.batch"

// ParseBatch decodes a batch file: a JSON array of plans; empty content,
// "null" and "[]" mean none. Each plan is validated as Parse does; duplicate
// names or duplicate heights are errors. The result is sorted by height.
func ParseBatch(data []byte) ([]Plan, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("invalid %s: want a JSON array of plans: %w", BatchFileName, err)
	}
	var ps []Plan
	var errs []error
	for i, r := range raw {
		p, err := Parse(r)
		if errors.Is(err, ErrEmpty) {
			err = errors.New("empty element")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("plan %d: %w", i, err))
			continue
		}
		ps = append(ps, p)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid %s: %w", BatchFileName, errors.Join(errs...))
	}
	sortPlans(ps)
	if err := checkUnique(ps); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", BatchFileName, err)
	}
	return ps, nil
}

// sortPlans sorts by height, stably: equal heights (an error anyway) keep
// their order so the error names them as written.
func sortPlans(ps []Plan) {
	slices.SortStableFunc(ps, func(a, b Plan) int {
		switch {
		case a.Height < b.Height:
			return -1
		case a.Height > b.Height:
			return 1
		}
		return 0
	})
}

// checkUnique refuses two plans with one name (which one would run?) or at
// one height (a node halts once per height). ps is sorted by height.
func checkUnique(ps []Plan) error {
	var errs []error
	seen := make(map[string]int64, len(ps))
	for i, p := range ps {
		if h, ok := seen[p.Name]; ok {
			errs = append(errs, fmt.Errorf("upgrade %s is scheduled twice, at heights %d and %d", p.Name, h, p.Height))
		}
		seen[p.Name] = p.Height
		if i > 0 && ps[i-1].Height == p.Height {
			errs = append(errs, fmt.Errorf("upgrades %s and %s are both scheduled at height %d", ps[i-1].Name, p.Name, p.Height))
		}
	}
	return errors.Join(errs...)
}

// MarshalBatch renders plans sorted by height, indented, with cosmovisor's
// keys (name, time, height as a JSON number, info omitted when empty) and a
// trailing newline. No plans render as "[]".
func MarshalBatch(ps []Plan) []byte {
	sorted := slices.Clone(ps)
	sortPlans(sorted)
	// Each element is Marshal's output, so the batch and upgrade-info.json
	// can never disagree on a key.
	raw := make([]json.RawMessage, len(sorted))
	for i, p := range sorted {
		raw[i] = p.Marshal()
	}
	b, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		panic(err) // valid JSON elements only: cannot fail
	}
	return append(b, '\n')
}

// ReadBatch reads and parses the batch file with the same safety as Read
// (regular file only, size cap, no blocking on a FIFO); a missing file is
// nil, nil.
func ReadBatch(path string) ([]Plan, error) {
	b, err := Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ps, err := ParseBatch(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ps, nil
}
