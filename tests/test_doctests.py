"""The Examples sections of the API's docstrings run as doctests: an example that drifts from the code fails here.

Every module of ``brelax``, ``theory``, ``proofs_checks`` and ``figures`` whose source holds a ``>>>``
prompt is imported and its docstrings are run with :mod:`doctest` (NumPy's array repr as printed by
the installed NumPy; ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE`` on). Modules under ``brelax/torch``
are marked ``torch``, so ``make test-fast`` leaves them out like the other torch tests.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("brelax", "theory", "proofs_checks", "figures")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "__main__.py" or ">>>" not in path.read_text(encoding="utf-8"):
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_the_api_has_examples_to_run():
    # The core the README shows: sets and projections, the prox; and the torch optimizer.
    for name in ("brelax.sets", "brelax.prox", "brelax.torch.optimizer"):
        assert name in MODULES, f"{name} has no Examples section with a >>> prompt"


@pytest.mark.parametrize(
    "name", [pytest.param(m, marks=pytest.mark.torch) if m.startswith("brelax.torch") else m for m in MODULES]
)
def test_examples_run(name):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module, name) if t.examples]
    assert tests, f"{name}: a '>>>' in the source but no docstring example found"
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    with np.printoptions(legacy=False):
        for test in tests:
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} doctest examples failed (output above)"
