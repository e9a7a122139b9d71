# labrig — thin wrappers over ansible-playbook and `python -m verify`.
# `make help` lists the targets. Variables: HOST (host or group pattern; empty = whole inventory),
# INVENTORY (default ./inventory; without one, `make verify` checks this machine), ARGS (extra
# ansible-playbook arguments).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
INVENTORY ?= inventory
HOST ?=
ARGS ?=
RUN ?=
OPEN ?=
KEEP ?=
CPU_ONLY ?=
FRAMEWORK ?=
MINUTES ?=
DCGM_LEVEL ?=
SRC ?=
OUT ?=
BATCH ?=
MAX_FAIL ?=
# Operator values reach a shell: any that could end a quote or start a command is refused before
# make expands anything (exit 2). $(value) reads the raw text, so a $(shell ...) in it never runs.
quote := '
dquote := "
semi := ;
dollar := $$
backtick := `
pipe := |
amp := &
lt := <
gt := >
define newline


endef
refuse_unsafe = $(foreach char,$2,$(if $(findstring $($(char)),$(value $1)),$(error \
  $1: a value with $($(char)) is refused: it could run shell code)))$(if \
  $(findstring $(newline),$(value $1)),$(error $1: a value with a newline is refused: it could run shell code))
# Recipes single-quote every value but ARGS, which is split into words on purpose.
$(foreach var,HOST INVENTORY FRAMEWORK RUN CPU_ONLY OPEN KEEP BATCH MAX_FAIL FULL MINUTES DCGM_LEVEL SRC OUT,$(call refuse_unsafe,$(var),quote \
  dquote semi dollar backtick))
$(call refuse_unsafe,ARGS,quote dquote semi dollar backtick pipe amp lt gt)

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)

LIMIT = $(if $(HOST),--limit '$(HOST)',)
# No ./inventory and no INVENTORY= given: the commands act on this machine (see below).
NO_INVENTORY := $(if $(filter file,$(origin INVENTORY)),$(if $(wildcard $(INVENTORY)),,1),)
PLAYBOOK = $(BIN)/ansible-playbook -i '$(INVENTORY)' $(LIMIT)
VERIFY_VARS = $(if $(CPU_ONLY),-e verify_cpu_only=true,) $(if $(FRAMEWORK),-e 'verify_framework=$(FRAMEWORK)',)
# Rollouts: hosts in batches (a count, a percentage, or a list of them: 1,25%,100%), and how many
# per cent of a batch may fail before the rollout stops (a batch that fails whole always stops it).
ROLLOUT_VARS = $(if $(BATCH),-e 'labrig_batch=$(BATCH)',) $(if $(MAX_FAIL),-e 'labrig_max_fail=$(MAX_FAIL)',)
# FULL=1: every task, not the converged fast path (roles/labrig: labrig_fast_path).
FULL_VARS = $(if $(FULL),-e labrig_fast_path=false,)

.PHONY: help setup test lint unit docs fleet-test provision check verify report demo fleet-up fleet-down \
	bench-verify bench-fleet bench-scale mxnet-archive monitor trend _inventory _rollout

help: ## this list
	@grep -E '^[a-z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

setup: ## create .venv with the pinned toolchain, and the test harness's Debian packages (as root)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[controller]'
	tests/fleet/install-host-packages.sh

test: lint unit fleet-test ## everything CI runs: lint, fast tests, then the real-host fleet tests

lint: ## ruff, yamllint, ansible-lint (production profile), syntax-check of every playbook
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --offline -q
	for pb in playbooks/*.yml; do \
	  $(BIN)/ansible-playbook -i inventory.example --syntax-check "$$pb" >/dev/null; done
	$(BIN)/python scripts/role_docs.py --check
	@echo "lint: ok"

unit: ## fast tests: verify suite, reports, role logic rendered through Ansible
	$(BIN)/python -m pytest -q tests/unit tests/roles tests/fleet/test_fleet_support.py

docs: ## rewrite each role README's Variables section from its meta/argument_specs.yml
	$(BIN)/python scripts/role_docs.py

fleet-test: ## boot a local fleet of real Debian 12 hosts and run provision + verify against it
	tests/fleet/e2e.sh

_inventory:
	@[ -f '$(INVENTORY)' ] || [ -d '$(INVENTORY)' ] || { \
	  echo "error: inventory '$(INVENTORY)' not found: copy inventory.example to inventory, or pass INVENTORY=path" >&2; exit 2; }
	@if [ -n '$(HOST)' ]; then \
	  for pattern in $$(echo '$(HOST)' | tr ',:' '  '); do \
	    case "$$pattern" in '!'*|'&'*) continue;; esac; \
	    n=$$($(BIN)/ansible -i '$(INVENTORY)' "$$pattern" --list-hosts 2>/dev/null | sed -n '1s/.*hosts (\([0-9]*\)).*/\1/p'); \
	    if [ "$${n:-0}" = 0 ]; then \
	      known=$$($(BIN)/ansible -i '$(INVENTORY)' all --list-hosts 2>/dev/null | tail -n +2 | xargs); \
	      echo "error: HOST=$$pattern is not a host or group in $(INVENTORY); known hosts: $$known" >&2; exit 2; fi; \
	  done; fi

_rollout:
	@[[ -z '$(BATCH)' || '$(BATCH)' =~ ^[1-9][0-9]*%?(,[1-9][0-9]*%?)*$$ ]] || { \
	  echo "error: BATCH=$(BATCH): give a number of hosts (1), a percentage (25%) or a list of them (1,25%,100%)" >&2; exit 2; }
	@[[ -z '$(MAX_FAIL)' || '$(MAX_FAIL)' =~ ^([0-9]|[1-9][0-9]|100)$$ ]] || { \
	  echo "error: MAX_FAIL=$(MAX_FAIL): give the percentage of a batch that may fail (0-100)" >&2; exit 2; }

ifeq ($(NO_INVENTORY),1)
# No inventory: verify checks this machine; provision and check touch only an explicit localhost.
provision check:
	@if [ '$(HOST)' != localhost ]; then \
	  echo "$@: no inventory ('$(INVENTORY)' not found), and labrig never provisions this machine by default." >&2; \
	  echo "  Write one: cp inventory.example inventory, list your workstations, then make $@ [HOST=ws01]." >&2; \
	  echo "  To provision this controller itself: make $@ HOST=localhost ARGS='-e labrig_provision_localhost=true'" >&2; \
	  exit 2; fi
	$(BIN)/ansible-playbook -i localhost, -c local -e ansible_python_interpreter=/usr/bin/python3 \
	  playbooks/provision.yml \
	  $(if $(filter check,$@),--check --diff,) $(FULL_VARS) $(ARGS)

verify:
	$(BIN)/python -m verify.this_machine $(if $(CPU_ONLY),--cpu-only,) \
	  $(if $(FRAMEWORK),--framework '$(FRAMEWORK)',)
else
provision: _inventory _rollout ## provision HOST (or every host; BATCH=1,25% MAX_FAIL=0 for a rollout; FULL=1 runs every task)
	$(PLAYBOOK) playbooks/provision.yml $(ROLLOUT_VARS) $(FULL_VARS) $(ARGS)

check: _inventory _rollout ## dry run of provision with --check --diff: what would change on HOST
	$(PLAYBOOK) playbooks/provision.yml --check --diff $(ROLLOUT_VARS) $(ARGS)

verify: _inventory ## verify HOST (or every host; no inventory: this machine), print the fleet report
	$(PLAYBOOK) playbooks/verify.yml $(VERIFY_VARS) $(ARGS)
endif

.PHONY: burn-in bench-burn-in _burn_in_args
BURN_IN_VARS = -e verify_burn_in_minutes='$(MINUTES)' $(if $(DCGM_LEVEL),-e verify_dcgm_level=$(DCGM_LEVEL),)

_burn_in_args:
	@[[ '$(MINUTES)' =~ ^[0-9]*\.?[0-9]+$$ ]] && awk 'BEGIN { exit !($(MINUTES) > 0) }' || { \
	  echo "error: MINUTES=$(MINUTES): give the burn-in's length in minutes, a positive number (10, 0.5)" >&2; exit 2; }
	@[[ -z '$(DCGM_LEVEL)' || '$(DCGM_LEVEL)' =~ ^[23]$$ ]] || { \
	  echo "error: DCGM_LEVEL=$(DCGM_LEVEL): dcgmi diag runs level 2 (default) or 3" >&2; exit 2; }

ifeq ($(NO_INVENTORY),1)
burn-in: _burn_in_args
	$(BIN)/python -m verify burn-in --minutes '$(MINUTES)' $(if $(CPU_ONLY),--cpu-only,) \
	  $(if $(FRAMEWORK),--framework '$(FRAMEWORK)',) $(if $(DCGM_LEVEL),--dcgm-level '$(DCGM_LEVEL)',)
else
burn-in: _burn_in_args _inventory ## MINUTES of full load on every GPU of HOST, beside verify in the fleet report
	$(PLAYBOOK) playbooks/burn-in.yml $(VERIFY_VARS) $(BURN_IN_VARS) $(ARGS)
endif

bench-burn-in: ## the burn-in sampler's overhead on GEMM throughput (one run, CPU here)
	$(BIN)/python benchmarks/burn_in_sampler.py

mxnet-archive: ## offline MXNet source archive from a recursive 1.9.1 checkout: SRC=<checkout> [OUT=artifacts]
	@[ -n '$(SRC)' ] || { echo "error: SRC=<a recursive git checkout of MXNet 1.9.1> is required" >&2; exit 2; }
	$(BIN)/python scripts/mxnet_archive.py '$(SRC)' $(if $(OUT),--out '$(OUT)',)

monitor: _inventory ## Prometheus scrape config (targets: the inventory's labrig_monitoring hosts) + alert rules into OUT (default reports/monitoring)
	$(BIN)/python scripts/monitor_config.py --inventory '$(INVENTORY)' --out '$(or $(OUT),reports/monitoring)'

report: ## re-render the latest fleet report (RUN=<id> for an older one; OPEN=1 opens it)
	$(BIN)/python -m verify.fleet report --width 80 $(if $(RUN),--run '$(RUN)',)
	@html=$$(readlink -f reports/$(or $(RUN),latest))/fleet.html; \
	if [ -n '$(OPEN)' ] && [ -n "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}" ] && command -v xdg-open >/dev/null; then \
	  xdg-open "$$html" >/dev/null 2>&1 & \
	elif [ -n '$(OPEN)' ]; then echo "report: no desktop here to open it; the file is $$html"; fi

trend: ## one host's history: each check's state across the stored runs (HOST=<name>; changed or failing ones)
	@[ -n '$(HOST)' ] || { echo "error: HOST=<a host of the stored runs> is required" >&2; exit 2; }
	$(BIN)/python -m verify.fleet trend '$(HOST)'

demo: ## boot a local fleet, provision + verify one CPU host, show its report (root; KEEP=1 keeps it)
	KEEP='$(KEEP)' tests/fleet/demo.sh

fleet-up: ## boot the local test fleet (root; see tests/fleet/README.md)
	tests/fleet/fleet.sh up

fleet-down: ## stop the local test fleet and remove everything it started
	tests/fleet/fleet.sh down

bench-verify: ## wall time of the verify suite and of each check, CPU only
	$(BIN)/python benchmarks/verify_time.py

bench-fleet: ## provisioning 1 vs 3 hosts, no-op wall/CPU, labrig vs plain apt+pip, shared source build (root)
	benchmarks/fleet.sh

bench-scale: ## 24 light hosts: no-op provision and quick verify at 1, 8, 24 hosts; memory; report size (root; not in CI)
	benchmarks/scale.sh
