package plan

import (
	"fmt"
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

// HaltFlag is the SDK's flag that makes the node commit a height and stop.
const HaltFlag = "--halt-height"

// HaltHeight returns the height the node's arguments tell it to halt at with
// HaltFlag (`--halt-height 100` or `--halt-height=100`; the last one wins, as
// with the node's flag parser; 0 = no halt) and whether the flag is given at
// all (then it overrides app.toml's halt-height). A value the node would
// refuse is an error here too, so vigil never guesses what the node will do.
func HaltHeight(args []string) (h int64, given bool, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		v, ok := strings.CutPrefix(a, HaltFlag+"=")
		if !ok {
			if a != HaltFlag {
				continue
			}
			if i+1 >= len(args) {
				return 0, false, fmt.Errorf("%s needs a value", HaltFlag)
			}
			i++
			v = args[i]
		}
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return 0, false, fmt.Errorf("%s %q: not a height", HaltFlag, v)
		}
		h, given = int64(n), true
	}
	return h, given, nil
}
