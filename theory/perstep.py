r"""The shape of a result whose claim is one inequality per step, and its per-step hypotheses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import TheoryResult
from .numerics import field
from .result import Assumption, intervals


@dataclass
class StepHypothesis:
    """A hypothesis that is checked step by step: where it holds, and what it measured where it fails.

    ``ok`` is a boolean mask over the steps; ``detail(fail)`` describes the failing steps
    (``fail`` the mask of them), e.g. ``"g*L = 2.5 > 2"``. A result reports every failing
    hypothesis with its step intervals in ``details["failed_per_step"]``, which is what
    ``brelax verify`` prints for steps without a guarantee.
    """

    name: str
    ok: np.ndarray
    detail: object  # (fail mask) -> str

    def failures(self, among, offset: int) -> dict | None:
        fail = np.asarray(among, dtype=bool) & ~np.asarray(self.ok, dtype=bool)
        if not fail.any():
            return None
        return {"steps": intervals(fail, offset), "count": int(fail.sum()), "detail": str(self.detail(fail))}


class _PerStep(TheoryResult):
    """A result whose claim is one inequality per step: ``lhs_t <= rhs_t`` on every eligible step."""

    stepwise = True

    def per_step(
        self,
        ctx,
        eligible,
        gap,
        tol,
        scale,
        details,
        extra_assumptions=(),
        measured=None,
        bound=None,
        tolerance=None,
        guarantee=None,
        certified=None,
        hypotheses=(),
        conforming=None,
    ):
        """Assemble the Result.

        ``gap_t = lhs_t - rhs_t`` must be ``<= tol_t`` on every eligible step (the steps where the
        inequality is *valid*; a failure there is a violation); ``scale_t > 0`` normalises it. Unless
        ``measured``/``bound`` are given, measured is ``max_t (gap_t - tol_t)/scale_t`` and the bound
        0; otherwise ``tolerance`` (default: the sum of ``tol_t`` over the eligible steps) applies to
        them.

        ``covered``: the eligible steps that held and, for a guarantee, where ``guarantee`` (every
        hypothesis of the descent or rate claim, a positive coefficient included) holds too.
        ``certified``: the covered steps where the mask ``certified`` holds (right side <= f(x_t)).
        ``hypotheses``: :class:`StepHypothesis` list; their failures on the steps without a
        guarantee go into ``details["failed_per_step"]``.
        """
        gap = np.asarray(gap, dtype=np.float64)
        ok_t = eligible & np.isfinite(gap) & np.isfinite(tol)
        held = ok_t & (gap <= tol)
        fail = ok_t & ~held
        norm = np.where(ok_t, (gap - tol) / np.where(scale > 0, scale, 1.0), np.nan)
        n_ok = int(ok_t.sum())
        cov = held if guarantee is None else held & np.asarray(guarantee, dtype=bool)
        cert = None if certified is None else cov & np.asarray(certified, dtype=bool)
        failed = {}
        for h in hypotheses:
            f = h.failures(~cov, ctx.t0)
            if f is not None:
                failed[h.name] = f
        details = dict(details)
        details.update(
            eligible_steps=n_ok,
            failing_steps=int(fail.sum()),
            first_failing_t=int(np.flatnonzero(fail)[0]) + ctx.t0 if fail.any() else None,
            max_normalised_gap=float(np.nanmax(norm)) if n_ok else None,
            guarantee_steps=int(cov.sum()) if guarantee is not None else None,
            certified_steps=int(cert.sum()) if cert is not None else None,
            failed_per_step=failed,
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
            covered=intervals(cov, ctx.t0),
            certified=None if cert is None else intervals(cert, ctx.t0),
            conforming=None if conforming is None else intervals(conforming, ctx.t0),
        )
        if res.status == "holds" and fail.any():
            res.status, res.holds, res.covered, res.certified = "violated", False, [], []
        return res


def _method_in(methods, what):
    return Assumption(
        f"method is one of {', '.join(methods)}",
        lambda c: (c.method in methods, f"method={c.method!r} ({what})"),
        scope=True,
    )


def _fields_present(traj, names, T):
    missing = [n for n in names if field(traj, n) is None]
    return Assumption(
        "diagnostic fields recorded",
        lambda c: (not missing, "missing: " + ", ".join(missing) if missing else "all present"),
    )


def _lo(v, mask) -> str:
    m = mask & np.isfinite(v)
    return f"{float(np.min(v[m])):.3g}" if m.any() else "nan"


def _hi(v, mask) -> str:
    m = mask & np.isfinite(v)
    return f"{float(np.max(v[m])):.3g}" if m.any() else "nan"


def _describe_gL(gL, fail) -> str:
    """``"g*L = 2.50 > 2"`` (one value) or ``"g*L in [2.1, 3] >= 2"`` (a schedule)."""
    lo, hi = _lo(gL, fail), _hi(gL, fail)
    return f"step size g*L = {hi} >= 2" if lo == hi else f"step size g*L in [{lo}, {hi}] >= 2"
