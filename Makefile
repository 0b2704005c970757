# Outpost. `make run` starts a demo control plane + mirror; `make test` runs
# every test (it builds the S3 test server, versitygw, into tools/ once).
GO        ?= go
BIN       := bin
TOOLS     := $(CURDIR)/tools/bin
VERSITYGW := $(TOOLS)/versitygw
STATICCHECK := $(TOOLS)/staticcheck
export OUTPOST_VERSITYGW := $(VERSITYGW)

.PHONY: all build test test-short run bench lint fuzz tools clean soak hostile

all: build

COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS   := -X github.com/outpost/outpost/internal/buildinfo.buildCommit=$(COMMIT) -X github.com/outpost/outpost/internal/buildinfo.buildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

tools: $(VERSITYGW) $(STATICCHECK)

$(VERSITYGW):
	GOBIN=$(TOOLS) $(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0

$(STATICCHECK):
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Every test, with the race detector, against a real S3 server (each test
# binary that needs one starts its own versitygw on loopback and stops it)
# and a real PostgreSQL server: OUTPOST_TEST_POSTGRES_URL, or else the one
# scripts/postgres.sh starts: a cluster of its own in /tmp, never the
# system's (installing PostgreSQL when run as root).
test: $(VERSITYGW)
	./scripts/ci-deps.sh
	$(GO) vet ./...
	@set -e; if [ -z "$$OUTPOST_TEST_POSTGRES_URL" ]; then \
		OUTPOST_TEST_POSTGRES_URL="$$(./scripts/postgres.sh)"; export OUTPOST_TEST_POSTGRES_URL; \
	fi; \
	echo "$(GO) test -race -timeout 20m ./..."; \
	$(GO) test -race -timeout 20m ./...
	$(MAKE) hostile
	$(MAKE) fuzz

# The hostile-input suites (docs/SECURITY.md) against the real daemons on
# loopback, printing their counts: requests tried per class, and results.
hostile:
	@out=$$(mktemp); \
	if ! $(GO) test -count=1 -run '^TestHostileInput' -v ./internal/controlplaned ./internal/mirror ./cmd/mirror > $$out 2>&1; then \
		cat $$out; rm -f $$out; exit 1; \
	fi; \
	grep -E '^[[:space:]]+(hostile-input suite|\|)' $$out | sed -E 's/^[[:space:]]+//'; rm -f $$out

# A short run of each fuzz target on top of its seed corpus.
# Iterations, not seconds: a time limit can expire while the fuzzer is
# still gathering its baseline on a busy machine and fail the run.
FUZZTIME ?= 20000x
fuzz:
	@set -e; for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs grep -H '^func Fuzz' | sed -E 's#^\./([^:]*)/[^/:]*:func (Fuzz[A-Za-z0-9_]*).*#\1:\2#' | sort -u); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) ./$$pkg; \
	done

# The fault-and-load suite's long variants (docs/RELIABILITY.md): 100
# kill -9 per store, larger artifacts through every network fault, 1,000
# clients against a mirror (OUTPOST_SOAK_LOAD, default 3m; 10m for the
# issue's figure) and 1,000 mirrors polling the control plane for 2
# minutes. Bounded by the test timeout; without the race detector, so the
# figures are the daemons' own. FIGURE lines are the results.
SOAK_TIMEOUT ?= 60m
soak: $(VERSITYGW)
	@set -e; if [ -z "$$OUTPOST_TEST_POSTGRES_URL" ]; then \
		OUTPOST_TEST_POSTGRES_URL="$$(./scripts/postgres.sh)"; export OUTPOST_TEST_POSTGRES_URL; \
	fi; \
	echo "OUTPOST_SOAK=1 $(GO) test -count=1 -timeout $(SOAK_TIMEOUT) -run '^Test(Faults|Soak)_' -v ./e2e/"; \
	OUTPOST_SOAK=1 $(GO) test -count=1 -timeout $(SOAK_TIMEOUT) -run '^Test(Faults|Soak)_' -v ./e2e/

test-short:
	$(GO) test ./...

run: build
	./scripts/quickstart.sh

# Every benchmark in one go (installs nginx, wrk and jq when missing);
# rewrites docs/BENCHMARKS.md. About 8 minutes on 2 cores.
bench: build $(VERSITYGW)
	./bench/run.sh

# vet, gofmt and staticcheck over the whole tree (.ci/run calls it).
lint: $(STATICCHECK)
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(STATICCHECK) ./...

clean:
	rm -rf $(BIN) data
