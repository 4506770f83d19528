# The two quickstart commands: `make verify` (the main job) and `make test`.
# Contributors: `make test-fast` (the inner loop, under a minute), `make lint`, `make typecheck`, `make docs`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint typecheck docs verify demo figures bench clean proofs

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first and pinned: an unpinned torch pulls a CUDA build of several GB.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	@if command -v coqc >/dev/null; then $(MAKE) --no-print-directory proofs; else echo "make test: coqc not found, the Coq proofs (make proofs) were skipped"; fi

# The Coq development of theory/coq/ (apt-get install coq libcoq-mathcomp-algebra-tactics): builds it,
# fails on Admitted/admit/Axiom/Parameter or an axiom in Print Assumptions, prints the theorems checked.
# Standard library only, so it needs no venv.
proofs:
	$(PY) theory/proofs.py

# Everything but the slow (whole-pipeline) and the torch tests; markers in pyproject.toml and tests/conftest.py.
test-fast: $(STAMP)
	HYPOTHESIS_PROFILE=fast $(BIN)/python -m pytest -q -m "not slow and not torch" $(PYTEST_ARGS)

# All three run even when one fails.
lint: $(STAMP)
	@rc=0; $(BIN)/ruff check . || rc=1; $(BIN)/ruff format --check . || rc=1; $(BIN)/lint-imports || rc=1; exit $$rc

typecheck: $(STAMP)
	$(BIN)/mypy

# Warnings are errors; the site is docs/_build/html/index.html. docs/api/ is generated: stale pages of
# removed modules would fail the build, so it starts empty. The tutorials (docs/tutorials_gen/, rerun only
# when their script changed) and the gallery's figures (docs/_build/figures/, rerun when the sources
# changed) are cached between builds. The math needs Debian's libjs-mathjax (docs/_ext/offline_mathjax.py).
docs: $(STAMP)
	rm -rf docs/api
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

verify: $(STAMP)
	$(BIN)/brelax verify --out brelax-out

demo: $(STAMP)
	$(BIN)/brelax project --set ternary --n 1000000

figures: $(STAMP)
	$(BIN)/brelax figures --out figures/out

bench: $(STAMP)
	$(BIN)/brelax bench

clean:
	rm -rf $(VENV) brelax-out build *.egg-info docs/_build docs/api docs/tutorials_gen docs/gallery.rst docs/sg_execution_times.rst
