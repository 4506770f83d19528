r"""The shape of a result whose claim is one inequality per step."""

from __future__ import annotations

import numpy as np

from .base import TheoryResult
from .numerics import field
from .result import Assumption, intervals


class _PerStep(TheoryResult):
    """A result whose claim is one inequality per step: ``lhs_t <= rhs_t`` on every eligible step."""

    def per_step(
        self, ctx, eligible, gap, tol, scale, details, extra_assumptions=(), measured=None, bound=None, tolerance=None
    ):
        """Assemble the Result.

        ``gap_t = lhs_t - rhs_t`` must be ``<= tol_t`` on every eligible step; ``scale_t > 0``
        normalises it. Unless ``measured``/``bound`` are given, measured is
        ``max_t (gap_t - tol_t)/scale_t`` and the bound 0; otherwise ``tolerance`` (default: the sum
        of ``tol_t`` over the eligible steps) applies to them. ``covered``: eligible steps that held.
        """
        gap = np.asarray(gap, dtype=np.float64)
        ok_t = eligible & np.isfinite(gap) & np.isfinite(tol)
        held = ok_t & (gap <= tol)
        fail = ok_t & ~held
        norm = np.where(ok_t, (gap - tol) / np.where(scale > 0, scale, 1.0), np.nan)
        n_ok = int(ok_t.sum())
        details = dict(details)
        details.update(
            eligible_steps=n_ok,
            failing_steps=int(fail.sum()),
            first_failing_t=int(np.flatnonzero(fail)[0]) + ctx.t0 if fail.any() else None,
            max_normalised_gap=float(np.nanmax(norm)) if n_ok else None,
        )
        some = Assumption(
            "at least one step where the per-step hypotheses hold", lambda c: (n_ok > 0, f"{n_ok} of {len(gap)} steps")
        )
        if measured is None:
            measured, bound, tolerance = (float(np.nanmax(norm)) if n_ok else None), 0.0, 0.0
        elif tolerance is None:
            tolerance = float(np.sum(tol[ok_t])) if n_ok else 0.0
        res = self.finish(
            ctx,
            measured,
            bound,
            tolerance=tolerance,
            details=details,
            extra_assumptions=[some, *extra_assumptions],
            covered=intervals(held, ctx.t0),
        )
        if res.status == "holds" and fail.any():
            res.status, res.holds, res.covered = "violated", False, []
        return res


def _method_in(methods, what):
    return Assumption(
        f"method is one of {', '.join(methods)}", lambda c: (c.method in methods, f"method={c.method!r} ({what})")
    )


def _fields_present(traj, names, T):
    missing = [n for n in names if field(traj, n) is None]
    return Assumption(
        "diagnostic fields recorded",
        lambda c: (not missing, "missing: " + ", ".join(missing) if missing else "all present"),
    )
