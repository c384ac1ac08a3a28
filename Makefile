# wsgate — build, run the demo, test, fuzz, benchmark.
GO        ?= go
BIN       := bin
FUZZTIME  ?= 60s
ECHO_ADDR ?= 127.0.0.1:9001,127.0.0.1:9002
CONFIG    ?= examples/local.toml

.PHONY: all build run test vet fmt-check unit e2e fuzz bench-idle clean

all: build

build:
	$(GO) build -o $(BIN)/wsgate ./cmd/wsgate
	$(GO) build -o $(BIN)/wsecho ./bench/cmd/wsecho
	$(GO) build -o $(BIN)/wsload ./bench/cmd/wsload
	$(GO) build -o $(BIN)/wsbench ./bench/cmd/wsbench
	@# wsfloor, the byte relay of wsbench's target floor, is C (bench/floor).
	@if command -v $(CC) >/dev/null 2>&1; then \
	  echo "$(CC) -O2 -o $(BIN)/wsfloor bench/floor/relay.c"; $(CC) -O2 -Wall -o $(BIN)/wsfloor bench/floor/relay.c; \
	else echo "no C compiler ($(CC)): $(BIN)/wsfloor, wsbench's target floor, not built"; fi

# wsgate on the sample config, with the two local echo backends it points
# at; Ctrl-C stops both.
run: build
	@set -e; \
	$(BIN)/wsecho -listen $(ECHO_ADDR) & echo_pid=$$!; \
	trap 'kill $$echo_pid 2>/dev/null' EXIT INT TERM; \
	echo "wsgate on ws://127.0.0.1:8080/ (admin http://127.0.0.1:9090/metrics), backends $(ECHO_ADDR)"; \
	$(BIN)/wsgate run --config $(CONFIG)

# The whole suite: formatting, vet, unit and fuzz-seed tests, end-to-end
# tests against the real binary, all with the race detector.
test: fmt-check vet
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -count=1 -run 'Allocs' ./frame ./loop ./proxy/...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

e2e:
	$(GO) test -race -count=1 -v ./e2e/

# Every fuzz target for FUZZTIME each (go test allows one target per run).
fuzz:
	@set -e; for pkg in ./frame ./proxy/handshake ./proxy/config; do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test $$pkg -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME); \
	  done; done

clean:
	rm -rf $(BIN)

# ---------------------------------------------------------------------------
# Benchmarks (bench/README.md). Results go to bench/results/<UTC date>/:
# results.json, results.md and SVG charts. Peers that are not installed are
# skipped (make bench-peers installs them; needs root).
BENCH_OUT   ?= bench/results/$(shell date -u +%F)
BENCH_ADDRS ?=
BENCH_ARGS  ?=
BENCH_PEERS := direct,floor,wsgate,haproxy,nginx,caddy

.PHONY: bench bench-quick bench-peers

# Full benchmark: the scenarios of issue 3's target table (throughput
# C=100 K=8 S=64 and C=1000 K=1 S=1024, latency C=1000 at 20,000/s,
# handshake C=50, idle N=9,000) plus fan-out, against every target, 6 runs
# each (targets alternating; medians of 6, as issue 3's own figures), 10 s
# windows: 216 runs, about 50 min with all six targets (floor, the minimal
# byte relay of bench/floor, is a reference like direct); run it on a quiet
# machine. results.md starts with the figures of merit against the issue's
# targets.
bench: build
	$(BIN)/wsbench -wsgate $(BIN)/wsgate -targets $(BENCH_PEERS) -runs 6 \
	  -n 9000 -hold 10s -quiet-wait 2m $(BENCH_ADDRS) $(BENCH_ARGS) -out $(BENCH_OUT)

# Quick look: one run of each scenario per target (36 runs), 1 s windows,
# 1,000 idle sessions; about 2 minutes with all six targets.
bench-quick: build
	$(BIN)/wsbench -wsgate $(BIN)/wsgate -targets $(BENCH_PEERS) -runs 1 \
	  -d 1s -warmup 300ms -n 1000 -hold 2s $(BENCH_ADDRS) $(BENCH_ARGS) -out $(BENCH_OUT)-quick

# Installs HAProxy, NGINX and Caddy from Debian's packages and stops the
# services the packages start (root).
bench-peers:
	sh bench/peers.sh
