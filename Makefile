# nri-memqos — build and test.
GO        ?= go
BIN       := bin
# Fuzz budgets, in executions (about 10 s each on 2 cores; see fuzz below).
FUZZ_CONFIG ?= 80000x
FUZZ_DECIDE ?= 120000x
FUZZ_LEDGER ?= 2500x
export CGO_ENABLED := 0

.PHONY: all build check test unit integration fuzz lint clean e2e e2e-deps e2e-bin demo bench install-oci-hook

# plugin-build OUT[,GOARCH[,PKG]]: the one way the plugin binary (PKG
# ./plugin, or the slim OCI hook ./plugin/oci-hook) is built, for build,
# build-static, install, install-systemd, install-oci-hook, e2e-bin and
# image: linux, static (no cgo), stripped, no local paths; GOARCH defaults
# to the host's.
plugin-build = CGO_ENABLED=0 GOOS=linux $(if $(2),GOARCH=$(2) )$(GO) build -trimpath -ldflags '-s -w' -o $(1) $(if $(3),$(3),./plugin)

# golangci-lint at the version test/tools/lint/go.mod pins (its own module,
# so that its dependencies leave test/tools' containerd and runc alone), built
# from the Go module proxy once and again when that go.mod or go.sum changes.
GOLANGCI_LINT := _output/tools/golangci-lint

# End-to-end: real containerd + runc + crictl built from the Go module proxy
# at the versions test/tools pins, Debian packages for the rest.
E2E_OUT    := $(abspath _output/e2e)
E2E_BIN    := $(E2E_OUT)/bin
E2E_KERNEL := $(E2E_OUT)/kernel/vmlinuz
E2E_TOOLS  := github.com/containerd/containerd/v2/cmd/containerd \
              github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
              github.com/containerd/containerd/v2/cmd/ctr \
              sigs.k8s.io/cri-tools/cmd/crictl
# The CNI plugins of the real node's pod network (into $(E2E_BIN)/cni).
E2E_CNI    := github.com/containernetworking/plugins/plugins/main/ptp \
              github.com/containernetworking/plugins/plugins/ipam/host-local \
              github.com/containernetworking/plugins/plugins/main/loopback

all: build

build: ## the plugin binary, static and stripped
	$(call plugin-build,$(BIN)/nri-memqos)

## check: the developer tier, no root, a few minutes warm: lint, unit,
## integration and a short fuzz (about 3 s each).
check: FUZZ_CONFIG = 25000x
check: FUZZ_DECIDE = 40000x
check: FUZZ_LEDGER = 800x
check: UNIT_FLAGS = -short
check: lint unit integration fuzz

## test: everything CI runs: lint, unit tests, integration with the real NRI
## runtime side, fuzzing, and end to end on real containerd (cgroup v1 here,
## cgroup v2 in a VM).
test: lint unit integration fuzz e2e

## lint: gofmt, go vet, go mod tidy, and golangci-lint (.golangci.yml).
lint: $(GOLANGCI_LINT)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GOLANGCI_LINT) run ./...

# The target is the binary itself, touched because go build leaves an
# up-to-date binary's mtime alone.
$(GOLANGCI_LINT): test/tools/lint/go.mod test/tools/lint/go.sum
	@mkdir -p $(@D)
	cd test/tools/lint && $(GO) build -trimpath -o $(abspath $@) github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	touch $@

## unit: under the race detector (it needs cgo); -short (make check) plays
## 500 of the ledger property test's 10 000 sequences.
UNIT_FLAGS ?=
unit:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m $(UNIT_FLAGS) ./pkg/... ./plugin/... ./config/...

integration:
	$(GO) test -count=1 ./test/integration/...

# Budgets in executions, never in seconds: when a -fuzztime duration ends,
# Go's fuzz coordinator (before Go 1.27, go.dev/issue/75804) can report its
# own shutdown as "context deadline exceeded" and fail the run with no
# failing input (seen in CI with FuzzLedgerSequences and FuzzDecide). A
# count has no deadline to race. -fuzzminimizetime=0: no minimizing of new
# inputs (a minimization cut short failed the same way). A failing input is
# still saved under testdata/fuzz, unminimized.
FUZZFLAGS = -run='^$$' -fuzzminimizetime=0
fuzz:
	$(GO) test $(FUZZFLAGS) -fuzztime=$(FUZZ_CONFIG) -fuzz='^FuzzParseConfig$$' ./pkg/config
	$(GO) test $(FUZZFLAGS) -fuzztime=$(FUZZ_DECIDE) -fuzz='^FuzzDecide$$' ./pkg/policy
	$(GO) test $(FUZZFLAGS) -fuzztime=$(FUZZ_LEDGER) -fuzz='^FuzzLedgerSequences$$' ./pkg/node

