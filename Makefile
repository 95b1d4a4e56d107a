# Two commands do all of the set-up on a fresh machine:
#   make demo   creates .venv if absent, installs dropout-lab, runs the quickstart sweep
#   make test   the same set-up, then the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dropout-lab sweep configs/quickstart.yaml

test: $(STAMP)
	bash tests/setup_browser.sh
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check dropout_lab tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
