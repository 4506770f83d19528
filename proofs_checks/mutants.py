"""Teeth: seeded defects that the checks must catch (``brelax verify --mutants``).

A *mutant* is the embedded verifier run on a small suite with one defect
injected from outside brelax: through the Suite's ``optimize`` hook (a step
rule registered for the duration of one run), a wrapped problem, or a
replacement projector. A mutant is *caught* when some result comes out
``"violated"``. The same command runs the *controls* (:data:`CONTROLS`):
correct code, including steps outside the descent hypotheses (gd diverging at
``g = 2.5/L`` and ``3/L``), where every ``"violated"`` row is a *false alarm*.
``brelax verify --mutants`` exits 0 only when every defect is caught and there
is no false alarm. :data:`CONTROL` (no defect) reported as a mutant must come
out *missed*: it is how the tests show that the harness itself can fail.

The defects (:data:`DEFECTS`):

============================ ======================================================================
``twn_projection``           TWN (a heuristic) in place of the exact ternary projection
``gradient_at_y``            the gradient taken at the anchor y instead of at x
``L_too_small``              the problem claims half its smoothness constant L
``mu_one_step_behind``       x_(t+1) formed with mu_t instead of mu_(t+1)
``stale_quantization``       P(y) recomputed only every 4th step, reused stale in between
``lr_off_1pct``              every step taken with 1.01 times the recorded learning rate
``lr_schedule_one_late``     step t taken with g_(t-1) while g_t is recorded (MultiStep and cosine runs)
``phase2_one_early``         mu = 1 (Phase II) one step before the recorded schedule
``momentum_leak``            y_(t+1) = y_t - g (G_t + beta m_t), beta = 0.01, m a heavy-ball buffer;
                             G_t recorded
``float32_step``             y_t - g G_t computed in float32, stored and recorded as float64
``grad_bias_step``           the step uses 1.005 grad f(x_t), the run records grad f(x_t)
``grad_bias_recorded``       grad f biased by 0.5% in the step *and* in the record; only the checks
                             that tie the gradient to the recorded f with the problem's exact
                             curvature can see it (the recorded flip cost of Theorem II.4 on
                             least squares, ``E_t <= Ehat_t``)
``hb_momentum_0.95``         heavy ball (Theorem II.12) run with momentum 0.95, 0.9 recorded
``hb_weight_decay``          heavy ball run with weight decay 0.02, 1e-3 recorded
============================ ======================================================================
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

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


def _suite(problem, seed, optimize=None, specs=(S.BR, S.BR_FIXED, S.BC), qset="binary", steps=120, lr=None):
    """A one-problem Suite on ``problem``; ``lr`` None: the step 1/L of every spec (its ``lr_scale`` aside)."""
    name = f"mutant-lsq(m=40,n=20,{qset}{'' if lr is None else f',g={lr * problem.L:g}/L'})"
    p = S.ProblemSpec(name, lambda: problem, qset, steps, lr, specs)
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
    """An ``optimize`` hook that runs the lazy methods with the update ``make_update(problem, base, run)``.

    ``run`` is the keyword arguments of the :func:`brelax.optimize` call (``phase2_start``, ``steps``, ...);
    the update is made fresh per run, so a defect with state (a momentum buffer, a previous step size)
    starts clean on every run.
    """

    def optimize(problem, method="binaryrelax", **kw):
        base = steps.get_method(method)
        if not base.lazy:
            return brelax.optimize(problem, method=method, **kw)
        with registered(base._replace(update=make_update(problem, base, kw))) as key:
            return brelax.optimize(problem, method=key, **kw)

    return optimize


# -- the defects --------------------------------------------------------------------------------------


def _twn(seed):
    """TWN in the exact projection's place: in the projection checks, and as the projection of a ternary run."""
    from .cli import NEEDS_RUNS

    def make(problem, base, run):
        def update(state, grad, lr, mu_next, project):
            y = state.y - lr * grad
            p = heuristics.twn(y)
            return steps.State(relax(y, p, mu_next), y, p)

        return update

    suite = _suite(_lsq(seed, "ternary"), seed, _hook(make), qset="ternary")
    return suite, {"ternary": heuristics.twn}, ["check_projection", *sorted(NEEDS_RUNS)]