E2E_ENV = E2E_REQUIRED=1 E2E_BIN_DIR=$(E2E_BIN) E2E_KUBE_BIN=$(E2E_BIN) E2E_KERNEL=$(E2E_KERNEL) E2E_MODULES=$(E2E_OUT)/kernel/modules \
	  E2E_BUSYBOX=/usr/bin/busybox E2E_IMAGE=$(abspath $(IMAGE_TAR))

## e2e: the end-to-end suite (root): builds what it needs, then runs.
e2e: e2e-deps e2e-bin kube-bin image
	$(E2E_ENV) $(GO) test -count=1 -v -timeout 45m -skip '^(TestDemo|TestBenchProtection)$$' ./test/e2e/

## demo: the README's first command: a cgroup v2 VM with real containerd,
## runc and nri-memqos, two pods, what each got and what the reconciler did.
demo: e2e-deps e2e-bin image
	@$(E2E_ENV) $(GO) test -count=1 -v -timeout 15m -run '^TestDemo$$' ./test/e2e/

## e2e-deps: Debian packages (installed when missing) and the cloud kernel for the VM.
e2e-deps: $(E2E_OUT)/kernel/.ok
	@pkgs=""; \
	  dpkg -s busybox-static >/dev/null 2>&1 || pkgs="$$pkgs busybox-static"; \
	  command -v qemu-system-x86_64 >/dev/null || pkgs="$$pkgs qemu-system-x86"; \
	  command -v cpio >/dev/null || pkgs="$$pkgs cpio"; \
	  command -v mkfs.ext4 >/dev/null || pkgs="$$pkgs e2fsprogs"; \
	  dpkg -s libseccomp-dev >/dev/null 2>&1 || pkgs="$$pkgs libseccomp-dev"; \
	  command -v pkg-config >/dev/null || pkgs="$$pkgs pkg-config"; \
	  command -v podman >/dev/null || pkgs="$$pkgs podman"; \
	  if [ -n "$$pkgs" ]; then \
	    echo "installing$$pkgs"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs; \
	  fi

# The kernel, and the modules the VM loads: virtio disk (reclaimable page
# cache needs a real filesystem), zram swap, and veth (the real node's pod
# network, CNI ptp).
E2E_MODULES := virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk \
               lzo lzo-rle zsmalloc zram veth
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

## e2e-bin: the runtime binaries and the plugin. runc is built with cgo and
## seccomp (libseccomp-dev): containerd gives every pod sandbox kubelet asks
## for a seccomp profile, and a runc without seccomp fails them all.
e2e-bin: $(E2E_BIN)/.tools-stamp
	$(call plugin-build,$(E2E_BIN)/nri-memqos)
	$(call plugin-build,$(E2E_BIN)/nri-memqos-oci-hook,,./plugin/oci-hook)

$(E2E_BIN)/.tools-stamp: test/tools/tools.go test/tools/go.mod test/tools/go.sum | e2e-deps
	@mkdir -p $(E2E_BIN)/cni
	cd test/tools && CGO_ENABLED=1 $(GO) build -trimpath -ldflags '-s -w' -o $(E2E_BIN)/ $(E2E_TOOLS)
	cd test/tools && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(E2E_BIN)/cni/ $(E2E_CNI)
	cd test/tools && CGO_ENABLED=1 $(GO) build -trimpath -ldflags '-s -w' -tags seccomp -o $(E2E_BIN)/ github.com/opencontainers/runc
	touch $@

