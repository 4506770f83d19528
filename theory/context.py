"""What a check needs from a trajectory: its arrays, its constants and the window ``t0 <= t < T``.

A trajectory is anything with the documented attributes of
:class:`brelax.Trajectory` (``f``, ``mu``, ``lr``, ``step_norm2``, ``aoc``,
``inner``, ``cross``, ``flips``, ``r_norm``, ``scale_min``, ``L_local``,
``meta``, and the per-step diagnostic fields); a small hand-built object works, which is how the tests feed the
checks deliberately broken evidence.

Constants are resolved in this order: an explicit keyword, then the
trajectory's metadata (the problem's own ``L`` and ``f_lower``), then, for
``L`` only, an *estimate* ``max_t L_local`` that is flagged as such (the
assumption "L known" then fails, so no bound built from it can pass as a
theorem).
"""

from __future__ import annotations

import math

import numpy as np

from brelax.steps import METHODS

from .resolution import RESOLUTION, resolved

#: Methods of the form ``x_t = y_t - mu_t r_t``, ``y_{t+1} = y_t - g_t G_t``: the lazy ones of
#: :data:`brelax.steps.METHODS` and gd, whose ``x = y`` is the case ``mu = 0``.
LAZY_METHODS = tuple(n for n, m in METHODS.items() if m.lazy) + tuple(n for n in METHODS if n == "gd")
#: The non-lazy projected methods: ``x_{t+1} = prox(x_t - g_t G_t)``.
PROX_METHODS = tuple(n for n, m in METHODS.items() if not m.lazy and n != "gd")


def _arr(traj, name, required=True):
    v = getattr(traj, name, None)
    if v is None:
        if required:
            raise ValueError(f"trajectory has no field {name!r}")
        return None
    return np.asarray(v, dtype=np.float64)


