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

from .suite import label


def over_runs(result, runs, **kw):
    """``result.check`` on every run (default window), labelled with the suite's names."""
    out = []
    for prob, traj, pspec, spec in runs:
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


def estimate(result, cal_traj, keys) -> dict:
    """The constants ``keys`` as ``result`` itself measures them on the calibration trajectory.

    ``keys`` maps a keyword of ``result.check`` to the ``details`` entry holding the value the check
    measured on its (default) window of ``cal_traj``, e.g. ``{"d": "d", "R": "R_measured"}``.
    Entries that are missing or not finite are left out (the check then uses its own default and
    says so in its details).
    """
    r = result.check(cal_traj)
    out = {}
    for kw, det in keys.items():
        v = r.details.get(det)
        if _finite(v):
            out[kw] = float(v)
    return out


def calibrated(result, suite, runs, keys, check_kw=None):
    """``result`` on every run with the constants ``keys`` estimated on that run's calibration run.

    Parameters
    ----------
    result : a theory result
    suite : Suite (gives the calibration run of each (problem, spec))
    runs : the ``suite.runs(...)`` tuples to check
    keys : dict, see :func:`estimate`
    check_kw : dict of fixed keywords for ``result.check``

    Returns
    -------
    list of Result, one per run, with ``details["calibration"]`` (source and values) and
    ``details["window"]``.
    """
    out = []
    for prob, traj, pspec, spec in runs:
        cal = suite.calibration(pspec, spec)
        consts = estimate(result, cal, keys)
        r = result.check(traj, **{**(check_kw or {}), **consts})
        label(r, pspec, spec)
        r.details["calibration"] = {"source": f"calibration run: same problem and spec, seed "
                                              f"{suite.seed + suite.CALIBRATION_OFFSET}",
                                    "constants": consts}
        r.details.setdefault("window", _window(r))
        out.append(r)
    return out
