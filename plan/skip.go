package plan

import (
	"strconv"
	"strings"
)

// SkipFlag is the node's flag (x/upgrade) naming upgrade heights it must not
// halt at: the chain agreed to skip them.
const SkipFlag = "--unsafe-skip-upgrades"

// SkipHeights returns the heights the node's arguments skip with SkipFlag,
// in every form an operator writes it: as the SDK parses it (an int slice:
// `--unsafe-skip-upgrades=10,20`, `--unsafe-skip-upgrades 10,20`, the flag
// repeated) and as cosmovisor reads it (the integers among the arguments
// after the flag, up to the next one that starts with "-"). Arguments after
// "--" are not flags.
func SkipHeights(args []string) []int64 {
	var hs []int64
	add := func(v string) {
		for _, f := range strings.Split(v, ",") {
			if h, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64); err == nil && h > 0 {
				hs = append(hs, h)
			}
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, SkipFlag+"="); ok {
			add(v)
			continue
		}
		if a != SkipFlag {
			continue
		}
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			add(args[i])
		}
	}
	return hs
}
