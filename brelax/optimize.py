r"""The reference driver: one loop for every method, with the diagnostics of MATH.md section 5.

Semantics (the same in every tool that claims to run BinaryRelax here):

* ``lam_t = lam0 * rho**(t // lam_every)`` and ``mu_t = lam_t / (1 + lam_t)`` for
  ``t < phase2_start``; ``mu_t = 1`` from ``phase2_start`` on (None: never).
  BinaryConnect is ``mu_t = 1`` for every t; PGD ignores mu; GD has ``mu = 0``.
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

from . import schedules
from ._validate import check_nonneg
from .problems.base import Projector
from .sets import get_set
from .steps import get_method
from .trajectory import LAYER_FIELDS, POINT_FIELDS, STEP_FIELDS, Trajectory


class NonFiniteError(FloatingPointError):
    """A run met a NaN or inf; ``.trajectory`` holds every step completed before it."""

    def __init__(self, message: str, trajectory: Trajectory):
        super().__init__(message)
        self.trajectory = trajectory


def mu_schedule_for(method: str, lam0=1.0, rho=1.0, phase2_start=None, lam_every=1, mu_schedule=None):
    """The mu schedule a method runs with (see the module docstring)."""
    if method in ("binaryconnect", "pgd"):
        return lambda t: 1.0
    if method == "gd":
        return lambda t: 0.0
    base = mu_schedule if mu_schedule is not None else schedules.mu_of_lam(
        schedules.geometric_lam(lam0, rho, lam_every))
    return schedules.phase2(base, phase2_start)


def _check_int(v, name, low):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
        raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    return int(v)


def optimize(problem, method: str = "binaryrelax", qset="binary", steps: int = 500, lr=0.1,
             lam0: float = 1.0, rho: float = 1.02, phase2_start=None, y0=None, batch_size=None,
             seed: int = 0, granularity: str = "block", mu_schedule=None, lam_every: int = 1,
             progress: bool = False, record_every=None) -> Trajectory:
    """Run ``method`` on ``problem`` and record every diagnostic of MATH.md section 5.

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

    Returns
    -------
    Trajectory

    Raises
    ------
    ValueError
        Unknown method or set, ``lr <= 0``, ``rho < 1``, ``lam0 < 0``, a ``y0`` of the wrong shape.
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
    mu_sched = mu_schedule_for(method, lam0, rho, phase2_start, _check_int(lam_every, "lam_every", 1),
                               mu_schedule)
    rng = np.random.default_rng(seed)
    if y0 is None:
        y0 = problem.init(rng)
    y0 = np.array(y0, dtype=np.float64)
    if y0.shape != (problem.dim,):
        raise ValueError(f"y0 must have shape ({problem.dim},), got {y0.shape}")
    if not np.all(np.isfinite(y0)):
        raise ValueError("y0 contains NaN or inf")
    sampler = None
    if batch_size is not None:
        from .problems.sampler import MinibatchSampler

        sampler = MinibatchSampler(problem.n_samples, batch_size, seed=rng.integers(2**63))
    proj = Projector(problem.layout, Q, granularity)
    rec = _Recorder(problem, proj, steps)
    keep = None if record_every is None else _check_int(record_every, "record_every", 1)
    its = {"t": [], "x": [], "y": [], "p": []}
    L = getattr(problem, "L", None)
    lemma_b = (m.lazy or m.name == "gd") and sampler is None and L is not None

    state = m.init(y0, mu_sched(0), proj)
    f_t, g_full = problem.f(state.x), problem.grad(state.x)
    rec.point(0, state, f_t, mu_sched(0), lr_sched(0))
    _keep(its, keep, 0, steps, state)
    codes = proj.codes(state.y)
    meta = dict(method=m.name, qset=Q.name, steps=steps, lr=lr if not callable(lr) else "schedule",
                lam0=lam0, rho=rho, phase2_start=phase2_start, lam_every=lam_every, seed=seed,
                batch_size=batch_size, granularity=granularity, problem=problem.describe(), L=L,
                f_lower=getattr(problem, "f_lower", None), stopped=None)
    bar = _progress(steps, progress, m.name)
    for t in range(steps):
        g = g_full if sampler is None else problem.grad(state.x, sampler.next())
        lr_t, mu_t, mu_n = lr_sched(t), mu_sched(t), mu_sched(t + 1)
        new = m.update(state, g, lr_t, mu_n, proj)
        f_n = problem.f(new.x) if np.all(np.isfinite(new.x)) else math.nan
        g_n = problem.grad(new.x) if math.isfinite(f_n) else None
        if not math.isfinite(f_n) or not np.all(np.isfinite(g_n)):
            meta["stopped"] = f"non-finite objective or gradient at step {t + 1} (lr={lr_t:g}); stopped"
            traj = rec.trajectory(t, state, proj, m, meta)
            raise NonFiniteError(meta["stopped"], traj)
        codes_n = proj.codes(new.y)
        rec.step(t, state, new, f_t, f_n, g_full, g_n, codes, codes_n, lr_t, mu_t, mu_n, L if lemma_b else None)
        rec.point(t + 1, new, f_n, mu_n, lr_sched(t + 1))
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
    def __init__(self, problem, proj, steps):
        self.problem, self.proj = problem, proj
        self.a = {k: np.full(steps + 1, np.nan) for k in POINT_FIELDS}
        self.a.update({k: np.full(steps, np.nan) for k in STEP_FIELDS})
        self.a["flips"] = np.zeros(steps, dtype=np.int64)
        self.blocks = [b for b in problem.layout if b.quantize] if len(problem.layout) > 1 else []
        self.layers = {b.name: {k: np.full(steps + (k == "dist_y"), np.nan) for k in LAYER_FIELDS}
                       for b in self.blocks}
        for b in self.blocks:
            self.layers[b.name]["flips"] = np.zeros(steps, dtype=np.int64)

    def point(self, t, s, f, mu, lr):
        a, P = self.a, self.proj
        r = s.y - s.p
        a["f"][t], a["mu"][t], a["lr"][t] = f, mu, lr
        a["f_quant"][t] = self.problem.f(s.p)
        a["scale_min"][t] = P.scale_min(s.y)  # before P(x): y's quantization is still remembered
        a["dist_x"][t] = float(np.linalg.norm(s.x - P(s.x)))
        a["dist_y"][t] = a["r_norm"][t] = float(np.linalg.norm(r))
        for b in self.blocks:
            self.layers[b.name]["dist_y"][t] = float(np.linalg.norm(r[b.start:b.stop]))

    def step(self, t, s, n, f_t, f_n, g_t, g_n, c_t, c_n, lr, mu_t, mu_n, L):
        a = self.a
        D = n.x - s.x
        dr = (s.y - s.p) - (n.y - n.p)
        nd = float(D @ D)
        inner, cross = float(dr @ D), float((s.y - s.p) @ D)
        a["step_norm2"][t], a["inner"][t], a["cross"][t] = nd, inner, cross
        a["aoc"][t] = inner / nd if nd > 0 else math.nan
        a["flips"][t] = int(np.count_nonzero(c_t != c_n))
        a["L_local"][t] = float(np.linalg.norm(g_n - g_t)) / math.sqrt(nd) if nd > 0 else math.nan
        a["descent"][t] = f_t - f_n
        if L is not None:
            rhs = f_t - (1.0 - lr * L / 2.0) * nd / lr + mu_n * inner / lr - (mu_n - mu_t) * cross / lr
            a["lemma_b_slack"][t] = rhs - f_n
        off = 0
        for b in self.blocks:
            sl = slice(b.start, b.stop)
            d2 = float(D[sl] @ D[sl])
            lay = self.layers[b.name]
            lay["step_norm2"][t] = d2
            lay["aoc"][t] = float(dr[sl] @ D[sl]) / d2 if d2 > 0 else math.nan
            lay["flips"][t] = int(np.count_nonzero(c_t[off:off + b.size] != c_n[off:off + b.size]))
            off += b.size

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
