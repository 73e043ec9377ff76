# hftlab: `make demo` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
# compiled code is cached in HFTLAB_NUMBA_CACHE (default ~/.cache/hftlab/numba), shared by
# the CLI, the demo, the tests and the benchmarks

.PHONY: demo test test-fast bench lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench,live]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m framework.demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile $(ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m 'not slow' $(ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check framework strategies research live tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache build *.egg-info
