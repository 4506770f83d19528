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
    label = "Proposition 5.1"
    kind = "projector"
    statement = "argmin_x 1/2||x - y||^2 + lam/2 d_Q(x)^2 = (y + lam P(y))/(1 + lam), value lam/(2(1+lam)) d_Q(y)^2"

    def check(
        self, projector=None, qset="binary", lam=1.0, n=None, trials=20, competitors=64, seed=0, tol=1e-10, label=None
    ):
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
        det = {
            "n": n,
            "lam": lam,
            "inputs": len(Y),
            "competitors_per_input": competitors + 17,
            "max_rel_value_gap": worst_val,
            "max_rel_competitor_gain": worst_comp,
            "P(prox(y)) != P(y)": p_changed,
            "set": Q.name,
        }
        res = make_result(
            self.name,
            self.statement,
            {},
            measured,
            0.0,
            tolerance=tol,
            problem=f"random inputs n={n}, set {Q.name}, lam={lam:g}",
            method=label or getattr(proj, "__name__", "projector"),
            details=det,
        )
        if res.status == "holds" and p_changed:
            res.status, res.holds = "violated", False
        return res


class MoreauEnvelope(TheoryResult):
    r"""``brelax.moreau_envelope(y, Q, lam) = min_x 1/2 ||x - y||^2 + (lam/2) d_Q(x)^2``: the minimisation over x.

    The claimed value ``e(y)`` is compared with a numerical minimisation of ``J`` over ``x`` that
    does not use the lemma: random candidates at several spreads around ``y``, and a
    majorise-minimise descent ``x <- (y + lam z(x))/(1 + lam)`` (``z(x)`` the brute-force nearest
    point of x, so ``J`` never increases) from ``y`` and from random starts, with ``d_Q`` by
    enumeration. Both directions are claims: no candidate below ``e(y)`` (the value is a lower
    bound) and some candidate at ``e(y)`` (it is attained). Measured:
    ``max_y |e(y) - min_found J| / ||y||^2``; bound 0.
    """

    name = "moreau_envelope"
    label = "Proposition 5.1"
    kind = "projector"
    statement = "min_x 1/2||x - y||^2 + lam/2 d_Q(x)^2 = lam/(2(1+lam)) d_Q(y)^2 (brelax.moreau_envelope)"

    def check(
        self,
        envelope=None,
        qset="ternary",
        lams=(0.0, 0.1, 1.0, 10.0, 1e4),
        n=None,
        trials=20,
        seed=0,
        tol=1e-9,
        candidates=32,
        starts=4,
        iters=12,
    ):
        """Parameters: ``envelope(y, Q, lam)`` (default ``brelax.moreau_envelope``), the set, the
        ``lams``, the size of the search (``candidates`` random points, ``starts`` descents of
        ``iters`` steps). Returns a Result; ``details`` separates the two directions."""
        import brelax

        Q = _get(qset)
        env_fn = brelax.moreau_envelope if envelope is None else envelope
        n = brute.largest_n(len(Q.table), 6, 20_000) if n is None else int(n)
        pats = brute.patterns(Q.table, n)
        rng = np.random.default_rng(seed + 7)
        Y = test_inputs(n, trials, seed)
        below = unattained = 0.0
        for lam in lams:
            for y in Y:
                scale = max(float(y @ y), 1e-300)
                got = float(env_fn(y, Q, lam))
                spread = np.sqrt(scale / n) * np.geomspace(1e-3, 1.0, candidates)[:, None]
                C = [y + spread * rng.standard_normal((candidates, n))]
                X = np.vstack([y, y + np.sqrt(scale / n) * rng.standard_normal((starts, n))])
                for _ in range(iters):  # J(x) = min_z psi_z(x) never increases along these steps
                    Z = brute.project_rows(X, Q.table, pats, Q.scale)
                    X = (y + lam * Z) / (1.0 + lam)
                C = np.vstack(C + [X])
                best = float(_J(C, np.broadcast_to(y, C.shape), lam, Q, pats).min())
                below = max(below, (got - best) / scale)
                unattained = max(unattained, (best - got) / scale)
        measured = max(below, unattained)
        det = {
            "n": n,
            "lams": list(lams),
            "inputs": len(Y),
            "set": Q.name,
            "max_rel_value_above_a_found_point": below,
            "max_rel_value_below_every_found_point": unattained,
            "search": {"candidates": candidates, "starts": starts + 1, "iters": iters},
        }
        return make_result(
            self.name,
            self.statement,
            {},
            measured,
            0.0,
            tolerance=tol,
            problem=f"random inputs n={n}, set {Q.name}",
            method=getattr(env_fn, "__name__", "envelope"),
            details=det,
        )


def _blocks(traj, problem):
    """``[(slice, axis)]`` of the quantized blocks: the problem's layout, else one per-tensor block."""
    if problem is not None and hasattr(problem, "layout"):
        from brelax.problems.base import Projector

        P = Projector(
            problem.layout, _get(str(traj.meta.get("qset", "binary"))), str(traj.meta.get("granularity", "block"))
        )
        return [(slice(b.start, b.stop), b.shape, P.axis_of(b)) for b in problem.layout if b.quantize]
    return None


