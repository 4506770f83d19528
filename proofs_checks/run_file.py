"""``brelax verify PATH``: every trajectory result of ``theory/`` on a run someone saved.

A PATH is a NumPy trajectory (``brelax run ... --out R.npz``,
:meth:`brelax.Trajectory.save`) or a ``brelax train`` run directory (read by
``brelax.torch.steplog.load_run``, imported only for directories). Every
trajectory result runs; what a result needs and the run lacks (a field, the
problem, the smoothness constant) makes that result ``"assumption-not-met"``
with the missing thing named -- never an exception.

Falsifiability on one run: the first :data:`BURN_IN` of the steps (a fraction
fixed in advance) is the *burn-in window*. Constants that a bound needs and the
run does not record -- the AOC constant d, kappa, R, and L when the problem's L
is unknown (networks) -- are estimated there and checked on the disjoint
window after it. Results whose every constant is known (the problem's L saved in
the trajectory's metadata) run on the whole run. Each row's ``details`` carry
``calibration`` (source and values) and ``window``; a local estimate of L is
labelled ``"estimate"`` in ``details["L_source"]`` and in the method column, and
where a check built on it fails, the estimate is the assumption reported as not
met (:func:`proofs_checks.common.as_estimate`), not a theorem violated.
"""

from __future__ import annotations

import math
import os

import numpy as np

from theory import RESULTS, TRAJECTORY_RESULTS, Result

from .common import BURN_IN, Window, as_estimate, estimate, estimate_L, shift

#: Constants a result needs that a run does not record, measured on the burn-in window by
#: :func:`theory.estimate_constants` (see :func:`proofs_checks.common.estimate`).
CALIBRATED = {
    "theorem1": ("d",),
    "theorem2": ("kappa", "R"),
    "corollary3": ("d", "kappa", "R"),
    "sgd_high_probability": ("Xi", "Gamma"),
}


def load(path):
    """A trajectory-like object from a saved NumPy trajectory (file) or a training run (directory).

    Raises
    ------
    ValueError
        ``path`` does not exist, or is not a readable trajectory / run directory (the message names it).
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        try:
            from brelax.torch.steplog import load_run
        except ImportError as e:
            raise ValueError(f"{p} is a directory, and reading a training run needs brelax.torch ({e})") from None
        return load_run(p)
    if not os.path.exists(p):
        raise ValueError(f"no such file or directory: {p!r}")
    from brelax import Trajectory

    try:
        return Trajectory.load(p)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{p} is not a saved trajectory (Trajectory.save / brelax run --out): {e}") from None


def not_met(name, what, problem="", method="", run=""):
    """The Result of a check whose input the run lacks: ``"assumption-not-met"`` naming what is missing."""
    cls = RESULTS.get(name)
    return Result(
        name=name,
        statement=getattr(cls, "statement", name),
        problem=problem,
        method=method,
        status="assumption-not-met",
        assumptions={"run provides the inputs": {"ok": False, "detail": what}},
        details={"run": run, "missing": what},
    )


def _names(traj):
    meta = dict(getattr(traj, "meta", {}) or {})
    prob = meta.get("problem", "")
    prob = prob.get("name", "") if isinstance(prob, dict) else str(prob)
    return prob, str(meta.get("method", ""))


def verify_run(traj_or_path, seed: int = 0, key=None, burn_in: float = BURN_IN) -> list:
    """Every trajectory result of ``theory/`` on one saved run.

    Parameters
    ----------
    traj_or_path : a :class:`brelax.Trajectory` (or any object with its fields), or a path (see :func:`load`)
    seed : int
        Unused by the checks themselves (kept for a uniform interface with the embedded suite).
    key : str or None
        Name of the trajectory in the coverage list (default: the path, or ``"trajectory"``).
    burn_in : float in (0, 1)
        Fraction of the steps used only to estimate constants (:data:`BURN_IN`).

    Returns
    -------
    list of theory.Result
        One per trajectory result, each with ``details["run"] = key``.

    Raises
    ------
    ValueError
        The path cannot be read (:func:`load`), or ``burn_in`` is not in (0, 1).
    """
    if not 0.0 < float(burn_in) < 1.0:
        raise ValueError(f"burn_in must lie in (0, 1), got {burn_in!r}")
    if isinstance(traj_or_path, (str, os.PathLike)):
        key = os.fspath(traj_or_path) if key is None else key
        traj = load(traj_or_path)
    else:
        traj, key = traj_or_path, ("trajectory" if key is None else key)
    problem, method = _names(traj)
    try:
        T = len(np.asarray(traj.step_norm2))
    except AttributeError:
        return [
            not_met(n, "the field 'step_norm2' (no steps recorded)", problem, method, key) for n in TRAJECTORY_RESULTS
        ]
    B = max(1, math.ceil(burn_in * T)) if T >= 2 else 0
    meta = dict(getattr(traj, "meta", {}) or {})
    L_known = meta.get("L") is not None
    burn = Window(traj, 0, B) if B else None
    L_est = None if L_known or burn is None else estimate_L(burn)[0]
    out = []
    for name in TRAJECTORY_RESULTS:
        res = RESULTS[name]()
        keys = CALIBRATED.get(name, ())
        wants_L = _uses_L(res)
        needs_window = bool(keys) or (wants_L and not L_known and L_est is not None)
        kw = {"L": L_est} if wants_L and not L_known and L_est is not None else {}
        try:
            if needs_window and B:
                consts = estimate(burn, keys) if keys else {}
                r = res.check(Window(traj, B), **kw, **consts)
                shift(r, B)
                r.details["calibration"] = {
                    "source": f"burn-in window: steps 0..{B - 1} of this run",
                    "constants": {**consts, **kw},
                }
                r.details["window"] = f"steps {B}..{T} (after the burn-in)"
            else:
                r = res.check(traj, **kw)
                r.details["window"] = "whole run"
        except (ValueError, KeyError, AttributeError, TypeError, IndexError) as e:
            r = not_met(name, _missing(e), problem, method, key)
        r.method = r.method or method
        if kw:
            as_estimate(r, L_est, f"the burn-in steps 0..{B - 1} (max local L)")
        r.problem = r.problem or problem or key
        r.method = r.method or method
        r.details["run"] = key
        out.append(r)
    return out


def _uses_L(result) -> bool:
    """Whether ``result`` needs a smoothness constant (it takes ``L`` or assumes L known)."""
    import inspect

    from theory import assumptions as A

    return "L" in inspect.signature(result.check).parameters or A.L_KNOWN in list(result.assumptions)


def _missing(e) -> str:
    msg = str(e).strip() or type(e).__name__
    if isinstance(e, AttributeError) and "has no field" not in msg:
        msg = f"a field the check reads: {msg}"
    return msg


def verify_paths(paths, seed: int = 0) -> tuple:
    """:func:`verify_run` on every path; ``(results, runs)`` with ``runs`` in the form coverage wants.

    Raises
    ------
    ValueError
        A path cannot be read (:func:`load`).
    """
    results, runs = [], []
    for p in paths:
        key = os.fspath(p)
        traj = load(p)
        rs = verify_run(traj, seed=seed, key=key)
        problem, method = _names(traj)
        steps = getattr(traj, "step_norm2", None)
        runs.append(
            {
                "key": key,
                "problem": problem or key,
                "method": method,
                "steps": 0 if steps is None else len(np.asarray(steps)),
            }
        )
        results += rs
    return results, runs
