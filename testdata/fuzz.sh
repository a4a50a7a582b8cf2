#!/usr/bin/env bash
# Runs every fuzz target of the module for the given time each (default 10s).
# go test -fuzz takes one target of one package at a time, hence the loop.
#
# A failure counts when the fuzzer wrote a failing input (testdata/fuzz/<target>/) or failed
# for any other reason than Go's own "context deadline exceeded" at the end of -fuzztime: that
# one, with no input written, is a race in Go's fuzz coordinator (golang/go#75804, fixed in Go
# 1.27), not a finding, and is reported as such.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-10s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
shopt -s nullglob
inputs() { local f=("$1"/*); echo "${#f[@]}"; } # files in a corpus directory; 0 when it is missing
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "fuzz $pkg $target ($time)"
    corpus="$dir/testdata/fuzz/$target"
    before=$(inputs "$corpus")
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "$pkg" 2>&1 | tee "$out"; then
      continue
    fi
    after=$(inputs "$corpus")
    if [ "$after" -eq "$before" ] && grep -q '^    context deadline exceeded$' "$out" &&
      [ "$(grep -c -e '^--- FAIL' "$out")" -eq 1 ]; then
      echo "fuzz $target: Go's fuzz coordinator ended with its deadline race (golang/go#75804); no failing input was found"
      continue
    fi
    echo "fuzz $target FAILED: see above (a failing input is in $corpus when one was written)"
    exit 1
  done
done