class Context:
    """A trajectory seen through one check.

    Parameters
    ----------
    traj : trajectory-like object
    L : float or None
        Smoothness constant to use; default the trajectory's ``meta["L"]``.
    L_source : str or None
        Where a given ``L`` comes from. Only ``None`` (an exact constant the caller vouches for)
        lets the assumption "L known" hold; pass e.g. ``"estimate: calibration run"`` for an
        estimated L, and every result that needs a true smoothness constant reports it as not met.
    f_lower : float or None
        A lower bound ``f_*`` of f; default ``meta["f_lower"]``.
    t0 : int or None
        First step of the window; None lets the result pick (see :meth:`default_t0`).
    d : float or None
        The AOC constant; None: the measured ``sup_{t >= t0} delta_t``.
    resolution : float
        A step is *resolved* when ``||D_t|| >= resolution * D_ref`` with
        ``D_ref = max(max_s ||D_s||, max_s ||r_s||)``. On an unresolved step
        ``delta_t`` is rounding noise (its error is about
        ``eps_mach ||y_t|| / ||D_t||``: at ``||D_t|| = 1e-15`` it is O(1)), so
        it is left out of every statistic of ``delta_t`` and counted instead.
    """

    def __init__(
        self, traj, L=None, f_lower=None, t0=None, d=None, problem=None, resolution=RESOLUTION, L_source=None, **extra
    ):
        self.traj = traj
        self.meta = dict(getattr(traj, "meta", {}) or {})
        self.f = _arr(traj, "f")
        self.mu = _arr(traj, "mu")
        self.lr = _arr(traj, "lr")
        self.step_norm2 = _arr(traj, "step_norm2")
        self.T = len(self.step_norm2)
        if len(self.f) != self.T + 1 or len(self.mu) != self.T + 1 or len(self.lr) != self.T + 1:
            raise ValueError(
                f"point arrays must have length steps + 1 = {self.T + 1}; got f {len(self.f)}, "
                f"mu {len(self.mu)}, lr {len(self.lr)}"
            )
        self.aoc = _arr(traj, "aoc")
        self.inner = _arr(traj, "inner")
        self.cross = _arr(traj, "cross", required=False)
        self.flips = _arr(traj, "flips")
        self.r_norm = _arr(traj, "r_norm", required=False)
        self.scale_min = _arr(traj, "scale_min", required=False)
        self.L_local = _arr(traj, "L_local", required=False)
        self.problem = problem
        self.extra = extra
        self._resolve_L(L)
        if L is not None and L_source is not None:  # e.g. "estimate: max L_local on a calibration run"
            self.L_source = str(L_source)
        self.f_lower = f_lower if f_lower is not None else self.meta.get("f_lower")
        self.f_lower = None if self.f_lower is None else float(self.f_lower)
        self.t0 = None if t0 is None else int(t0)
        if self.t0 is not None and not 0 <= self.t0 <= self.T:
            raise ValueError(f"t0 must lie in 0..{self.T}, got {t0}")
        self.d_given = d
        self.resolution = float(resolution)
        self.resolved = resolved(self.step_norm2, self.r_norm, self.resolution, finite=np.isfinite(self.aoc))
        #: delta_t on resolved steps, NaN elsewhere: the only delta_t any check reads.
        self.delta = np.where(self.resolved, self.aoc, np.nan)

    def _resolve_L(self, L):
        if L is not None:
            self.L, self.L_source = float(L), "given"
        elif self.meta.get("L") is not None:
            self.L, self.L_source = float(self.meta["L"]), "problem"
        elif self.L_local is not None and np.any(np.isfinite(self.L_local)):
            self.L, self.L_source = float(np.nanmax(self.L_local)), "estimate (max_t L_local)"
        else:
            self.L, self.L_source = None, "unknown"

    # -- labels -------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return str(self.meta.get("method", ""))

    @property
    def problem_name(self) -> str:
        p = self.meta.get("problem", "")
        if isinstance(p, dict):
            return str(p.get("name", ""))
        return str(p)

    @property
    def qset(self) -> str:
        return str(self.meta.get("qset", ""))

    @property
    def deterministic(self) -> bool:
        return self.meta.get("batch_size") is None

    # -- windows ------------------------------------------------------------------------------
    def default_t0(self, need: str = "constant") -> int:
        """The smallest t0 with ``mu_t0 = ... = mu_T`` and ``lr`` constant on the steps ``t0..T-1``.

        With ``need="any"``: 0. The window may be empty (``t0 = T``) when the
        last step changed ``mu``; the check then reports that no step qualifies.
        """
        if need == "any" or self.T == 0:
            return 0
        t0 = self.T
        while t0 > 0 and self.mu[t0 - 1] == self.mu[self.T] and self.lr[t0 - 1] == self.lr[self.T - 1]:
            t0 -= 1
        return t0

    def window(self, t0) -> slice:
        """Step indices ``t0..T-1``."""
        return slice(t0, self.T)

    def sup_delta(self, t0) -> float:
        """``sup_{t0 <= t < T} delta_t`` over the resolved steps (0.0 if none)."""
        a = self.delta[self.window(t0)]
        a = a[np.isfinite(a)]
        return float(a.max()) if a.size else 0.0

    def d_for(self, t0) -> tuple:
        """The AOC constant and where it came from."""
        if self.d_given is not None:
            return float(self.d_given), "given"
        return self.sup_delta(t0), "measured sup_{t>=t0} delta_t"

    def unresolved(self, t0) -> int:
        """Steps ``t >= t0`` that moved but whose ``delta_t`` is below rounding resolution."""
        w = self.window(t0)
        return int(np.sum(np.isfinite(self.aoc[w]) & ~self.resolved[w]))

    def f_scale(self) -> float:
        """A scale for rounding tolerances on f."""
        fin = self.f[np.isfinite(self.f)]
        return max(1.0, float(np.abs(fin).max())) if fin.size else 1.0


def smoothness_c(lr, L, mu, d) -> float:
    """Theorem 1's constant ``c = (1 - g L / 2 - mu d) / g``."""
    return (1.0 - lr * L / 2.0 - mu * d) / lr


def finite_or_none(v):
    return None if v is None or not math.isfinite(float(v)) else float(v)
