"""Schedules: functions of the step count ``t`` (optax style), composable and pure.

lam and mu schedules return ``mu_t = lam_t / (1 + lam_t)`` in ``[0, 1]``;
``phase2`` wraps any of them so that ``mu_t = 1`` from a given step on.
"""

from __future__ import annotations

import math
from typing import Callable

from ._validate import check_nonneg, check_positive

Schedule = Callable[[int], float]


def geometric_lam(lam0: float, rho: float, every: int = 1) -> Schedule:
    """``lam_t = lam0 * rho ** (t // every)``: per step (``every=1``) or per epoch (``every`` = steps per epoch)."""
    lam0 = check_nonneg(lam0, "lam0")
    rho = check_nonneg(rho, "rho")
    if rho < 1:
        raise ValueError(f"rho must be >= 1 (lam must not shrink), got {rho}")
    if int(every) < 1:
        raise ValueError(f"every must be a positive int, got {every}")
    every = int(every)

    def lam(t: int) -> float:
        return lam0 * rho ** (t // every)

    return lam


def mu_of_lam(lam: Schedule) -> Schedule:
    """``mu_t = lam_t / (1 + lam_t)``; an overflowing ``lam`` gives ``mu = 1``."""

    def mu(t: int) -> float:
        try:
            v = lam(t)
        except OverflowError:
            return 1.0
        return 1.0 if math.isinf(v) else v / (1.0 + v)

    return mu


def linear_mu(ramp_steps: int, start: float = 0.0, end: float = 1.0) -> Schedule:
    """PARQ-style ramp: ``mu`` goes linearly from ``start`` to ``end`` over ``ramp_steps`` steps, then stays."""
    if int(ramp_steps) < 1:
        raise ValueError(f"ramp_steps must be a positive int, got {ramp_steps}")
    for v, n in ((start, "start"), (end, "end")):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{n} must lie in [0, 1], got {v}")

    def mu(t: int) -> float:
        return start + (end - start) * min(t, ramp_steps) / ramp_steps

    return mu


def phase2(mu: Schedule, start: int | None) -> Schedule:
    """``mu_t`` before ``start``, exactly 1 from ``start`` on (Phase II: exact quantization). None: never."""
    if start is None:
        return mu
    if int(start) < 0:
        raise ValueError(f"phase2_start must be >= 0 or None, got {start}")
    start = int(start)

    def wrapped(t: int) -> float:
        return 1.0 if t >= start else mu(t)

    return wrapped


def constant(value: float) -> Schedule:
    value = check_positive(value, "lr")
    return lambda t: value


def multistep(lr: float, milestones, gamma: float = 0.1, every: int = 1) -> Schedule:
    """``lr * gamma ** (number of milestones <= t // every)`` (MultiStep; milestones in epochs when ``every`` > 1)."""
    lr = check_positive(lr, "lr")
    ms = sorted(int(m) for m in milestones)

    def sched(t: int) -> float:
        e = t // every
        return lr * gamma ** sum(1 for m in ms if e >= m)

    return sched


def cosine(lr: float, total: int, lr_min: float = 0.0) -> Schedule:
    """``lr_min + (lr - lr_min) (1 + cos(pi t / total)) / 2``, constant ``lr_min`` after ``total``."""
    lr = check_positive(lr, "lr")
    if int(total) < 1:
        raise ValueError(f"total must be a positive int, got {total}")

    def sched(t: int) -> float:
        s = min(t, total) / total
        return lr_min + (lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * s))

    return sched


def as_schedule(value, name: str = "lr") -> Schedule:
    """A float becomes a constant schedule; a callable is returned as is."""
    if callable(value):
        return value
    return constant(check_positive(value, name))