def _grad_at_y(seed):
    def make(problem, base, run):
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
    def make(problem, base, run):
        prev: dict[str, float] = {}

        def update(state, grad, lr, mu_next, project):
            mu = prev.get("mu", mu_next)
            prev["mu"] = mu_next
            y = state.y - lr * grad
            p = project(y)
            return steps.State(relax(y, p, mu), y, p)

        return update

    return _suite(_lsq(seed), seed, _hook(make), specs=(S.BR, S.BR_RELAX_FIRST)), None, None


def _stale(seed, every=4):
    def make(problem, base, run):
        count = {"t": 0}

        def update(state, grad, lr, mu_next, project):
            count["t"] += 1
            y = state.y - lr * grad
            p = project(y) if count["t"] % every == 0 else state.p
            return steps.State(relax(y, p, mu_next), y, p)

        return update

    return _suite(_lsq(seed), seed, _hook(make)), None, None


def _lr_off(seed, factor=1.01):
    def make(problem, base, run):
        def update(state, grad, lr, mu_next, project):
            return base.update(state, grad, lr * factor, mu_next, project)

        return update

    return _suite(_lsq(seed), seed, _hook(make)), None, None


def _lr_late(seed, specs=S.SCHEDULE_SPECS):
    """Step t takes the previous step size g_(t-1); the run records g_t (visible only where g_t changes)."""

    def make(problem, base, run):
        prev: dict[str, float] = {}

        def update(state, grad, lr, mu_next, project):
            late = prev.get("lr", lr)
            prev["lr"] = lr
            return base.update(state, grad, late, mu_next, project)

        return update

    return _suite(_lsq(seed), seed, _hook(make), specs=specs), None, None


def _phase2_early(seed):
    """Phase II one step early: x_(t2-1) = P(y_(t2-1)) while the run records mu_(t2-1) < 1."""

    def make(problem, base, run):
        start, count = run.get("phase2_start"), {"t": 0}

        def update(state, grad, lr, mu_next, project):
            t = count["t"]  # this update forms x_(t+1)
            count["t"] += 1
            mu = 1.0 if start is not None and t + 1 >= start - 1 else mu_next
            return base.update(state, grad, lr, mu, project)

        return update

    return _suite(_lsq(seed), seed, _hook(make), specs=(S.BR, S.BR_RELAX_FIRST)), None, None


def _momentum_leak(seed, beta=0.01):
    """A heavy-ball buffer leaks into the lazy step: y_(t+1) = y_t - g (G_t + beta m_t), G_t recorded."""

    def make(problem, base, run):
        buf: dict[str, np.ndarray] = {}

        def update(state, grad, lr, mu_next, project):
            m = buf.get("m", np.zeros_like(grad))
            buf["m"] = beta * m + grad
            return base.update(state, grad + beta * m, lr, mu_next, project)

        return update

    return _suite(_lsq(seed), seed, _hook(make)), None, None


def _float32_step(seed):
    """The step y_t - g G_t computed in float32, the result stored (and recorded) as float64."""

    def make(problem, base, run):
        def update(state, grad, lr, mu_next, project):
            y32 = state.y.astype(np.float32) - np.float32(lr) * grad.astype(np.float32)
            y = y32.astype(np.float64)
            p = project(y)
            return steps.State(relax(y, p, mu_next), y, p)

        return update

    return _suite(_lsq(seed), seed, _hook(make)), None, None


def _grad_bias_step(seed, factor=1.005):
    """The step uses 1.005 grad f(x_t); the run records grad f(x_t)."""

    def make(problem, base, run):
        def update(state, grad, lr, mu_next, project):
            return base.update(state, factor * grad, lr, mu_next, project)

        return update

    return _suite(_lsq(seed), seed, _hook(make)), None, None


