# The two commands a newcomer needs (as root, on Debian/Ubuntu):
#   make demo   a full container migration between two sandbox hosts on this machine
#   make test   every test, unit and integration (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: deps engines venv test unit integration lint demo bench fuzz sandbox-clean

deps:
	@bash scripts/install-deps.sh

# Both newer engines for the sandbox's matrix (deps fetches docker-26 only).
engines:
	@bash scripts/fetch-engines.sh docker-26 docker-28

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

lint: venv
	$(PY) -m ruff check src tests sandbox scripts bench fuzz
	$(PY) -m mypy

test: deps venv lint
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest tests/unit

integration: deps venv
	$(PY) -m pytest tests/integration

demo: deps venv
	@$(PY) scripts/demo.py

sandbox-clean:
	@$(PYTHON) sandbox/sandbox.py clean

bench: deps venv
	@command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	@$(PY) bench/transfer.py --markdown bench/last-run.md

# Coverage-guided fuzzing of the archive reader (atheris); FUZZ_SECONDS to change the budget.
FUZZ_SECONDS ?= 300
fuzz: venv
	@$(PY) -m pip install --quiet --disable-pip-version-check atheris
	@$(PY) fuzz/fuzz_reader.py -max_total_time=$(FUZZ_SECONDS)