## bench: benchmarks and docs/benchmarks.md with its charts (root; not part
## of make test). The headline ratios are the last lines it prints.
BENCH_OUT := $(abspath _output/bench)
bench: e2e-deps e2e-bin image
	@mkdir -p $(BENCH_OUT)
	$(GO) test -run '^$$' -bench 'Tick|RawRead' -benchtime 20x -count 5 ./pkg/reconcile/ > $(BENCH_OUT)/reconciler.txt
	TMPDIR=/dev/shm $(GO) test -run '^$$' -bench '^BenchmarkCreate$$' -benchtime 3000x -count 3 ./pkg/node/ > $(BENCH_OUT)/events.txt
	TMPDIR=/dev/shm $(GO) test -run '^$$' -bench '^BenchmarkHeap$$' -benchtime 1x -count 3 ./pkg/node/ >> $(BENCH_OUT)/events.txt
	$(GO) test -run '^$$' -bench '^BenchmarkScrape$$' -benchtime 5x -count 3 ./pkg/metrics/ >> $(BENCH_OUT)/events.txt
	BENCH_OUT=$(BENCH_OUT) $(GO) test -count=1 -run '^TestHookCost$$' -v -timeout 30m ./test/bench/hook/
	BENCH_OUT=$(BENCH_OUT) $(GO) test -count=1 -run '^TestOCIHookCost$$' -v -timeout 10m ./test/bench/ocihook/
	BENCH_OUT=$(BENCH_OUT) $(E2E_ENV) $(GO) test -count=1 -run '^TestBenchProtection$$' -v -timeout 50m ./test/e2e/
	@$(GO) run ./test/bench/report -in $(BENCH_OUT) -out docs

clean:
	rm -rf $(BIN) _output

# ==== BEGIN packaging and install: image, install, install-systemd ==========
# make image            static binary, then the OCI image layout tarball
#                       $(IMAGE_TAR) (no container engine needed); on a node:
#                       ctr -n k8s.io images import $(IMAGE_TAR)
# make install          pre-registered plugin (root): the runtime starts
#                       $(DESTDIR)/opt/nri/plugins/10-nri-memqos with
#                       $(DESTDIR)/etc/nri/conf.d/10-nri-memqos.conf, an
#                       existing one kept unless FORCE=1
# make install-systemd  external plugin (root): /usr/local/bin/nri-memqos,
#                       /etc/nri-memqos/nri-memqos.yaml (kept unless FORCE=1),
#                       /etc/systemd/system/nri-memqos.service
# Both honour DESTDIR. Use one of them (or the DaemonSet, config/), not two.
IMAGE_TAG    ?= localhost/nri-memqos:dev
IMAGE_TAR    ?= _output/nri-memqos-image.tar
IMAGE_ARCH   ?= amd64
IMAGE_SOURCE ?=
DESTDIR      ?=
FORCE        ?=

.PHONY: image build-static install install-systemd

build-static: build ## the same as build (kept for install and habit)

image: ## the plugin binary for IMAGE_ARCH, then the image tarball
	$(call plugin-build,$(BIN)/nri-memqos,$(IMAGE_ARCH))
	$(GO) run ./config/image -binary $(BIN)/nri-memqos -config config/nri-memqos.yaml \
	  -tag $(IMAGE_TAG) -arch $(IMAGE_ARCH) $(if $(IMAGE_SOURCE),-source '$(IMAGE_SOURCE)') -o $(IMAGE_TAR)

# install-conf SRC DST: install a configuration file, keeping an existing one
# unless FORCE=1.
define install-conf
	@if [ -e "$(2)" ] && [ "$(FORCE)" != 1 ]; then \
	  echo "kept $(2) (FORCE=1 replaces it with $(1))"; \
	else \
	  install -D -m 0644 $(1) "$(2)" && echo "installed $(2)"; \
	fi
endef

install: build-static
	install -D -m 0755 $(BIN)/nri-memqos "$(DESTDIR)/opt/nri/plugins/10-nri-memqos"
	$(call install-conf,config/nri-memqos.yaml,$(DESTDIR)/etc/nri/conf.d/10-nri-memqos.conf)
	@echo "restart the runtime (containerd or crio) to start the plugin; NRI must be on: see config/runtime/"
	@echo "to uninstall: see README.md, Uninstall (nri-memqos cleanup withdraws what the plugin set)"

