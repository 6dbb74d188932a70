# End-to-end benchmark targets; the top-level Makefile includes this file.
# Paths are relative to the repository root (make runs there).
#
#   make bench-contrib-dist  build bin/otelcol-contrib-bench (the distribution's components
#                            with contrib tail_sampling v0.161.0 + nop exporter) from benchmarks/dist-contrib;
#                            rebuilt only when its builder-config.yaml changes
#   make bench-e2e           full suite (~30 min): 3 pairs + baseline, saturation
#                            search, SVG; writes benchmarks/results/e2e-<date>.*
#   make bench-e2e-quick     1 pair + baseline at 5k spans/s (~2 min);
#                            writes benchmarks/results/e2e-<date>-quick.*
#   BENCH_E2E_FLAGS='-keep -rate 12000' make bench-e2e   extra runner flags
#   BENCH_E2E_FLAGS='-shape sdk' make bench-e2e-quick   SDK-shaped requests: 20k spans/s,
#                            15 s warm-up, 30 s window unless given (README "Measuring the SDK shape")

GO ?= go
BENCH_E2E_ROOT        := $(CURDIR)
BENCH_E2E_TAILSIFT    := $(BENCH_E2E_ROOT)/bin/otelcol-tailsift
BENCH_E2E_CONTRIB     := $(BENCH_E2E_ROOT)/bin/otelcol-contrib-bench
BENCH_E2E_CONTRIB_DIR := $(BENCH_E2E_ROOT)/benchmarks/dist-contrib
BENCH_E2E_FLAGS       ?=

.PHONY: bench-contrib-dist bench-e2e bench-e2e-quick

bench-contrib-dist: $(BENCH_E2E_CONTRIB)

# ocb writes the sources into dist-contrib/build (gitignored); compile them
# the same way `make build` compiles cmd/otelcol-tailsift.
$(BENCH_E2E_CONTRIB): $(BENCH_E2E_CONTRIB_DIR)/builder-config.yaml
	cd $(BENCH_E2E_CONTRIB_DIR) && GOPROXY=https://proxy.golang.org \
		$(GO) tool -modfile=$(BENCH_E2E_ROOT)/internal/tools/go.mod builder --config builder-config.yaml --skip-compilation
	cd $(BENCH_E2E_CONTRIB_DIR)/build && GOPROXY=https://proxy.golang.org CGO_ENABLED=0 $(GO) build -trimpath -o $@ .

bench-e2e: build $(BENCH_E2E_CONTRIB)
	cd benchmarks && GOPROXY=https://proxy.golang.org $(GO) run ./cmd/bench-e2e -mode full \
		-repo $(BENCH_E2E_ROOT) -tailsift-bin $(BENCH_E2E_TAILSIFT) -contrib-bin $(BENCH_E2E_CONTRIB) $(BENCH_E2E_FLAGS)

bench-e2e-quick: build $(BENCH_E2E_CONTRIB)
	cd benchmarks && GOPROXY=https://proxy.golang.org $(GO) run ./cmd/bench-e2e -mode quick \
		-repo $(BENCH_E2E_ROOT) -tailsift-bin $(BENCH_E2E_TAILSIFT) -contrib-bin $(BENCH_E2E_CONTRIB) $(BENCH_E2E_FLAGS)
