# nri-memqos — build and test.
GO        ?= go
BIN       := bin
FUZZTIME  ?= 10s
export CGO_ENABLED := 0

.PHONY: all build test unit integration fuzz lint clean

all: build

build: ## the plugin binary, static
	$(GO) build -trimpath -o $(BIN)/nri-memqos ./plugin

## test: everything CI runs: lint, unit tests, integration with the real NRI runtime side, fuzzing.
test: lint unit integration fuzz

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

unit:
	$(GO) test -count=1 ./pkg/... ./plugin/...

integration:
	$(GO) test -count=1 ./test/integration/...

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParseConfig$$' -fuzztime=$(FUZZTIME) ./pkg/config
	$(GO) test -run='^$$' -fuzz='^FuzzDecide$$' -fuzztime=$(FUZZTIME) ./pkg/policy

clean:
	rm -rf $(BIN)
