# tailsift — build, run and test the collector distribution.
# Only Go is needed: every tool is a Go tool pinned in internal/tools.

# The module proxy is reachable here, the `direct` fallback is not.
export GOPROXY := https://proxy.golang.org
# The race detector needs cgo and a C compiler. Where there is none, the tests
# run without -race (and say so); the collector itself never needs cgo.
CC_PATH := $(shell command -v $${CC:-cc} 2>/dev/null || command -v gcc 2>/dev/null)
RACE    := $(if $(CC_PATH),-race,)
TESTENV := $(if $(CC_PATH),CGO_ENABLED=1,CGO_ENABLED=0)

GO      ?= go
TOOLS   := $(GO) tool -modfile=$(CURDIR)/internal/tools/go.mod
BIN     := $(CURDIR)/bin/otelcol-tailsift
DIST    := cmd/otelcol-tailsift
CONFIG  ?= config/default.yaml
FUZZTIME ?= 10s
# What `make generate` writes; check-generated compares it with the commit.
GENERATED := $(DIST) $(foreach c,extension/tailsiftextension processor/tailsiftprocessor receiver/tailsiftreceiver receiver/otlpguardreceiver exporter/tailsiftexporter,$(c)/internal/metadata $(c)/internal/metadatatest \
	$(c)/generated_component_test.go $(c)/generated_package_test.go $(c)/documentation.md)

# The binary depends on every Go source of the main module and the distribution.
SOURCES := $(shell find . -name '*.go' -not -path './benchmarks/*' -not -path './internal/tools/*' -not -name '*_test.go') \
	go.mod go.sum $(DIST)/go.mod $(DIST)/go.sum

.PHONY: all build run test test-unit test-norace test-e2e fuzz check-generated generate lint bench bench-smoke tidy clean

all: build

## build: compile the distribution into bin/otelcol-tailsift
build: $(BIN)

$(BIN): $(SOURCES)
	cd $(DIST) && CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) .

## run: run the collector on config/default.yaml (kept traces go to ./data/)
run: $(BIN)
	mkdir -p data
	$(BIN) --config $(CONFIG)

## test: generated code is current, then unit, fuzz, end-to-end and benchmark smoke tests, with -race (when a C compiler is present)
test: check-generated $(BIN) test-unit test-norace fuzz bench-smoke

## test-norace: the tests that skip themselves under -race (too slow there), run without it
test-norace:
	$(GO) test -count=1 -run '^TestLearnedCompletionOnWorkload$$' ./internal/tracebuf/

test-unit: $(BIN)
	$(if $(RACE),,@echo "no C compiler found: running the tests without -race")
	TAILSIFT_BIN=$(BIN) $(TESTENV) $(GO) test $(RACE) -count=1 -timeout 20m ./...

## fuzz: a short run of each fuzz target (scripts/fuzz-one.sh: one more run when Go's
## coordinator fails at the -fuzztime deadline without a failing input)
fuzz:
	for t in FuzzScan FuzzScanAgreesWithPdata FuzzCheckAnyValue FuzzSplit; do \
		GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) ./internal/wire/ || exit 1; \
	done
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzCheck$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x ./internal/otlpguard/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzParseRecords$$' -fuzztime=$(FUZZTIME) ./internal/store/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzColumnarRoundTrip$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x ./internal/store/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzRecoverSegment$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x ./internal/store/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzSplitControl$$' -fuzztime=$(FUZZTIME) ./internal/cluster/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzServiceName$$' -fuzztime=$(FUZZTIME) ./internal/red/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzCheckMatchesReference$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x ./internal/otlpguard/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzTraceStateParsing$$' -fuzztime=$(FUZZTIME) ./sampling/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzAdaptiveModel$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x ./sampling/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzSpanViewAgreesWithPdata$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x ./sampling/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzPartialSuccess$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x ./internal/router/
	GO=$(GO) scripts/fuzz-one.sh -run='^$$' -fuzz='^FuzzConvert$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x ./cmd/tailsift-convert/

