"""Helpers shared by the check modules: running a result over runs, and finding where it starts to apply."""

from __future__ import annotations

from .suite import label


def over_runs(result, runs, window=True, **kw):
    """``result.check`` on every run, labelled with the suite's names and the window ``t >= t0``."""
    out = []
    for prob, traj, pspec, spec in runs:
        r = result.check(traj, **kw)
        t0 = r.details.get("t0")
        out.append(label(r, pspec, spec, f"t>={t0}" if window and t0 is not None else None))
    return out


def earliest_t0(result, traj, start: int, points: int = 40, **kw):
    """The first window start ``t0 >= start`` (on a grid of about ``points`` values) where ``result`` holds.

    Returns ``(t0, Result)`` or ``(None, None)``. This answers "from when on does
    the theorem apply to this run", e.g. after the last costly flip.
    """
    T = len(traj.step_norm2)
    step = max(1, (T - start) // points)
    for t0 in range(start, T, step):
        r = result.check(traj, t0=t0, **kw)
        if r.status == "holds":
            return t0, r
    return None, None


def with_earliest(result, runs, start_of=None, **kw):
    """Each run's default-window result, plus, where that is not "holds", the earliest window where it is."""
    out = []
    for prob, traj, pspec, spec in runs:
        r = result.check(traj, **kw)
        t0 = r.details.get("t0", 0)
        out.append(label(r, pspec, spec, f"t>={t0}"))
        if r.status == "assumption-not-met" and (r.details.get("c", 1) <= 0 or r.details.get("c_eps", 1) <= 0):
            start = t0 if start_of is None else start_of(traj, t0)
            t1, r1 = earliest_t0(result, traj, start + 1, **kw)
            if r1 is not None:
                out.append(label(r1, pspec, spec, f"t>={t1} (earliest window where it applies)"))
    return out
