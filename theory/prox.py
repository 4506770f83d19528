r"""The prox lemma for a nonconvex Q and the Moreau identity (THEORY.md section 5), as checks.

``J(x) = 1/2 ||x - y||^2 + (lam/2) d_Q(x)^2``. The lemma: ``x* = y - mu (y - P(y))``
with ``mu = lam/(1+lam)`` minimises J, with ``J(x*) = lam/(2(1+lam)) d_Q(y)^2``, and
``P(x*) = P(y)``. Here ``d_Q`` is computed by brute-force enumeration, independent
of the projection under test.
"""

from __future__ import annotations

import numpy as np

from . import brute
from .base import TheoryResult
from .projection import _get, test_inputs
from .result import Assumption, make_result


def _J(X, Y, lam, Q, pats):
    return 0.5 * np.sum((X - Y) ** 2, axis=1) + 0.5 * lam * brute.distance2_of_set(X, Q, pats)


class ProxLemma(TheoryResult):
    r"""``argmin_x J(x) = (y + lam P(y))/(1 + lam)`` for closed, possibly nonconvex, Q.

    Measured, relative to ``||y||^2``: the worst of (i) ``J(x*) - lam/(2(1+lam)) d_Q(y)^2``
    in absolute value, (ii) ``J(x*) - J(x)`` over random competitors ``x`` near
    ``x*`` and on the segment ``[y, P(y)]``. Bound 0. ``P(x*) = P(y)`` is checked too.
    """

    name = "prox_lemma"
    statement = "argmin_x 1/2||x - y||^2 + lam/2 d_Q(x)^2 = (y + lam P(y))/(1 + lam), value lam/(2(1+lam)) d_Q(y)^2"

    def bound(self, **constants) -> float:
        return 0.0

    def check(self, projector=None, qset="binary", lam=1.0, n=None, trials=20, competitors=64, seed=0,
              tol=1e-10, label=None):
        Q = _get(qset)
        proj = Q.project if projector is None else projector
        n = brute.largest_n(len(Q.table), 6, 20_000) if n is None else int(n)
        pats = brute.patterns(Q.table, n)
        rng = np.random.default_rng(seed + 1)
        Y = test_inputs(n, trials, seed)
        mu = lam / (1.0 + lam)
        worst_val = worst_comp = 0.0
        p_changed = 0
        for y in Y:
            p = np.asarray(proj(y), dtype=np.float64)
            xs = y - mu * (y - p)
            scale = max(float(y @ y), 1e-300)
            env = lam / (2 * (1 + lam)) * float(brute.distance2_of_set(y[None], Q, pats)[0])
            Jx = float(_J(xs[None], y[None], lam, Q, pats)[0])
            worst_val = max(worst_val, abs(Jx - env) / scale)
            spread = np.sqrt(scale / n) * np.geomspace(1e-4, 1.0, competitors)[:, None]
            C = xs + spread * rng.standard_normal((competitors, n))
            seg = y + np.linspace(0, 1, 17)[:, None] * (p - y)
            C = np.vstack([C, seg])
            Jc = _J(C, np.broadcast_to(y, C.shape), lam, Q, pats)
            worst_comp = max(worst_comp, float((Jx - Jc.min()) / scale))
            if np.any(np.abs(np.asarray(proj(xs)) - p) > 1e-9 * np.sqrt(scale)):
                p_changed += 1
        measured = max(worst_val, worst_comp)
        det = {"n": n, "lam": lam, "inputs": len(Y), "competitors_per_input": competitors + 17,
               "max_rel_value_gap": worst_val, "max_rel_competitor_gain": worst_comp,
               "P(prox(y)) != P(y)": p_changed, "set": Q.name}
        res = make_result(self.name, self.statement, {}, measured, 0.0, tolerance=tol,
                          problem=f"random inputs n={n}, set {Q.name}, lam={lam:g}",
                          method=label or getattr(proj, "__name__", "projector"), details=det)
        if res.status == "holds" and p_changed:
            res.status, res.holds = "violated", False
        return res


class MoreauEnvelope(TheoryResult):
    r"""``brelax.moreau_envelope(y, Q, lam) = lam/(2(1+lam)) d_Q(y)^2 = J(prox(y))``, and
    ``min_z i_Q(z) + lam/2 ||z - y||^2 = lam/2 d_Q(y)^2`` (value of the envelope of the indicator).

    Measured: the worst relative gap between ``brelax.moreau_envelope`` and the
    brute-force value; bound 0.
    """

    name = "moreau_envelope"
    statement = "min_x 1/2||x - y||^2 + lam/2 d_Q(x)^2 = lam/(2(1+lam)) d_Q(y)^2 (brelax.moreau_envelope)"

    def bound(self, **constants) -> float:
        return 0.0

    def check(self, envelope=None, qset="ternary", lams=(0.0, 0.1, 1.0, 10.0, 1e4), n=None, trials=20, seed=0,
              tol=1e-10):
        import brelax

        Q = _get(qset)
        env_fn = brelax.moreau_envelope if envelope is None else envelope
        n = brute.largest_n(len(Q.table), 6, 20_000) if n is None else int(n)
        pats = brute.patterns(Q.table, n)
        Y = test_inputs(n, trials, seed)
        d2 = brute.distance2_of_set(Y, Q, pats)
        worst = 0.0
        for lam in lams:
            for y, dd in zip(Y, d2):
                want = lam / (2 * (1 + lam)) * dd
                got = float(env_fn(y, Q, lam))
                worst = max(worst, abs(got - want) / max(float(y @ y), 1e-300))
        det = {"n": n, "lams": list(lams), "inputs": len(Y), "set": Q.name}
        return make_result(self.name, self.statement, {}, worst, 0.0, tolerance=tol,
                           problem=f"random inputs n={n}, set {Q.name}",
                           method=getattr(env_fn, "__name__", "envelope"), details=det)


class ProxDistance(TheoryResult):
    r"""Along a run, ``d_Q(x_t) = (1 - mu_t) d_Q(y_t)``: the relaxed point keeps ``P(y_t)`` (Prop. 5.2).

    Applies to every method of :mod:`brelax.steps` (PGD: ``mu = 1``, ``x = P(z)``;
    GD: ``mu = 0``, ``x = y``). Measured: ``max_t |d_Q(x_t) - (1 - mu_t) d_Q(y_t)| / max_t d_Q(y_t)``.
    """

    name = "prox_distance"
    statement = "x_t = y_t - mu_t (y_t - P(y_t))  =>  P(x_t) = P(y_t), d_Q(x_t) = (1 - mu_t) d_Q(y_t)"
    t0_rule = "any"

    def bound(self, **constants) -> float:
        return 0.0

    def check(self, trajectory, tol=1e-9, **kw):
        ctx = self.context(trajectory, **kw)
        dx = np.asarray(getattr(trajectory, "dist_x"), dtype=np.float64)
        dy = np.asarray(getattr(trajectory, "dist_y"), dtype=np.float64)
        err = np.abs(dx - (1.0 - ctx.mu) * dy)
        scale = max(float(np.max(dy)), 1e-300)
        mu_ok = bool(np.all((ctx.mu >= 0) & (ctx.mu <= 1)))

        a = Assumption("0 <= mu_t <= 1", lambda c: (mu_ok, f"mu in [{ctx.mu.min():g}, {ctx.mu.max():g}]"))
        det = {"argmax_t": int(np.argmax(err)), "max_dist_y": float(np.max(dy))}
        return self.finish(ctx, float(err.max() / scale), 0.0, tolerance=tol, details=det,
                           extra_assumptions=[a])
