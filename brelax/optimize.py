r"""The reference driver: one loop for every method, recording the diagnostics of :mod:`brelax.diagnostics`.

Semantics (the same in every tool that claims to run BinaryRelax here):

* mu comes from :class:`brelax.schedules.RelaxSchedule`: ``lam_t = lam0 * rho**(t // lam_every)``
  and ``mu_t = lam_t / (1 + lam_t)`` for ``t < phase2_start``; ``mu_t = 1`` from
  ``phase2_start`` on (None: never). BinaryConnect is ``mu_t = 1`` for every t; PGD
  ignores mu (recorded as 1); gd has ``mu = 0``.
* binaryrelax / binaryconnect: ``x_t = y_t - mu_t (y_t - P(y_t))``,
  ``y_{t+1} = y_t - lr_t grad f(x_t)``, ``y_0 = y0``; output ``P(y_steps)``.
* pgd: ``x_0 = P(y0)``, ``x_{t+1} = P(x_t - lr_t grad f(x_t))``.
* proxquant: ``x_0 = y0 - mu_0 (y0 - P(y0))``, ``z_t = x_t - lr_t grad f(x_t)``,
  ``x_{t+1} = z_t - mu_{t+1} (z_t - P(z_t))``; output ``P(x_steps)``.
* gd: ``x_{t+1} = x_t - lr_t grad f(x_t)``; output ``P(x_steps)``.

With ``y0`` given and ``batch_size=None`` no randomness enters; otherwise all
randomness comes from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import diagnostics, schedules
from ._validate import check_choice, check_nonneg
from .diagnostics import POINT_OUT, STEP_OUT
from .problems.base import Projector
from .prox import relax
from .sets import get_set
from .steps import get_method
from .trajectory import LAYER_FIELDS, LAYER_POINT_FIELDS, LAYER_STEP_FIELDS, POINT_FIELDS, STEP_FIELDS, Trajectory


class NonFiniteError(FloatingPointError):
    """A run met a NaN or inf; ``.trajectory`` holds every step completed before it."""

    def __init__(self, message: str, trajectory: Trajectory):
        super().__init__(message)
        self.trajectory = trajectory


def mu_schedule_for(
    method: str, lam0=1.0, rho=1.0, phase2_start=None, lam_every=1, mu_schedule=None
) -> schedules.RelaxSchedule:
    """The :class:`~brelax.schedules.RelaxSchedule` a method runs with (callable ``t -> mu_t``)."""
    return schedules.RelaxSchedule(get_method(method).name, lam0, rho, lam_every, phase2_start, mu_schedule)


#: ``sampling=`` choices and what ``meta["sampling"]`` records (the torch step log uses the same words).
SAMPLING = {"shuffle": "shuffled epochs (without replacement)", "with_replacement": "with_replacement"}


def _check_int(v, name, low):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
        raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    return int(v)


def optimize(
    problem,
    method: str = "binaryrelax",
    qset="binary",
    steps: int = 500,
    lr=0.1,
    lam0: float = 1.0,
    rho: float = 1.02,
    phase2_start=None,
    y0=None,
    batch_size=None,
    seed: int = 0,
    granularity: str = "block",
    mu_schedule=None,
    lam_every: int = 1,
    progress: bool = False,
    record_every=None,
    sampling: str = "shuffle",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> Trajectory:
    """Run ``method`` on ``problem`` and record the per-step diagnostics (:mod:`brelax.diagnostics`).

    Besides the measured quantities of :class:`~brelax.trajectory.Trajectory`, the
    lazy methods record the pattern-stable comparison, which costs one more
    evaluation of ``f`` per step; the full gradient is evaluated at every ``x_t``
    (also in minibatch runs, for ``noise_norm2`` and ``g_dot_D``).

    Parameters
    ----------
    problem : a problem of :mod:`brelax.problems` (``f``, ``grad``, ``layout``, ``L``, ...)
    method : "gd", "binaryconnect", "pgd", "proxquant" or "binaryrelax"
    qset : QuantSet or its name
    steps : int >= 1
    lr : float > 0, or a schedule ``t -> lr_t``
    lam0, rho : the geometric lam schedule (``lam0 >= 0``, ``rho >= 1``)
    phase2_start : int or None; from this step on ``mu = 1``
    y0 : starting point of shape ``(problem.dim,)``; default ``problem.init(rng)``
    batch_size : int or None (full gradient)
    seed : int
    granularity : "block" (each block's own axis), "tensor" or "channel"
    mu_schedule : optional ``t -> mu_t`` replacing the geometric lam schedule (e.g. a linear ramp)
    lam_every : lam advances every ``lam_every`` steps (per epoch: steps per epoch)
    progress : show a tqdm progress bar
    record_every : int or None; keep ``x_t``, ``y_t`` and ``P(y_t)`` every so many steps
        (and the last) in ``traj.iterates`` (for histograms and identity checks)
    sampling : "shuffle" (a fresh permutation per epoch) or "with_replacement" (i.i.d. batches,
        unbiased given the past; see :class:`~brelax.problems.sampler.MinibatchSampler`);
        recorded as ``meta["sampling"]``. Only read when ``batch_size`` is given.
    momentum, weight_decay : torch's SGD recursion on the anchor,
        ``m_t = momentum m_{t-1} + g_t + weight_decay y_t`` (dampening 0, no Nesterov), the step taken along
        ``m_t`` instead of ``g_t``; both 0
        (default) is plain gradient descent. The recorded ``sgrad_norm2``/``sg_dot_*`` are then those of the
        direction ``m_t`` (``meta["direction"] = "anchor step"``, as a torch run records it), and the
        anchor-step sums of :func:`brelax.diagnostics.momentum_sums` are recorded (THEORY.md, Theorem II.12).

    Returns
    -------
    Trajectory

    Raises
    ------
    ValueError
        Unknown method or set, ``lr <= 0``, ``rho < 1``, ``lam0 < 0``, a ``y0`` of the wrong shape,
        ``momentum`` outside [0, 1), ``weight_decay < 0``.
    NonFiniteError
        f or its gradient became NaN or inf; ``err.trajectory`` holds the run so far.
    """
    m = get_method(method)
    Q = get_set(qset)
    steps = _check_int(steps, "steps", 1)
    lr_sched = schedules.as_schedule(lr, "lr")
    lam0 = check_nonneg(lam0, "lam0")
    rho = check_nonneg(rho, "rho")
    if rho < 1:
        raise ValueError(f"rho must be >= 1, got {rho}")
    if phase2_start is not None:
        phase2_start = _check_int(phase2_start, "phase2_start", 0)
    mu_sched = mu_schedule_for(method, lam0, rho, phase2_start, _check_int(lam_every, "lam_every", 1), mu_schedule)
    momentum, weight_decay = check_nonneg(momentum, "momentum"), check_nonneg(weight_decay, "weight_decay")
    if momentum >= 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
    plain = momentum == 0 and weight_decay == 0
    rng = np.random.default_rng(seed)
    if y0 is None:
        y0 = problem.init(rng)
    y0 = np.array(y0, dtype=np.float64)
    if y0.shape != (problem.dim,):
        raise ValueError(f"y0 must have shape ({problem.dim},), got {y0.shape}")
    if not np.all(np.isfinite(y0)):
        raise ValueError("y0 contains NaN or inf")
    sampling = check_choice(sampling, tuple(SAMPLING), "sampling")
    sampler = None
    if batch_size is not None:
        from .problems.sampler import MinibatchSampler

        sampler = MinibatchSampler(
            problem.n_samples, batch_size, seed=int(rng.integers(2**63)), replacement=sampling == "with_replacement"
        )
    proj = Projector(problem.layout, Q, granularity)
    rec = _Recorder(problem, proj, steps, m.lazy, momentum_sums=not plain)
    keep = None if record_every is None else _check_int(record_every, "record_every", 1)
    its: dict[str, list] = {"t": [], "x": [], "y": [], "p": []}
    L = getattr(problem, "L", None)

    state = m.init(y0, mu_sched(0), proj)
    f_t, g_full = problem.f(state.x), problem.grad(state.x)
    rec.start(state, f_t, mu_sched(0), lr_sched(0), g_full)
    _keep(its, keep, 0, steps, state)
    codes = proj.codes(state.y)
    meta = dict(
        method=m.name,
        qset=Q.name,
        steps=steps,
        lr=lr if not callable(lr) else "schedule",
        lam0=lam0,
        rho=rho,
        phase2_start=phase2_start,
        lam_every=lam_every,
        seed=seed,
        batch_size=batch_size,
        stochastic=sampler is not None,
        granularity=granularity,
        sampling=None if sampler is None else SAMPLING[sampling],
        # the sampler's epoch (with replacement: blocks of as many batches), so a saved run keeps its epochs
        steps_per_epoch=None if sampler is None else sampler.batches_per_epoch,
        problem=problem.describe(),
        L=L,
        f_lower=getattr(problem, "f_lower", None),
        stopped=None,
        momentum=momentum,
        weight_decay=weight_decay,
        plain_sgd=plain,
        direction="gradient" if plain else "anchor step",
        base_optimizer="SGD",
        nesterov=False,
        dampening=0.0,
        **diagnostics.quant_meta(Q, [(b.shape, proj.axis_of(b)) for b in problem.layout if b.quantize]),
    )
    bar = _progress(steps, progress, m.name)
    buf = np.zeros_like(state.y)  # the momentum buffer, m_(-1) = 0
    for t in range(steps):
        idx = None if sampler is None else sampler.next()
        g_raw = g_full if sampler is None else problem.grad(state.x, idx)
        g = g_raw
        if not plain:  # torch's SGD: the buffer is the direction the anchor moves along
            buf = momentum * buf + (g_raw + weight_decay * state.y)  # torch's order: d_p = g + wd y first
            g = buf
        lr_t, mu_n = lr_sched(t), mu_sched(t + 1)
        new = m.update(state, g, lr_t, mu_n, proj)
        f_n = problem.f(new.x) if np.all(np.isfinite(new.x)) else math.nan
        g_n = problem.grad(new.x) if math.isfinite(f_n) else None
        if g_n is None or not np.all(np.isfinite(g_n)):
            meta["stopped"] = f"non-finite objective or gradient at step {t + 1} (lr={lr_t:g}); stopped"
            traj = rec.trajectory(t, state, proj, m, meta)
            raise NonFiniteError(meta["stopped"], traj)
        codes_n = proj.codes(new.y)
        ps = rec.step(t, state, new, f_t, f_n, g, g_full, g_n, codes, codes_n, lr_sched(t + 1), mu_n)
        if not plain:
            rec.momentum(t, state, new, ps, g_raw)
        if idx is not None:
            rec.same_batch(t, problem, idx, state.x, new.x, g_raw)
        state, f_t, g_full, codes = new, f_n, g_n, codes_n
        _keep(its, keep, t + 1, steps, state)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    traj = rec.trajectory(steps, state, proj, m, meta)
    if keep is not None:
        traj.iterates = {k: np.asarray(v) for k, v in its.items()}
    return traj


def _keep(its, every, t, steps, state):
    if every is not None and (t % every == 0 or t == steps):
        its["t"].append(t)
        its["x"].append(state.x.copy())
        its["y"].append(state.y.copy())
        its["p"].append(state.p.copy())


class _Recorder:
    """Fills the Trajectory arrays from the per-block sums of :mod:`brelax.diagnostics`."""

    def __init__(self, problem, proj, steps, lazy, momentum_sums=False):
        self.problem, self.proj, self.lazy = problem, proj, lazy
        self.a = {k: np.full(steps + 1, np.nan) for k in POINT_FIELDS}
        self.a.update({k: np.full(steps, np.nan) for k in STEP_FIELDS})
        if momentum_sums:
            self.a.update({k: np.full(steps, np.nan) for k in diagnostics.MOMENTUM_SUMS})
        self.a["flips"] = np.zeros(steps, dtype=np.int64)
        self.blocks = problem.layout
        multi = len(self.blocks) > 1
        self.names = [b.name if (multi and b.quantize) else None for b in self.blocks]
        self.layers = {
            n: {k: np.full(steps + (k in LAYER_POINT_FIELDS), np.nan) for k in LAYER_FIELDS}
            for n in self.names
            if n is not None
        }
        for d in self.layers.values():
            d["flips"] = np.zeros(steps, dtype=np.int64)

    def _views(self, v):
        return [v[b.start : b.stop].reshape(b.shape) for b in self.blocks]

    def _point_rows(self, s, g_full):
        scales = iter(self.proj.scales(s.y))
        r, g = self._views(s.y - s.p), self._views(g_full)
        return np.stack(
            [
                diagnostics.point_sums(r[i], g[i], next(scales) if b.quantize else None)
                for i, b in enumerate(self.blocks)
            ]
        )

    def stable(self, s, n, mu_n):
        """``x^s_{t+1}`` and ``P^s_{t+1}`` (flat): the step with the pattern of ``P(y_t)`` kept."""
        ps = n.y.copy()
        for b, yv, pv in zip(self.blocks, self._views(n.y), self._views(s.p), strict=True):
            if b.quantize:
                ps[b.start : b.stop] = diagnostics.stable_projection(yv, pv, self.proj.axis_of(b)).reshape(-1)
        return relax(n.y, ps, mu_n), ps

    def start(self, s, f, mu, lr, g_full):
        _, pt, lay = diagnostics.combine(None, self._point_rows(s, g_full), mu, self.names)
        self._point(0, s, f, mu, lr, pt, lay)

    def _point(self, t, s, f, mu, lr, pt, lay):
        a = self.a
        a["f"][t], a["mu"][t], a["lr"][t] = f, mu, lr
        a["f_quant"][t] = self.problem.f(s.p)
        for k in POINT_OUT:
            a[k][t] = pt[k]
        a["r_norm"][t] = pt["dist_y"]
        for n, d in lay.items():
            for k in LAYER_POINT_FIELDS:
                self.layers[n][k][t] = d[k]

    def step(self, t, s, n, f_t, f_n, g, g_full, g_n, c_t, c_n, lr_n, mu_n):
        """Record step t (``s`` -> ``n``) and the point t + 1; returns ``P^s_{t+1}`` (None unless lazy)."""
        a, views = self.a, self._views
        xs = ps = None
        if self.lazy:
            xs, ps = self.stable(s, n, mu_n)
            a["f_stable"][t] = self.problem.f(xs)
            e = n.p - ps
            # <grad f(x^s_{t+1}), e_t>: one more gradient, on flip steps only (e_t = 0 without a code change)
            flipped = bool(np.any(c_t != c_n))
            a["gap_gs_dot"][t] = float(self.problem.grad(xs) @ e) if flipped else 0.0
            segment = getattr(self.problem, "segment_curvature", None)
            if segment is not None:
                # bound on 2 (f(x_{t+1}) - f(x^s_{t+1}) - mu' <grad f(x^s_{t+1}), e_t>): x_{t+1} = x^s_{t+1} + mu' e_t
                a["curv_gap_seg"][t] = segment(xs, mu_n * e) if flipped else 0.0
            curvature = getattr(self.problem, "curvature", None)
            if curvature is not None:
                a["curv_stable_gap"][t] = curvature(xs - s.x, e)
                a["curv_gap"][t] = curvature(e, e)
        curvature = getattr(self.problem, "curvature", None)
        if curvature is not None:
            a["curv_step"][t] = curvature(n.x - s.x, n.x - s.x)
        cs, cn = self._codes(c_t), self._codes(c_n)
        none = [None] * len(self.blocks)
        xp, xn, rp, rn, gv, gf = (views(v) for v in (s.x, n.x, s.y - s.p, n.y - n.p, g, g_full))
        xsv, pn, psv = (none, none, none) if xs is None else (views(xs), views(n.p), views(ps))
        rows = np.stack(
            [
                diagnostics.step_sums(xp[i], xn[i], rp[i], rn[i], cs[i], cn[i], gv[i], gf[i], xsv[i], pn[i], psv[i])
                for i in range(len(self.blocks))
            ]
        )
        st, pt, lay = diagnostics.combine(rows, self._point_rows(n, g_n), mu_n, self.names)
        for k in STEP_OUT:
            a[k][t] = st[k]
        nd = st["step_norm2"]
        a["L_local"][t] = float(np.linalg.norm(g_n - g_full)) / math.sqrt(nd) if nd > 0 else math.nan
        a["descent"][t] = f_t - f_n
        for name, d in lay.items():
            for k in LAYER_STEP_FIELDS:
                self.layers[name][k][t] = d[k]
        self._point(t + 1, n, f_n, mu_n, lr_n, pt, lay)
        return ps

    def momentum(self, t, s, n, ps, g_raw):
        """The anchor-step sums of step t (:func:`brelax.diagnostics.momentum_sums`), for Theorem II.12;
        ``ps`` is ``P^s_{t+1}`` as :meth:`step` made it (None for a non-lazy method)."""
        views = self._views
        yp, yn, rp, pn, gv = (views(v) for v in (s.y, n.y, s.y - s.p, n.p, g_raw))
        psv = views(ps) if ps is not None else [None] * len(self.blocks)
        rows = [
            diagnostics.momentum_sums(yp[i], yn[i], rp[i], pn[i], psv[i], gv[i], self.proj.axis_of(b))
            if b.quantize
            else diagnostics.momentum_sums(yp[i], yn[i], rp[i], g_raw=gv[i])
            for i, b in enumerate(self.blocks)
        ]
        for k, v in zip(diagnostics.MOMENTUM_SUMS, np.sum(rows, axis=0), strict=True):
            self.a[k][t] = float(v)

    def same_batch(self, t, problem, idx, x, x_new, g):
        """f_B(x_t), f_B(x_{t+1}) and the secant of grad f_B on the step's own batch (THEORY.md, batch descent)."""
        a = self.a
        a["batch_f"][t] = problem.f(x, idx)
        a["batch_f_next"][t] = problem.f(x_new, idx)
        d = float(np.linalg.norm(x_new - x))
        a["batch_L_local"][t] = float(np.linalg.norm(problem.grad(x_new, idx) - g)) / d if d > 0 else math.nan

    def _codes(self, codes):
        out, off = [], 0
        for b in self.blocks:
            out.append(codes[off : off + b.size] if b.quantize else None)
            off += b.size if b.quantize else 0
        return out

    def trajectory(self, done, state, proj, m, meta):
        x_final = state.p if m.lazy else proj(state.x)
        x_star = getattr(self.problem, "x_star", None)
        if x_star is not None:
            meta["recovered"] = bool(np.array_equal(proj.codes(x_final), proj.codes(np.asarray(x_star))))
        else:
            meta["recovered"] = None
        meta["steps_done"] = done
        traj = Trajectory(self.a, x_final, state.y, meta, self.layers)
        return traj.truncated(done) if done < len(self.a["step_norm2"]) else traj


def _progress(total, enabled, desc):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is cosmetic; the run does not need it
        return None
    return tqdm(total=total, desc=desc, leave=False)
