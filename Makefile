# nri-memqos — build and test.
GO        ?= go
BIN       := bin
FUZZTIME  ?= 10s
export CGO_ENABLED := 0

.PHONY: all build test unit integration fuzz lint clean e2e e2e-deps e2e-bin

# End-to-end: real containerd + runc + crictl built from the Go module proxy
# at the versions test/tools pins, Debian packages for the rest.
E2E_OUT    := $(abspath _output/e2e)
E2E_BIN    := $(E2E_OUT)/bin
E2E_KERNEL := $(E2E_OUT)/kernel/vmlinuz
E2E_TOOLS  := github.com/containerd/containerd/v2/cmd/containerd \
              github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
              github.com/containerd/containerd/v2/cmd/ctr \
              github.com/opencontainers/runc \
              sigs.k8s.io/cri-tools/cmd/crictl

all: build

build: ## the plugin binary, static
	$(GO) build -trimpath -o $(BIN)/nri-memqos ./plugin

## test: everything CI runs: lint, unit tests, integration with the real NRI
## runtime side, fuzzing, and end to end on real containerd (cgroup v1 here,
## cgroup v2 in a VM).
test: lint unit integration fuzz e2e

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

## e2e: the end-to-end suite (root): builds what it needs, then runs.
e2e: e2e-deps e2e-bin
	E2E_REQUIRED=1 E2E_BIN_DIR=$(E2E_BIN) E2E_KERNEL=$(E2E_KERNEL) E2E_MODULES=$(E2E_OUT)/kernel/modules \
	  E2E_BUSYBOX=/usr/bin/busybox \
	  $(GO) test -count=1 -v -timeout 20m ./test/e2e/

## e2e-deps: Debian packages (installed when missing) and the cloud kernel for the VM.
e2e-deps: $(E2E_OUT)/kernel/.ok
	@pkgs=""; \
	  dpkg -s busybox-static >/dev/null 2>&1 || pkgs="$$pkgs busybox-static"; \
	  command -v qemu-system-x86_64 >/dev/null || pkgs="$$pkgs qemu-system-x86"; \
	  command -v cpio >/dev/null || pkgs="$$pkgs cpio"; \
	  command -v mkfs.ext4 >/dev/null || pkgs="$$pkgs e2fsprogs"; \
	  if [ -n "$$pkgs" ]; then \
	    echo "installing$$pkgs"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs; \
	  fi

# The kernel, and the modules the VM loads: virtio disk (reclaimable page
# cache needs a real filesystem) and zram swap.
E2E_MODULES := virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk \
               lzo lzo-rle zsmalloc zram
$(E2E_OUT)/kernel/.ok:
	@mkdir -p $(E2E_OUT)/kernel/modules
	cd $(E2E_OUT)/kernel && rm -rf x *.deb && \
	  fetch() { pkg=$$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $$2; exit}'); \
	            [ -n "$$pkg" ] && apt-get download -qq "$$pkg" 2>/dev/null; }; \
	  fetch || { apt-get update -qq && fetch; } && \
	  dpkg -x linux-image-*.deb x && cp x/boot/vmlinuz-* vmlinuz && \
	  for m in $(E2E_MODULES); do f=$$(find x/lib/modules -name "$$m.ko" | head -n1); \
	    [ -n "$$f" ] || { echo "module $$m not in $$pkg"; exit 1; }; cp "$$f" modules/; done && \
	  rm -rf x *.deb && touch .ok && echo "kernel: $$pkg"

## e2e-bin: the runtime binaries (cgo: runc needs it) and the plugin.
e2e-bin: $(E2E_BIN)/.tools-stamp
	$(GO) build -trimpath -ldflags '-s -w' -o $(E2E_BIN)/nri-memqos ./plugin

$(E2E_BIN)/.tools-stamp: test/tools/go.mod test/tools/go.sum
	@mkdir -p $(E2E_BIN)
	cd test/tools && CGO_ENABLED=1 $(GO) build -trimpath -ldflags '-s -w' -o $(E2E_BIN)/ $(E2E_TOOLS)
	touch $@

clean:
	rm -rf $(BIN) _output
