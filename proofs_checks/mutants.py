"""Teeth: seeded defects that the checks must catch (``brelax verify --mutants``).

A *mutant* is the embedded verifier run on a small suite with one defect
injected from outside brelax: through the Suite's ``optimize`` hook (a step
rule registered for the duration of one run), a wrapped problem, or a
replacement projector. A mutant is *caught* when some result comes out
``"violated"``; ``brelax verify --mutants`` exits 0 only when every defect is
caught. :data:`CONTROL` injects nothing and must come out *missed*: it is how
the tests show that the harness itself can fail.

The defects (:data:`DEFECTS`):

============================ ======================================================================
``twn_projection``           TWN (a heuristic) in place of the exact ternary projection
``gradient_at_y``            the gradient taken at the anchor y instead of at x
``L_too_small``              the problem claims half its smoothness constant L
``mu_one_step_behind``       x_(t+1) formed with mu_t instead of mu_(t+1)
``stale_quantization``       P(y) recomputed only every 4th step, reused stale in between
``lr_off_1pct``              every step taken with 1.01 times the recorded learning rate
============================ ======================================================================
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import brelax
from brelax import heuristics, steps
from brelax._atomic import atomic_write_text
from brelax.prox import relax

from . import suite as S


@dataclass(frozen=True)
class Mutant:
    """One seeded defect.

    Attributes
    ----------
    name, description : str
    build : callable ``(seed) -> (Suite, projectors or None, modules or None)``; ``modules`` None: every
        check module that reads runs.
    """

    name: str
    description: str
    build: Callable


# -- the small problems a mutant runs on ------------------------------------------------------------


def _lsq(seed, qset="binary"):
    from brelax.problems import least_squares

    return least_squares(40, 20, qset, seed=seed)


def _suite(problem, seed, optimize=None, specs=(S.BR, S.BR_FIXED, S.BC), qset="binary", steps=120):
    p = S.ProblemSpec(f"mutant-lsq(m=40,n=20,{qset})", lambda: problem, qset, steps, None, specs)
    return S.Suite(quick=True, seed=seed, problems=[p], optimize=optimize)


@contextlib.contextmanager
def registered(method: steps.Method):
    """``method`` available to :func:`brelax.optimize` as ``"mutant"`` for the duration (then removed)."""
    key = "mutant"
    steps.METHODS[key] = method
    try:
        yield key
    finally:
        steps.METHODS.pop(key, None)


def _hook(make_update):
    """An ``optimize`` hook that runs the lazy methods with the update ``make_update()`` (fresh per run)."""

    def optimize(problem, method="binaryrelax", **kw):
        base = steps.get_method(method)
        if not base.lazy:
            return brelax.optimize(problem, method=method, **kw)
        with registered(base._replace(update=make_update(problem, base))) as key:
            return brelax.optimize(problem, method=key, **kw)

    return optimize


# -- the defects --------------------------------------------------------------------------------------


def _twn(seed):
    """TWN in the exact projection's place: in the projection checks, and as the projection of a ternary run."""
    from .cli import NEEDS_RUNS

    def make(problem, base):
        def update(state, grad, lr, mu_next, project):
            y = state.y - lr * grad
            p = heuristics.twn(y)
            return steps.State(relax(y, p, mu_next), y, p)

        return update

    suite = _suite(_lsq(seed, "ternary"), seed, _hook(make), qset="ternary")
    return suite, {"ternary": heuristics.twn}, ["check_projection", *sorted(NEEDS_RUNS)]


def _grad_at_y(seed):
    def make(problem, base):
        def update(state, grad, lr, mu_next, project):
            y = state.y - lr * problem.grad(state.y)
            p = project(y)
            return steps.State(relax(y, p, mu_next), y, p)

        return update

    return _suite(_lsq(seed), seed, _hook(make)), None, None


class _SmallerL:
    """A problem that claims ``factor`` times its smoothness constant (everything else delegated)."""

    def __init__(self, problem, factor):
        self._p, self.L = problem, problem.L * factor

    def __getattr__(self, name):
        return getattr(self._p, name)

    def describe(self):
        return {**self._p.describe(), "L": self.L}


