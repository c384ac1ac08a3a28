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
