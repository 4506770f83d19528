"""Helpers shared by the check modules: a result over runs, with constants from a calibration run.

Two rules make every check able to fail:

* **Windows are chosen a priori.** A check runs on the window its result
  defines from the schedule alone (the whole run, or from the Phase II start
  where mu becomes fixed); no window is searched for after the fact.
* **No constant is fitted on the steps it is checked on.** Constants the
  theory does not give (the AOC constant d, kappa, R, a local L, sigma^2) are
  estimated on a *calibration run* -- the same problem and spec from another
  seed (:meth:`proofs_checks.suite.Suite.calibration`) -- and passed to the
  check on the real run, which then tests them as assumptions. Each row's
  ``details["calibration"]`` says where its constants came from and
  ``details["window"]`` which steps were checked.
"""

from __future__ import annotations

import math

import numpy as np

from .suite import label

#: Fraction of a run's steps, from the start, fixed in advance as its burn-in window: constants estimated
#: there (or on a calibration run) are checked only on the steps after it.
BURN_IN = 0.2


class Window:
    """Steps ``start..T-1`` of a trajectory as a trajectory of its own (point fields from ``start``).

    Covered steps of a Result checked on it are shifted back by :func:`shift`.
    """

    def __init__(self, traj, start: int, stop: int | None = None):
        self._traj = traj
        T = len(np.asarray(traj.step_norm2))
        self.start, self.stop = int(start), T if stop is None else int(stop)
        self.meta = dict(getattr(traj, "meta", {}) or {})
        self.iterates = {}
        self.layers = {}
        self._T = T

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        v = getattr(self._traj, name)
        a = np.asarray(v)
        if a.ndim >= 1 and a.shape[0] == self._T + 1:
            return a[self.start : self.stop + 1]
        if a.ndim >= 1 and a.shape[0] == self._T:
            return a[self.start : self.stop]
        return v


def shift(result, offset: int):
    """Move ``result.covered`` (and a ``t0`` in the details) from window steps to run steps."""
    cov = getattr(result, "covered", None)
    if cov:
        result.covered = [[int(a) + offset, int(b) + offset] for a, b in cov]
    if isinstance(result.details.get("t0"), int):
        result.details["t0_in_run"] = result.details["t0"] + offset
    return result


def over_runs(result, runs, **kw):
    """``result.check`` on every run (default window), labelled with the suite's names."""
    out = []
    for _prob, traj, pspec, spec in runs:
        r = result.check(traj, **kw)
        out.append(label(r, pspec, spec))
        r.details.setdefault("window", _window(r))
    return out


def _window(r) -> str:
    t0, T = r.details.get("t0"), r.details.get("T")
    if t0 is None:
        return "whole run"
    return f"steps {t0}..{T} (a priori: {'whole run' if t0 == 0 else 'from where mu and g become fixed'})"


def _finite(v):
    return v is not None and isinstance(v, (int, float)) and math.isfinite(float(v))


#: Sup-type constants (the largest noise Xi, the largest gradient Gamma) are a maximum over one calibration
#: run, which a run with another seed exceeds by chance (its first gradient is another random draw). They
#: are widened by this factor, fixed here before any run is checked, never tuned on the checked run.
SUP_MARGIN = 1.5


def estimate(cal_traj, keys, t0=None) -> dict:
    """The constants ``keys`` measured on a calibration trajectory by :func:`theory.estimate_constants`.

    ``t0``: measure on the calibration trajectory's steps ``t >= t0`` (the same a-priori window as the
    check's, e.g. from the Phase II start); None: the whole calibration trajectory. Values that are
    not finite are left out (the check then reports the constant as not given).
    """
    from theory import estimate_constants

    c = estimate_constants(cal_traj, t0=t0)
    G2 = getattr(cal_traj, "grad_norm2", None)
    if G2 is not None and np.isfinite(np.asarray(G2, dtype=float)[t0 or 0 :]).any():
        c["Gamma"] = SUP_MARGIN * float(np.sqrt(np.nanmax(np.asarray(G2, dtype=float)[t0 or 0 :])))  # ||grad f||
    if _finite(c.get("noise_max")):
        c["Xi"] = SUP_MARGIN * float(c["noise_max"])  # largest minibatch noise ||xi_t||
    pairs = keys.items() if isinstance(keys, dict) else ((k, k) for k in keys)
    return {kw: float(c[k]) for kw, k in pairs if _finite(c.get(k))}


def window_start(result, traj) -> int:
    """The a-priori window start ``result`` uses on ``traj`` (from the schedule alone: where mu and g become fixed)."""
    from theory.context import Context

    return Context(traj).default_t0(getattr(result, "t0_rule", "any"))


