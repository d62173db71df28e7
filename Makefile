# floe-testinfra: run `make help` for the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

UV_VERSION := 0.13.9
# uv from PATH, else a private copy installed from PyPI into .tools/ (no curl | sh).
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/uv/bin/uv)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
FLOE_TEST := $(VENV)/bin/floe-test
RESULTS ?= test-results
PYTEST_ARGS ?=

# Local Pulumi state and secrets: no account, no prompt. Override with the usual Pulumi variables.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.state/pulumi
export PULUMI_CONFIG_PASSPHRASE ?=
export PULUMI_SKIP_UPDATE_CHECK := true
export PATH := $(CURDIR)/bin:$(PATH)

.PHONY: help setup test lint templates render benchmarks test-k8s test-e2e test-k8s-cleanup doctor tools
.PHONY: host-prep node-image airgapped-images

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	@echo "uv not found: installing uv $(UV_VERSION) from PyPI into .tools/uv"
	python3 -m venv $(CURDIR)/.tools/uv
	$(CURDIR)/.tools/uv/bin/pip install --quiet "uv==$(UV_VERSION)"

$(PY): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch $(PY)

setup: $(PY) ## Install uv (if absent) and every dependency into .venv, from uv.lock

test: setup ## Offline suite: unit tests, Pulumi mocks, local servers; the real Pulumi engine and Docker image builds where present
	@# pytest exit 5 ("no tests collected") is a failure here, said plainly, never a pass.
	$(PY) -m pytest tests/unit tests/realengine tests/docker $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc; }

lint: setup ## ruff, mypy (strict on components/ and testing/), actionlint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check components testing floe_test floe_model floe_build
	$(VENV)/bin/mypy
	@test -x bin/actionlint || $(PY) -m floe_build.toolchain install --tool actionlint
	bin/actionlint

templates: setup ## Regenerate templates/test-job.yaml from the TestJob component
	$(FLOE_TEST) templates

render: setup ## Render both stacks into render/ without a cluster (Pulumi mocks)
	$(FLOE_TEST) render integration --out render/integration
	$(FLOE_TEST) render e2e --out render/e2e

benchmarks: setup ## Run the quick benchmarks (ratios against a baseline measured in the same run)
	@for bench in $(filter-out $(SLOW_BENCHMARKS),$(wildcard benchmarks/bench_*.py)); do echo "== $$bench"; $(PY) "$$bench"; done

# Creates two Kind clusters one after the other (tens of minutes): opt-in, not part of `make benchmarks`.
SLOW_BENCHMARKS := benchmarks/bench_orchestration_overhead.py
bench-overhead: setup tools ## floe-test run against bare kind + helm + kubectl doing the same work (two clusters; slow)
	$(PY) benchmarks/bench_orchestration_overhead.py $(if $(AIRGAPPED),,--variant "" --node-image "")

doctor: setup ## Check prerequisites (Docker, kind, kubectl, helm, pulumi, inotify, disk)
	$(FLOE_TEST) doctor

tools: setup ## Install pinned, checksummed kind/kubectl/helm/pulumi into bin/ (builds from Go modules offline)
	$(PY) -m floe_build.toolchain install

# AIRGAPPED=1: images, charts and the node image built on this machine (make node-image airgapped-images).
AIRGAP_SETTINGS = $(if $(AIRGAPPED),--set variant=airgapped --set nodeImage=local)

# KEEP_CLUSTER=1 keeps the cluster always; KEEP_ON_FAILURE=1 keeps it (with the failed run's namespace,
# Job, pod and results) only when the tests fail. Remove a kept cluster with `make test-k8s-cleanup`.
KEEP_FLAGS = $(if $(KEEP_CLUSTER),--keep-cluster) $(if $(KEEP_ON_FAILURE),--keep-on-failure)

test-k8s: setup tools ## Integration run in a 1-node Kind cluster; results in test-results/ (KEEP_CLUSTER=1 / KEEP_ON_FAILURE=1 keep it, AIRGAPPED=1 offline)
	$(FLOE_TEST) run integration --out $(RESULTS)/integration $(KEEP_FLAGS) --reuse $(AIRGAP_SETTINGS)

test-e2e: setup tools ## E2E run in a 3-node Kind cluster with the full platform (AIRGAPPED=1: the reduced offline variant)
	$(FLOE_TEST) run e2e --out $(RESULTS)/e2e $(KEEP_FLAGS) --reuse $(AIRGAP_SETTINGS)

test-k8s-cleanup: setup tools ## Destroy this checkout's stacks and the kind clusters it created (never another's)
	$(FLOE_TEST) cleanup

host-prep: setup ## Prepare Docker for kind on this host, only what is detected missing (root; docs/guides/air-gapped.md)
	$(PY) -m floe_build host-prep

node-image: setup ## Build the Kind node image for the pinned Kubernetes from Debian packages and Go modules (cached)
	$(PY) -m floe_build node-image

airgapped-images: setup ## Build the air-gapped profile's service images (Debian + PyPI; E2E=1 adds the E2E services' images; cached by content)
	nice -n 10 $(PY) -m floe_build.service_images $(if $(E2E),--e2e)