class _BiasedGradient:
    """A problem whose ``grad`` is ``factor`` times the gradient of its ``f`` (everything else delegated)."""

    def __init__(self, problem, factor):
        self._p, self.factor = problem, factor

    def __getattr__(self, name):
        return getattr(self._p, name)

    def grad(self, x, *args, **kw):
        return self.factor * self._p.grad(x, *args, **kw)


def _grad_bias_recorded(seed, factor=1.005):
    """grad f biased by 0.5% in the step *and* in the record: every recorded gradient agrees with the step.

    Lemma A recomputes the gradient from the same (biased) problem, so only a check that ties the
    recorded gradient to the recorded values of f with the problem's exact curvature can see it.
    """
    return _suite(_BiasedGradient(_lsq(seed), factor), seed), None, None


def _misrecorded(**ran):
    """A heavy-ball run made with the settings ``ran`` (e.g. ``momentum=0.95``), recorded with the requested
    ones: the record says what the run was asked to do, the run did something else."""

    def build(seed):
        def optimize(problem, method="binaryrelax", **kw):
            asked = {k: kw.get(k, 0.0) for k in ran}
            traj = brelax.optimize(problem, method=method, **{**kw, **ran})
            traj.meta.update(asked)
            return traj

        return _suite(_lsq(seed), seed, optimize, specs=(S.BR_HB,)), None, ["check_heavy_ball", "check_monotonicity"]

    return build


def _heavy_ball_steps(scale):
    """Correct heavy ball (momentum 0.9, weight decay 1e-3) at step ``scale / L`` for the full-batch run:
    outside kappa > 0 when ``scale >= 0.2``; nothing may be "violated"."""

    def build(seed):
        problem = _lsq(seed)
        lr = scale / (S.BR_HB.lr_scale * problem.L)  # the suite's heavy-ball spec scales the problem's step
        return (
            _suite(problem, seed, specs=(S.BR_HB,), steps=300, lr=lr),
            None,
            ["check_heavy_ball", "check_monotonicity"],
        )

    return build


def _nothing(seed):
    return _suite(_lsq(seed), seed), None, None


def _large_lr(scale):
    """Correct gd, BinaryRelax and BinaryConnect at step ``scale / L``: outside the descent hypotheses for
    ``scale >= 2`` (gd diverges at 2.5/L and 3/L), and nothing may be "violated".

    The runs are the suite's own specs (so every check module that reads them checks them), on a
    problem whose step is ``scale / L``.
    """

    def build(seed):
        problem = _lsq(seed)
        return _suite(problem, seed, specs=(S.GD, S.BR, S.BC), steps=400, lr=scale / problem.L), None, None

    return build


def _schedules_clean(seed):
    return _suite(_lsq(seed), seed, specs=S.SCHEDULE_SPECS), None, None


def _ternary_clean(seed):
    from .cli import NEEDS_RUNS

    return _suite(_lsq(seed, "ternary"), seed, qset="ternary"), None, sorted(NEEDS_RUNS)


