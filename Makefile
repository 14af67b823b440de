# Amas: `make run` starts everything on the embedded default, `make test` runs every test.
GO        ?= go
BIN       := bin/amas
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/amas-eye/amas/app.Version=$(VERSION)
# Fuzz seed corpora run as ordinary tests; this is how long `make fuzz` explores each target.
FUZZTIME  ?= 30s

.PHONY: all build run test test-go bench fuzz generate lint clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/amas

run: build
	./$(BIN) serve

# Every package runs in parallel against the PostgreSQL at AMAS_TEST_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/postgres); each creates and drops its own database.
test: test-go

test-go:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

bench: build
	$(GO) run ./bench/ingest

generate:
	$(GO) generate ./...

clean:
	rm -rf bin
