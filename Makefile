# dolphin: the two set-up commands are `make run` (main job, embedded default) and `make test`.
SHELL := /bin/bash
# The first Python 3.12 that really runs (pyenv's shim for python3.12 may exist without working).
PYTHON ?= $(shell for p in $(HOME)/.pyenv/versions/3.12.*/bin/python3.12 /root/.pyenv/versions/3.12.*/bin/python3.12 $$(command -v python3.12); do "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test test-slow bench venv sysdeps clean

$(VENV)/.installed: requirements.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: python3.12 not found (install it with pyenv: pyenv install 3.12)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . || $(PY) -m pip install --quiet --no-deps -e .
	@touch $@

venv: $(VENV)/.installed

## The main job on the embedded default (no external services needed).
run: venv
	$(VENV)/bin/dolphin run

sysdeps:
	bash scripts/sysdeps.sh

## The test suite (starts and stops the services the tests need).
test: venv sysdeps
	bash scripts/test.sh

## Slow suites, kept out of `make test`.
test-slow: venv sysdeps
	bash scripts/test.sh -m slow

## All benchmarks; each writes bench/results/<area>.json.
bench: venv
	bash scripts/bench.sh

clean:
	rm -rf $(VENV) var
