# Two commands do all set-up on a fresh machine:
#   make demo   simulate a small aging cohort and validate it (the embedded default)
#   make test   run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
# A local wheel directory (CPU torch) is used when present; nothing else is special.
WHEELS := $(wildcard /opt/wheels)
PIP_FLAGS = $(if $(WHEELS),--find-links $(WHEELS),)
DEMO_DIR ?= demo_out

.PHONY: install demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PIP_FLAGS) torch==2.13.0
	$(BIN)/pip install --quiet $(PIP_FLAGS) -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/brainage simulate $(DEMO_DIR)/bids --n 40 --sites 4 --seed 0 --overwrite
	$(BIN)/brainage cohort check $(DEMO_DIR)/bids

test: install
	$(BIN)/python -m pytest -n 2 -q

lint: install
	$(BIN)/ruff check src tests benchmarks

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