def estimate_L(cal_traj):
    """A local smoothness constant from a calibration trajectory, by the theory's estimator; ``(L, source)``."""
    from theory import estimate_constants

    c = estimate_constants(cal_traj)
    return (float(c["L"]) if _finite(c.get("L")) else None), str(c.get("L_source", "theory.estimate_constants"))


#: The assumption a check built on an estimated L adds (see :func:`as_estimate`).
L_ESTIMATE = "L (an estimate) bounds the curvature on the checked steps"


def as_estimate(r, L, source: str):
    """Label a Result checked with an *estimated* L, and never let the estimate pass as a theorem's constant.

    An estimate of L (the largest measured local secant) is a lower bound on the smoothness
    constant, and ReLU networks are not L-smooth at all, so a failed per-step inequality cannot
    tell a bug from an estimate that is too small: the row then reports the assumption
    :data:`L_ESTIMATE` as not met (with the failing steps) instead of "violated". Where the
    inequality holds, the row holds *with that estimate*, and the method column says so.
    """
    failing = r.details.get("failing_steps")
    Ls = f"{L:.6g}" if isinstance(L, (int, float)) else str(L)
    if r.status == "violated":
        r.assumptions[L_ESTIMATE] = {
            "ok": False,
            "detail": f"L = {Ls} from {source} is a measured lower bound, "
            f"not a proven constant; the inequality failed on {failing} step(s), "
            f"first t = {r.details.get('first_failing_t')}",
        }
        r.status, r.holds, r.covered = "assumption-not-met", False, []
    else:
        r.assumptions[L_ESTIMATE] = {"ok": r.status == "holds", "detail": f"L = {Ls} from {source}"}
    r.details["L_source"] = f"estimate: {source}"
    if "[L estimate]" not in r.method:
        r.method = f"{r.method} [L estimate]".strip()
    return r


def with_L_estimate(result, suite, runs, **kw):
    """``result`` on runs whose problem has no known L, with L estimated on each run's calibration run.

    A local estimate is least representative where the run starts (random initial weights, the
    largest curvature), so these rows are checked on the steps after the burn-in window
    (:data:`BURN_IN`, fixed in advance for every run). The row's method gets ``[L estimate]``;
    ``details["calibration"]`` says where L came from.
    """
    out = []
    for _prob, traj, pspec, spec in runs:
        L, src = estimate_L(suite.calibration(pspec, spec))
        T = len(traj.step_norm2)
        B = math.ceil(BURN_IN * T)
        r = shift(result.check(Window(traj, B), L=L, **kw), B)
        label(r, pspec, spec)
        as_estimate(r, L, f"the calibration run ({src})")
        r.details["calibration"] = {
            "source": f"calibration run: same problem and spec, seed {suite.seed + suite.CALIBRATION_OFFSET}",
            "constants": {"L": L},
        }
        r.details["window"] = f"steps {B}..{T} (a priori: after the burn-in of {BURN_IN:g} of the steps)"
        if B > 0:
            r.details.setdefault("failed_per_step", {})["checked after the burn-in (L estimated)"] = {
                "steps": [[0, B]],
                "count": B,
                "detail": f"burn-in (the first {BURN_IN:g} of the steps, fixed in advance) of an estimated L",
            }
        out.append(r)
    return out


def calibrated(result, suite, runs, keys, check_kw=None):
    """``result`` on every run with the constants ``keys`` estimated on that run's calibration run.

    Parameters
    ----------
    result : a theory result
    suite : Suite (gives the calibration run of each (problem, spec))
    runs : the ``suite.runs(...)`` tuples to check
    keys : names of :func:`theory.estimate_constants` values to pass (``"d"``, ``"kappa"``, ``"R"``, ...;
        ``"Xi"``: its ``noise_max``; ``"Gamma"``: the largest ``||grad f||`` of the calibration run; both
        times :data:`SUP_MARGIN`)
    check_kw : dict of fixed keywords for ``result.check``

    Returns
    -------
    list of Result, one per run, with ``details["calibration"]`` (source, window and values) and
    ``details["window"]``. The calibration run is measured on the same a-priori window as the check.
    """
    out = []
    for _prob, traj, pspec, spec in runs:
        cal = suite.calibration(pspec, spec)
        t0 = window_start(result, cal)
        T = len(cal.step_norm2)
        consts = estimate(cal, keys, t0=t0) if t0 < T else {}
        r = result.check(traj, **{**(check_kw or {}), **consts})
        label(r, pspec, spec)
        r.details["calibration"] = {
            "source": f"calibration run (same problem and spec, seed "
            f"{suite.seed + suite.CALIBRATION_OFFSET}), steps {t0}..{T}",
            "constants": consts,
        }
        r.details.setdefault("window", _window(r))
        out.append(r)
    return out
