.PHONY: build test demo bench fuzz
# The release build: no symbol table or DWARF (9.9 MiB instead of 14.3 MiB).
build:
	go build -trimpath -ldflags="-s -w" -o bin/vigil ./cmd/vigil
# The Go tests, then the real simapp upgrade (CI runs the same two, via .ci/run).
test:
	go test -race -count=1 ./...
	./testdata/fuzz.sh 10s
	./testdata/devnet/run.sh --ci
# Each fuzz target for a while (seeds in each package's testdata/fuzz); FUZZTIME=5m make fuzz for longer.
FUZZTIME ?= 1m
fuzz:
	./testdata/fuzz.sh $(FUZZTIME)
demo:
	./testdata/demo.sh
# The cmd/vigil benchmarks take at least 20 samples per run themselves, hence 1x.
bench:
	go test -run '^$$' -bench 'Pickup|Idle' -benchtime 1x ./cmd/vigil/
	go test -run '^$$' -bench EventLatency -benchtime 30x ./watcher/
# A real upgrade, simapp v0.45.16 -> v0.46.16, under vigil (builds both simd once, cached);
# DEVNET_FLAGS=--manual for one scheduled at a height instead (see run.sh --help).
.PHONY: devnet devnet-test
DEVNET_FLAGS ?=
devnet:
	./testdata/devnet/run.sh $(DEVNET_FLAGS)
devnet-test:
	./testdata/devnet/run.sh --ci
