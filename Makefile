# Two commands do all the set-up on a fresh machine (Python >= 3.10 with venv):
#   make run    - create .venv, install hyco, run the default experiment end to end
#   make test   - create .venv, install hyco with dev and cluster extras, run the tests
# Pass Hydra overrides to `make run` with ARGS, e.g. make run ARGS="experiment=heat_2d_quick".
PYTHON ?= python3
VENV ?= .venv
# torch first, pinned, so that pip takes the CPU build instead of several GB of CUDA wheels.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.hyco-installed
ARGS ?=
PYTEST_ARGS ?=

DOCS_STAMP := $(VENV)/.hyco-docs-installed

.PHONY: run test test-slow lint mutate bench docs venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,cluster]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/hyco run $(ARGS)

# The default suite runs on every core (pytest-xdist, one file per worker so module fixtures run once);
# the slow suite runs serially, because some of its tests time commands or load the machine on purpose.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses=8 --dist loadfile $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

# Mutation testing of the core modules (configured in pyproject.toml's [tool.mutmut]; docs/development/testing.md):
# about two hours on 2 busy shared cores, so not part of `make test`. `mutmut results` lists the survivors afterwards.
mutate: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children $(or $(MUTATE_JOBS),2)
	$(BIN)/mutmut results

# The API reference from the docstrings (mkdocs + mkdocstrings) into site/; any warning fails the build.
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,cluster,docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) outputs site