DEFECTS = (
    Mutant("twn_projection", "TWN in place of the exact ternary projection", _twn),
    Mutant("gradient_at_y", "the gradient taken at y instead of x", _grad_at_y),
    Mutant("L_too_small", "the problem claims L/2 as its smoothness constant", _small_L),
    Mutant("mu_one_step_behind", "x_(t+1) formed with mu_t instead of mu_(t+1)", _mu_behind),
    Mutant("stale_quantization", "P(y) recomputed every 4th step only, reused stale in between", _stale),
    Mutant("lr_off_1pct", "each step taken with 1.01 x the recorded learning rate", _lr_off),
    Mutant("lr_schedule_one_late", "step t taken with g_(t-1), g_t recorded (MultiStep, cosine)", _lr_late),
    Mutant("phase2_one_early", "Phase II (mu = 1) one step before the recorded schedule", _phase2_early),
    Mutant("momentum_leak", "y_(t+1) = y_t - g (G_t + 0.01 m_t), heavy-ball buffer m, G_t recorded", _momentum_leak),
    Mutant("float32_step", "the step computed in float32, recorded as float64", _float32_step),
    Mutant("grad_bias_step", "the step uses 1.005 grad f, the run records grad f", _grad_bias_step),
    Mutant("grad_bias_recorded", "grad f biased by 0.5% in the step and in the record", _grad_bias_recorded),
    Mutant("hb_momentum_0.95", "heavy ball run with momentum 0.95, 0.9 recorded", _misrecorded(momentum=0.95)),
    Mutant("hb_weight_decay", "heavy ball run with weight decay 0.02, 1e-3 recorded", _misrecorded(weight_decay=0.02)),
)
#: Not a defect: the unmodified driver. It must be reported *missed*.
CONTROL = Mutant("no_defect", "control: nothing injected (must be missed)", _nothing)
#: Correct code, each of which must give 0 "violated" rows (a violated row there is a false alarm): the
#: unmodified driver, the lr schedules and a ternary set, and steps outside the descent hypotheses
#: (gd diverges at 2.5/L and 3/L: f grows by 1e100 and more).
CONTROLS = (
    CONTROL,
    Mutant("schedules", "BinaryRelax under the MultiStep and cosine lr schedules", _schedules_clean),
    Mutant("ternary", "BinaryRelax and BinaryConnect on a ternary set", _ternary_clean),
    Mutant("lr_2.5/L", "gd, BinaryRelax, BinaryConnect at g = 2.5/L (gd diverges)", _large_lr(2.5)),
    Mutant("lr_3/L", "gd, BinaryRelax, BinaryConnect at g = 3/L (gd diverges)", _large_lr(3.0)),
    Mutant("hb_g=0.5/L", "heavy ball 0.9 at g = 0.5/L, outside kappa > 0", _heavy_ball_steps(0.5)),
    Mutant("hb_g=4/L", "heavy ball 0.9 at g = 4/L (diverges), outside kappa > 0", _heavy_ball_steps(4.0)),
)


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


def run_controls(seed: int = 0, controls=None) -> list:
    """:func:`run_one` for every control (default :data:`CONTROLS`); each row gets ``"false_alarms"``.

    ``false_alarms`` is the number of ``"violated"`` rows on that correct-code suite (0 is required).
    """
    rows = [run_one(m, seed) for m in (CONTROLS if controls is None else controls)]
    for r in rows:
        r["false_alarms"] = len(r["violated"])
    return rows


def false_alarms(controls) -> int:
    """The total number of "violated" rows over the control rows of :func:`run_controls`."""
    return sum(r["false_alarms"] for r in controls)


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


def control_table(rows) -> str:
    """One line per control: its number of checked rows and of false alarms (the violated rows, named)."""
    lines = [f"{'control (correct code)':22s} {'rows':>5s} {'false alarms':>12s}", "-" * 100]
    for r in rows:
        names = ", ".join(r["violated"][:3]) + (" ..." if len(r["violated"]) > 3 else "")
        tail = f"  {names}" if names else ""
        lines.append(f"{r['name']:22s} {r['rows']:5d} {r['false_alarms']:12d}  ({r['description']}){tail}")
    return "\n".join(lines)


def write_report(rows, out_dir: str, controls=None, **extra) -> str:
    """``mutants-report.json`` in ``out_dir`` (atomic); returns its path.

    Keys: ``caught``, ``defects``, ``mutants`` (the defect rows) and, with ``controls``, ``controls``
    (the control rows) and ``false_alarms`` (their total violated rows).
    """
    path = os.path.join(out_dir, "mutants-report.json")
    payload = {"caught": sum(r["caught"] for r in rows), "defects": len(rows), "mutants": rows}
    if controls is not None:
        payload.update(false_alarms=false_alarms(controls), controls=controls)
    payload.update(extra)
    atomic_write_text(path, json.dumps(payload, indent=1) + "\n")
    return path
