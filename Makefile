.PHONY: build test demo bench
build:
	go build -o bin/vigil ./cmd/vigil
test:
	go test -race ./...
demo:
	./testdata/demo.sh
# The cmd/vigil benchmarks take at least 20 samples per run themselves, hence 1x.
bench:
	go test -run '^$$' -bench 'Pickup|Idle' -benchtime 1x ./cmd/vigil/
	go test -run '^$$' -bench EventLatency -benchtime 30x ./watcher/