## install-oci-hook: the OCI hook for runtimes without NRI (CRI-O without
## NRI, podman): the binaries first (the hook; nri-memqos for cleanup and
## explain), then the configuration, then the hooks.d file (a hooks.d file
## whose binary is missing fails every container start).
OCI_HOOKS_DIR ?= /usr/share/containers/oci/hooks.d
install-oci-hook: build-static
	$(call plugin-build,$(BIN)/nri-memqos-oci-hook,,./plugin/oci-hook)
	install -D -m 0755 $(BIN)/nri-memqos-oci-hook "$(DESTDIR)/usr/local/bin/nri-memqos-oci-hook"
	install -D -m 0755 $(BIN)/nri-memqos "$(DESTDIR)/usr/local/bin/nri-memqos"
	$(call install-conf,config/nri-memqos.yaml,$(DESTDIR)/etc/nri-memqos/nri-memqos.yaml)
	install -D -m 0644 config/runtime/oci-hooks.d/nri-memqos.json "$(DESTDIR)$(OCI_HOOKS_DIR)/nri-memqos.json"
	@echo "podman and CRI-O read $(OCI_HOOKS_DIR) at each container start (CRI-O watches it); see README.md, Without NRI: OCI hooks"

install-systemd: build-static
	install -D -m 0755 $(BIN)/nri-memqos "$(DESTDIR)/usr/local/bin/nri-memqos"
	$(call install-conf,config/nri-memqos.yaml,$(DESTDIR)/etc/nri-memqos/nri-memqos.yaml)
	install -D -m 0644 config/systemd/nri-memqos.service "$(DESTDIR)/etc/systemd/system/nri-memqos.service"
	@echo "then: systemctl daemon-reload && systemctl enable --now nri-memqos; NRI must be on: see config/runtime/"
	@echo "to uninstall: systemctl disable --now nri-memqos && nri-memqos cleanup -config /etc/nri-memqos/nri-memqos.yaml (README.md, Uninstall)"

# ==== END packaging and install ==============================================

# ==== BEGIN kube-bin: a real Kubernetes node for the end-to-end suite (issue 14)
# make kube-bin   kubelet, kube-apiserver, kube-controller-manager,
#                 kube-scheduler and kubectl (k8s.io/kubernetes,
#                 pinned in test/tools/kube) and etcd (go.etcd.io/etcd/server/v3,
#                 pinned in test/tools/kube/etcd; the etcd binary is that
#                 module's root package), from the Go module proxy into
#                 $(E2E_BIN), for the real node of the end-to-end suite
#                 (TestKubeNodeVM; about 15 minutes from a cold cache).
# Static (CGO_ENABLED=0: in these only the standard library's net and
# os/user have cgo code, and their Go versions read /etc/hosts,
# /etc/resolv.conf, /etc/passwd and /etc/group themselves), stripped, no local
# paths. The Kubernetes version is stamped the way its release build does
# (hack/lib/version.sh; buildDate is the tag's time from the module proxy):
# unstamped, kubelet and kube-apiserver call themselves v0.0.0-master. Built
# once, and again only when tools.go, a go.mod or a go.sum of the two modules
# changes.
KUBE_MOD   := test/tools/kube
KUBE_TOOLS := k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-apiserver \
              k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
              k8s.io/kubernetes/cmd/kubectl
KUBE_VERSION_PKGS := k8s.io/client-go/pkg/version k8s.io/component-base/version

.PHONY: kube-bin
kube-bin: $(E2E_BIN)/.kube-stamp

$(E2E_BIN)/.kube-stamp: $(KUBE_MOD)/tools.go $(KUBE_MOD)/go.mod $(KUBE_MOD)/go.sum $(KUBE_MOD)/etcd/go.mod $(KUBE_MOD)/etcd/go.sum
	@mkdir -p $(E2E_BIN)
	cd $(KUBE_MOD) && \
	  v=$$($(GO) list -m -f '{{.Version}}' k8s.io/kubernetes) && \
	  t=$$($(GO) list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes) && \
	  mm=$${v#v} && maj=$${mm%%.*} && mm=$${mm#*.} && min=$${mm%%.*} && x= && \
	  for p in $(KUBE_VERSION_PKGS); do \
	    x="$$x -X $$p.gitVersion=$$v -X $$p.gitMajor=$$maj -X $$p.gitMinor=$$min -X $$p.gitTreeState=clean -X $$p.buildDate=$$t"; \
	  done && \
	  CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w$$x" -o $(E2E_BIN)/ $(KUBE_TOOLS)
	cd $(KUBE_MOD)/etcd && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(E2E_BIN)/etcd go.etcd.io/etcd/server/v3
	touch $@
# ==== END kube-bin ==========================================================