# The end-to-end runner's smoke test runs tailsift, contrib and the baseline,
# so it needs both distributions.
bench-smoke: $(BIN) $(CURDIR)/bin/otelcol-contrib-bench
	cd benchmarks && TAILSIFT_BIN=$(BIN) TAILSIFT_CONTRIB_BIN=$(CURDIR)/bin/otelcol-contrib-bench \
		$(TESTENV) $(GO) test $(RACE) -count=1 -run . ./...

## generate: regenerate cmd/otelcol-tailsift (ocb) and mdatagen output
generate:
	mkdir -p $(DIST)
	$(TOOLS) builder --config builder-config.yaml --skip-compilation
	gofmt -w $(DIST)
	$(GO) generate ./processor/... ./receiver/... ./exporter/... ./extension/...

## check-generated: fail when the committed generated code differs from what `make generate` gives
check-generated: generate
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		echo "generated code differs from the commit; run 'make generate' and commit:"; \
		git status --porcelain -- $(GENERATED); git --no-pager diff -- $(GENERATED) | head -50; exit 1; fi

## lint: golangci-lint (built from internal/tools)
lint:
	$(TOOLS) golangci-lint run ./...
	cd benchmarks && $(TOOLS) golangci-lint run ./...

## bench: the short benchmark subset (a few minutes)
bench:
	cd benchmarks && $(GO) test -run='^$$' -bench=. -benchmem -count=3 -timeout 30m ./... | tee bench.txt

tidy:
	$(GO) mod tidy
	cd benchmarks && $(GO) mod tidy

clean:
	rm -rf bin data
include benchmarks/bench.mk

# --- tools: `make demo` with Jaeger (branch tools) ---------------------------
# Jaeger v2 is a Go program from the module proxy, pinned in a module of its
# own (internal/tools/jaeger: it is built on another collector release than
# ours). Its first build is long (see README, "See kept traces");
# bin/jaeger is then reused, and the Go build cache makes a rebuild short.
JAEGER_BIN  := $(CURDIR)/bin/jaeger
LOADGEN_BIN := $(CURDIR)/bin/tailsift-loadgen

.PHONY: jaeger demo

## jaeger: build Jaeger v2 (pinned in internal/tools/jaeger) into bin/jaeger
jaeger: $(JAEGER_BIN)

$(JAEGER_BIN): internal/tools/jaeger/go.mod internal/tools/jaeger/go.sum
	cd internal/tools/jaeger && $(GO) build -trimpath -o $(JAEGER_BIN) github.com/jaegertracing/jaeger/cmd/jaeger

$(LOADGEN_BIN): $(SOURCES)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/tailsift-loadgen

## demo: Jaeger, the collector on config/demo.yaml and the load generator; kept traces at http://127.0.0.1:13134/status/
demo: $(BIN) $(JAEGER_BIN) $(LOADGEN_BIN)
	TAILSIFT_BIN=$(BIN) JAEGER_BIN=$(JAEGER_BIN) LOADGEN_BIN=$(LOADGEN_BIN) bash scripts/demo.sh

# internal/e2e's demo test runs bin/jaeger.
test-unit: $(JAEGER_BIN)
test-unit: export JAEGER_BIN := $(JAEGER_BIN)

# --- Live status page (#14): its browser test, a module of its own ----------
# (internal/e2e/browser, so that chromedp stays out of the collector's
# module graph). Chromium comes from scripts/deps/status.sh (as root; the
# test skips otherwise). The screenshot lands under bin/artifacts/.
.PHONY: deps-status test-status lint-status tidy-status
test: test-status
lint: lint-status
tidy: tidy-status

deps-status:
	sh scripts/deps/status.sh

# The page's assets are embedded in the binary.
$(BIN): $(wildcard internal/statuspage/assets/*)

## test-status: the status page in headless Chromium, against a collector under load
test-status: $(BIN) deps-status
	mkdir -p $(CURDIR)/bin/artifacts
	cd internal/e2e/browser && TAILSIFT_BIN=$(BIN) $(GO) test -count=1 -v -timeout 5m \
		-artifacts -outputdir $(CURDIR)/bin/artifacts ./...

lint-status:
	cd internal/e2e/browser && $(TOOLS) golangci-lint run ./...

tidy-status:
	cd internal/e2e/browser && $(GO) mod tidy

include deploy/deploy.mk