def _ref_dist(v, blocks, Q):
    if blocks is None:
        return brute.reference_distance(v, Q.levels, Q.scale)
    tot = 0.0
    for sl, shape, axis in blocks:
        w = v[sl].reshape(shape)
        rows = [w.reshape(-1)] if axis is None else list(np.moveaxis(w, axis, 0).reshape(shape[axis], -1))
        tot += sum(brute.reference_distance(r, Q.levels, Q.scale) ** 2 for r in rows)
    return float(np.sqrt(tot))


class ProxDistance(TheoryResult):
    r"""Along a run, ``d_Q(x_t) = (1 - mu_t) d_Q(y_t)`` (Prop. 5.2), with ``d_Q`` from an *independent* projection.

    ``d_Q`` is computed by :func:`theory.brute.reference_distance` (written from Lemmas
    3.1-3.3, not from :mod:`brelax.projections`) at the recorded iterates (``x_t, y_t``,
    ``optimize(record_every=...)``) and at the final anchor ``y_T``; it is compared with
    ``(1 - mu_t) d_Q(y_t)`` and with the recorded ``dist_x``/``dist_y``, so a wrong projection
    in the run is caught even where ``x_t = y_t`` (gd) or ``x_t = P(y_t)`` (BinaryConnect,
    PGD). Measured: the largest of those gaps relative to ``max_t d_Q(y_t)``; bound 0.
    """

    name = "prox_distance"
    label = "Proposition 5.2"
    kind = "conformance"
    statement = "x_t = y_t - mu_t (y_t - P(y_t))  =>  P(x_t) = P(y_t), d_Q(x_t) = (1 - mu_t) d_Q(y_t)"
    t0_rule = "any"

    def check(self, trajectory, problem=None, tol=1e-9, max_points=50, **kw):
        """Parameters: ``problem`` (its layout gives the scale blocks; default one block with one
        scale), ``tol``, ``max_points`` (iterates checked, evenly spaced). Reads ``iterates``,
        ``y`` (final anchor), ``mu``, ``dist_x``, ``dist_y``."""
        ctx = self.context(trajectory, **kw)
        Q = _get(str(ctx.meta.get("qset", "binary")))
        blocks = _blocks(trajectory, problem)
        it = getattr(trajectory, "iterates", None) or {}
        dx = np.asarray(trajectory.dist_x, dtype=np.float64)
        dy = np.asarray(trajectory.dist_y, dtype=np.float64)
        pts = []
        if it and "x" in it:
            ts = np.asarray(it["t"])
            for k in np.unique(np.linspace(0, len(ts) - 1, min(max_points, len(ts))).astype(int)):
                pts.append((int(ts[k]), np.asarray(it["x"][k], float), np.asarray(it["y"][k], float)))
        yT = getattr(trajectory, "y", None)
        if yT is not None and np.size(yT) and not any(t == ctx.T for t, _, _ in pts):
            pts.append((ctx.T, None, np.asarray(yT, float)))
        errs = []
        for t, x, y in pts:
            d_y = _ref_dist(y, blocks, Q)
            errs.append(abs(dy[t] - d_y))
            if x is not None:
                d_x = _ref_dist(x, blocks, Q)
                errs += [abs(d_x - (1.0 - ctx.mu[t]) * d_y), abs(dx[t] - d_x)]
        scale = max(float(np.nanmax(dy)) if dy.size else 0.0, 1e-300)
        mu_ok = bool(np.all((ctx.mu >= 0) & (ctx.mu <= 1)))
        a = Assumption("0 <= mu_t <= 1", lambda c: (mu_ok, f"mu in [{ctx.mu.min():g}, {ctx.mu.max():g}]"))
        some = Assumption(
            "points to check (iterates or the final anchor)", lambda c: (bool(pts), f"{len(pts)} point(s)")
        )
        # Without the problem's layout the reference distance uses one scale for the whole vector;
        # that is only right when the run had one scale block (row_min = n_quantized, no layers).
        rm, nq = ctx.meta.get("row_min"), ctx.meta.get("n_quantized")
        one = blocks is not None or (not getattr(trajectory, "layers", None) and (rm is None or rm == nq))
        known = Assumption(
            "scale blocks known (the problem's layout, or one scale for the whole vector)",
            lambda c: (
                one,
                "from the problem's layout"
                if blocks is not None
                else f"no problem given; row_min={rm}, n_quantized={nq}, "
                f"layers={list(getattr(trajectory, 'layers', {}) or {})}",
            ),
        )
        det = {
            "points": [t for t, _, _ in pts],
            "with_x": sum(x is not None for _, x, _ in pts),
            "max_dist_y": float(np.max(dy)),
            "projection": "theory.brute.reference_project",
        }
        return self.finish(
            ctx,
            float(max(errs) / scale) if errs else None,
            0.0,
            tolerance=tol,
            details=det,
            extra_assumptions=[a, some, known],
        )
