# The two quickstart commands: `make verify` (the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test verify demo figures bench clean

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

verify: $(STAMP)
	$(BIN)/brelax verify --out brelax-out

demo: $(STAMP)
	$(BIN)/brelax project --set ternary --n 1000000

figures: $(STAMP)
	$(BIN)/brelax figures --out figures/out

bench: $(STAMP)
	$(BIN)/brelax bench

clean:
	rm -rf $(VENV) brelax-out build *.egg-info
