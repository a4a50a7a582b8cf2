package plan

// TEMPORARY stub until wt-batch lands.

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
)

const BatchFileName = "upgrade-info.json.batch"

func ParseBatch(data []byte) ([]Plan, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, err
	}
	var ps []Plan
	for _, r := range raws {
		p, err := Parse(r)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b Plan) int { return int(a.Height - b.Height) })
	return ps, nil
}

func MarshalBatch(ps []Plan) []byte {
	slices.SortFunc(ps, func(a, b Plan) int { return int(a.Height - b.Height) })
	var out []json.RawMessage
	for _, p := range ps {
		out = append(out, p.Marshal())
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return b
}

func ReadBatch(path string) ([]Plan, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseBatch(b)
}
