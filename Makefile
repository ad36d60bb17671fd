# Tandem: active/standby failover across two data centers.
#
#   make demo    bring up two local data centers and walk through the story
#   make test    every test: unit, integration (real API servers) and e2e

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

CONTROLLER_TOOLS_VERSION ?= v0.23.0
CRD_REF_DOCS_VERSION ?= v0.3.0
LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
# helm, for the chart tests; pinned in hack/tools/helm/go.mod.
HELM ?= $(LOCALBIN)/helm
# promtool, for checking the chart's PrometheusRule; pinned in hack/tools/promtool/go.mod.
PROMTOOL ?= $(LOCALBIN)/promtool
# Where the test bed keeps its clusters, logs and kubeconfigs.
TESTBED_DIR ?= $(CURDIR)/.work/testbed
GO_TEST_FLAGS ?= -count=1 -timeout 45m
IMG ?= ghcr.io/tandem-dev/tandem-operator:dev

.PHONY: all
all: build

##@ Development

$(CONTROLLER_GEN):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

$(HELM): hack/tools/helm/go.mod
	mkdir -p $(LOCALBIN)
	cd hack/tools/helm && GOBIN=$(LOCALBIN) go install helm.sh/helm/v3/cmd/helm
	touch $(HELM)

.PHONY: helm
helm: $(HELM) ## Build helm (pinned) into bin/ for the chart tests.

$(PROMTOOL): hack/tools/promtool/go.mod
	mkdir -p $(LOCALBIN)
	cd hack/tools/promtool && GOBIN=$(LOCALBIN) go install -trimpath -ldflags "-s -w" github.com/prometheus/prometheus/cmd/promtool
	touch $(PROMTOOL)

.PHONY: promtool
promtool: $(PROMTOOL) ## Build promtool (pinned) into bin/ for the chart tests.

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code, CRDs, RBAC, the chart's copies and the API reference.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$(MAKE) manifests api-docs

.PHONY: api-docs
api-docs: ## Regenerate docs/reference.md from the API types (crd-ref-docs).
	go run github.com/elastic/crd-ref-docs@$(CRD_REF_DOCS_VERSION) --log-level ERROR --source-path ./api/v1alpha1 \
	  --config hack/api-docs/config.yaml --renderer markdown --output-path docs/reference.md

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Regenerate CRDs and RBAC under config/.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=tandem-operator paths=./internal/... output:rbac:artifacts:config=config/rbac
	go run ./hack/chartgen

.PHONY: verify-generated
verify-generated: generate ## Fail when generated files differ from what is committed.
	@if [ -n "$$(git status --porcelain -- api config charts docs/reference.md)" ]; then \
	  echo "Generated files are stale; run 'make generate' and commit:"; git status --porcelain -- api config charts docs/reference.md; git diff --stat -- api config charts docs/reference.md; exit 1; fi

.PHONY: lint
lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "Not gofmt-clean:"; echo "$$out"; exit 1; fi
	go vet ./...

##@ Build

.PHONY: build
build: ## Build the operator, the kubectl plugin and the test bed command into bin/.
	go build -o $(LOCALBIN)/tandem-operator ./cmd/tandem-operator
	go build -o $(LOCALBIN)/kubectl-tandem ./cmd/kubectl-tandem
	go build -o $(LOCALBIN)/testbed ./hack/testbed

# The plugin's release version (krew wants vX.Y.Z): the chart's appVersion.
VERSION ?= v$(shell sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/tandem/Chart.yaml)

.PHONY: dist
dist: ## Build the kubectl plugin's release archives, checksums and krew manifest into dist/ (VERSION, PLATFORMS).
	VERSION=$(VERSION) hack/dist.sh

.PHONY: image
image: ## Build the operator image as bin/tandem-operator.tar (no Docker engine; reproducible). IMG= names it, PUSH=1 pushes it.
	go run ./hack/image -o $(LOCALBIN)/tandem-operator.tar -tag $(IMG) $(if $(PUSH),-push)

##@ Test

.PHONY: testbed-bins
testbed-bins: ## Build (once, cached in ~/.cache/tandem) the control-plane, etcd, kwok, CSI sidecar, external-dns and real-node binaries; install BIND and runc from Debian when missing.
	hack/host-deps.sh
	hack/build-testbed-bins.sh >/dev/null
	hack/build-testbed-bins.sh snapshot-controller csi-snapshotter csi-provisioner >/dev/null
	hack/build-testbed-bins.sh external-dns >/dev/null
	hack/build-testbed-bins.sh kubelet containerd ctr containerd-shim-runc-v2 bridge host-local loopback >/dev/null

.PHONY: test
test: testbed-bins $(HELM) $(PROMTOOL) ## Run every test: unit, integration against real API servers, the chart, and e2e on the kwok test bed.
	go test $(GO_TEST_FLAGS) ./...

.PHONY: test-integration
test-integration: testbed-bins $(HELM) $(PROMTOOL) ## Unit and integration tests only (no kwok clusters).
	go test $(GO_TEST_FLAGS) $$(go list ./... | grep -v /test/e2e)

.PHONY: e2e
e2e: testbed-bins ## End-to-end tests on the kwok test bed.
	go test $(GO_TEST_FLAGS) -v ./test/e2e/...

# The fault suite's schedule: `make chaos SEED=3 DURATION=10m`.
SEED ?= 1
DURATION ?= 10m
# Where a chaos run keeps the operators' logs and its report.
CHAOS_DIR ?= $(CURDIR)/.work/chaos

.PHONY: chaos
chaos: testbed-bins ## Run the fault suite: a seeded schedule of faults (SEED, DURATION; REAL=1 runs the app on real nodes), with the figures and every broken promise.
	mkdir -p $(CHAOS_DIR)/seed-$(SEED)
	TANDEM_CHAOS_SEED=$(SEED) TANDEM_CHAOS_DURATION=$(DURATION) TANDEM_CHAOS_LOGS=$(CHAOS_DIR)/seed-$(SEED) \
	  $(if $(REAL),TANDEM_CHAOS_REAL_NODES=1) \
	  go test -count=1 -timeout 4h -v -run '^TestFaultSchedule$$' ./test/e2e/

##@ Test bed

.PHONY: testbed-up
testbed-up: testbed-bins ## Bring up dc-east and dc-west (WITNESS=1 adds a witness cluster).
	go run ./hack/testbed -dir $(TESTBED_DIR) up $(if $(WITNESS),-witness)

.PHONY: testbed-down
testbed-down: ## Stop every test bed cluster and process.
	go run ./hack/testbed -dir $(TESTBED_DIR) down

.PHONY: testbed-status
testbed-status: ## Show the test bed clusters.
	go run ./hack/testbed -dir $(TESTBED_DIR) status

.PHONY: demo
demo: testbed-bins $(HELM) ## Bring up two data centers with real nodes, helm install Tandem in both, and show what works today.
	hack/demo.sh

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ { printf "  %-18s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
