# labrig's make targets. The operator's commands are aliases of the `labrig` command (labrig/cli.py):
# `make provision HOST=ws01` runs `labrig --from-make provision`, which reads HOST, INVENTORY, ARGS,
# BATCH, MAX_FAIL, FULL, CPU_ONLY, FRAMEWORK, MINUTES, DCGM_LEVEL, RUN, OPEN, KEEP, OUT and DRY_RUN
# from make's environment and checks each before anything runs; no value reaches a shell.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)
.PHONY: help setup test lint unit docs fleet-test fleet-up fleet-down mxnet-archive provision check \
	verify burn-in report trend monitor demo bench-verify bench-fleet bench-debian13 bench-scale bench-burn-in

help: ## this list; `labrig --help` and `labrig COMMAND --help` tell the rest
	@grep -E '^[a-z_ -]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

setup: ## create .venv with the pinned toolchain, and the test harness's Debian packages (as root)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[controller]'
	tests/fleet/install-host-packages.sh
test: lint unit fleet-test ## everything CI runs: lint, fast tests, then the real-host fleet tests

lint: ## ruff, yamllint, ansible-lint (production profile), syntax-check of every playbook
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/yamllint -s .
	$(BIN)/ansible-lint --offline -q
	for pb in playbooks/*.yml; do $(BIN)/ansible-playbook -i inventory.example --syntax-check "$$pb" >/dev/null; done
	$(BIN)/python scripts/role_docs.py --check && $(BIN)/python scripts/cli_reference.py --check
	@echo "lint: ok"

unit: ## fast tests: verify suite, reports, role logic rendered through Ansible
	$(BIN)/python -m pytest -q tests/unit tests/roles tests/fleet/test_fleet_support.py
docs: ## rewrite the role READMEs' Variables and docs/commands.md from their sources
	$(BIN)/python scripts/role_docs.py && $(BIN)/python scripts/cli_reference.py

fleet-test: ## boot a local fleet of real Debian 12 hosts and run provision + verify against it
	tests/fleet/e2e.sh
provision check verify burn-in report trend monitor demo: ## labrig's commands: labrig COMMAND --help
	@$(BIN)/labrig --from-make $@

mxnet-archive: ## offline MXNet source archive from a recursive 1.9.1 checkout: SRC=<checkout> [OUT=artifacts]
	@[ -n "$${SRC:-}" ] || { echo "error: SRC=<a recursive git checkout of MXNet 1.9.1> is required" >&2; exit 2; }
	$(BIN)/python scripts/mxnet_archive.py "$$SRC" $${OUT:+--out "$$OUT"}

fleet-up: ## boot the local test fleet (root; see tests/fleet/README.md)
	tests/fleet/fleet.sh up
fleet-down: ## stop the local test fleet and remove everything it started
	tests/fleet/fleet.sh down

bench-verify: ## wall time of the verify suite and of each check, CPU only
	$(BIN)/python benchmarks/verify_time.py
bench-fleet: ## provisioning 1 vs 3 hosts, no-op wall/CPU, labrig vs plain apt+pip, shared source build (root)
	benchmarks/fleet.sh
bench-debian13: ## the full stack on a fresh Debian 13 host, labrig vs plain apt + CPython build + pip (root; also in bench-fleet)
	benchmarks/debian13_full_stack.sh
bench-scale: ## 24 light hosts: no-op provision and quick verify at 1, 8, 24 hosts; memory; report size (root; not in CI)
	benchmarks/scale.sh
bench-burn-in: ## the burn-in sampler's overhead on GEMM throughput (one run, CPU here)
	$(BIN)/python benchmarks/burn_in_sampler.py