def _small_L(seed):
    return _suite(_SmallerL(_lsq(seed), 0.5), seed), None, None


def _mu_behind(seed):
    def make(problem, base):
        prev = {}

        def update(state, grad, lr, mu_next, project):
            mu = prev.get("mu", mu_next)
            prev["mu"] = mu_next
            y = state.y - lr * grad
            p = project(y)
            return steps.State(relax(y, p, mu), y, p)

        return update

    return _suite(_lsq(seed), seed, _hook(make), specs=(S.BR, S.BR_RELAX_FIRST)), None, None


def _stale(seed, every=4):
    def make(problem, base):
        count = {"t": 0}

        def update(state, grad, lr, mu_next, project):
            count["t"] += 1
            y = state.y - lr * grad
            p = project(y) if count["t"] % every == 0 else state.p
            return steps.State(relax(y, p, mu_next), y, p)

        return update

    return _suite(_lsq(seed), seed, _hook(make)), None, None


def _lr_off(seed, factor=1.01):
    def make(problem, base):
        def update(state, grad, lr, mu_next, project):
            return base.update(state, grad, lr * factor, mu_next, project)

        return update

    return _suite(_lsq(seed), seed, _hook(make)), None, None


def _nothing(seed):
    return _suite(_lsq(seed), seed), None, None


DEFECTS = (
    Mutant("twn_projection", "TWN in place of the exact ternary projection", _twn),
    Mutant("gradient_at_y", "the gradient taken at y instead of x", _grad_at_y),
    Mutant("L_too_small", "the problem claims L/2 as its smoothness constant", _small_L),
    Mutant("mu_one_step_behind", "x_(t+1) formed with mu_t instead of mu_(t+1)", _mu_behind),
    Mutant("stale_quantization", "P(y) recomputed every 4th step only, reused stale in between", _stale),
    Mutant("lr_off_1pct", "each step taken with 1.01 x the recorded learning rate", _lr_off),
)
#: Not a defect: the unmodified driver. It must be reported *missed*.
CONTROL = Mutant("no_defect", "control: nothing injected (must be missed)", _nothing)


def run_one(mutant: Mutant, seed: int = 0) -> dict:
    """Run the checks with ``mutant``'s defect; ``{"name", "description", "caught", "violated", "rows"}``."""
    from .cli import NEEDS_RUNS, load_modules, select, verify

    suite, projectors, modules = mutant.build(seed)
    mods = load_modules()
    wanted = set(NEEDS_RUNS) if modules is None else set(modules)
    selection = [(m, names) for m, names in select(mods, None) if m.__name__.rsplit(".", 1)[-1] in wanted]
    results = verify(suite, selection, progress=False, projectors=projectors)
    bad = [r for r in results if r.status == "violated"]
    return {
        "name": mutant.name,
        "description": mutant.description,
        "caught": bool(bad),
        "violated": [f"{r.name} ({r.problem}, {r.method})" for r in bad],
        "rows": len(results),
    }


def run_all(seed: int = 0, quick: bool = True, mutants=None) -> list:
    """:func:`run_one` for every mutant (default :data:`DEFECTS`)."""
    return [run_one(m, seed) for m in (DEFECTS if mutants is None else mutants)]


def table(rows) -> str:
    """One line per defect: caught or MISSED, and the first results that caught it."""
    lines = [f"{'defect':20s} {'status':7s} caught by", "-" * 100]
    for r in rows:
        names = sorted({v.split(" (")[0] for v in r["violated"]})
        lines.append(
            f"{r['name']:20s} {'caught' if r['caught'] else 'MISSED':7s} "
            f"{', '.join(names) if names else '-'}  ({r['description']})"
        )
    return "\n".join(lines)


def write_report(rows, out_dir: str, **extra) -> str:
    """``mutants-report.json`` in ``out_dir`` (atomic); returns its path."""
    path = os.path.join(out_dir, "mutants-report.json")
    payload = {"caught": sum(r["caught"] for r in rows), "defects": len(rows), "mutants": rows, **extra}
    atomic_write_text(path, json.dumps(payload, indent=1) + "\n")
    return path
