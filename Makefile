.PHONY: build test demo bench
build:
	go build -o bin/vigil ./cmd/vigil
test:
	go test -race ./...
demo:
	./testdata/demo.sh
bench:
	go test -run '^$$' -bench . -benchtime 20x ./cmd/vigil/ ./watcher/
