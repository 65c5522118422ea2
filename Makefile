# Two commands do all set-up on a fresh machine:
#   make demo   the main job on the embedded default: simulate a small aging cohort, then
#               prepare -> train (5-fold, default model) -> predict held-out people from their
#               raw scans (with their MAE) -> evaluate -> report
#   make test   run the test suite (make test-fast skips the slow tests)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
# A local wheel directory (CPU torch) is used when present; nothing else is special.
WHEELS := $(wildcard /opt/wheels)
PIP_FLAGS = $(if $(WHEELS),--find-links $(WHEELS),)
DEMO_DIR ?= demo_out
DEMO_N  ?= 60
JOBS    ?= 2
# New people (another seed), never seen in training, predicted from their raw scans.
DEMO_HELDOUT ?= 12

.PHONY: install demo test test-fast lint bench clean model

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PIP_FLAGS) torch==2.13.0
	$(BIN)/pip install --quiet $(PIP_FLAGS) -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/brainage simulate $(DEMO_DIR)/bids --n $(DEMO_N) --sites 4 --seed 0
	$(BIN)/brainage cohort check $(DEMO_DIR)/bids
	$(BIN)/brainage prepare $(DEMO_DIR)/bids $(DEMO_DIR)/prepared --jobs $(JOBS)
	$(BIN)/brainage train $(DEMO_DIR)/prepared $(DEMO_DIR)/run --folds 5
	$(BIN)/brainage simulate $(DEMO_DIR)/heldout --n $(DEMO_HELDOUT) --sites 4 --seed 1
	$(BIN)/brainage predict $(DEMO_DIR)/run $(DEMO_DIR)/heldout -o $(DEMO_DIR)/heldout_predictions.tsv
	$(BIN)/brainage evaluate $(DEMO_DIR)/run/predictions.tsv -o $(DEMO_DIR)/run/evaluation
	$(BIN)/brainage report $(DEMO_DIR)/run -o $(DEMO_DIR)/report.html
	@echo "demo: open $(DEMO_DIR)/report.html"

# The bundled models (the default tissue_ridge and the CPU network for --init-from bundled),
# trained on the real IXI scans of ../shared/data (about 25 min on 2 cores).
model: install
	$(BIN)/python benchmarks/make_bundled_model.py --jobs $(JOBS)

# lint-imports checks the layer order (pyproject.toml [tool.importlinter]), mypy the typed
# public API (brainage/api/, [tool.mypy]); CI runs make test.
test: install
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 -q

# The inner loop: everything but the tests marked slow (the whole suite is `make test`).
test-fast: install
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .import_linter_cache .grimp_cache
