package main

import (
	"errors"
	"strings"
)

const configFlag = "cosmovisor-config"

// ExtractConfigFlag removes the first `--cosmovisor-config <path>`, `--cosmovisor-config=<path>`
// or the single-dash forms (flag name matched case-insensitively) from run's args and returns the
// path and the remaining args, which go to the node untouched. A flag without a value is an error.
// args is not modified.
func ExtractConfigFlag(args []string) (path string, rest []string, err error) {
	for i, a := range args {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			if name, ok = strings.CutPrefix(a, "-"); !ok {
				continue
			}
		}
		name, value, hasValue := strings.Cut(name, "=")
		if !strings.EqualFold(name, configFlag) {
			continue
		}
		rest = make([]string, 0, len(args))
		rest = append(rest, args[:i]...)
		next := i + 1
		if !hasValue {
			if next >= len(args) {
				return "", nil, errors.New("--cosmovisor-config requires an argument")
			}
			value = args[next]
			next++
		}
		if value == "" {
			return "", nil, errors.New("--cosmovisor-config requires an argument")
		}
		rest = append(rest, args[next:]...)
		return value, rest, nil
	}
	return "", append(make([]string, 0, len(args)), args...), nil
}
