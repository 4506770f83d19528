"""Schedules: functions of the step count ``t`` (optax style), composable and pure.

lam and mu schedules return ``mu_t = lam_t / (1 + lam_t)`` in ``[0, 1]``;
``phase2`` wraps any of them so that ``mu_t = 1`` from a given step on.
:class:`RelaxSchedule` is *the* mu schedule of a method: :func:`brelax.optimize`
and :class:`brelax.torch.QuantOptimizer` both read mu from one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

from ._validate import check_nonneg, check_positive
from .steps import get_method

Schedule = Callable[[int], float]

#: The one default of rho, lam's factor per lam step: the authors' 1.04 per epoch (README, "The torch
#: backend and CIFAR"), used by RelaxSchedule, QuantOptimizer and brelax train.
DEFAULT_RHO = 1.04


class _Spec:
    """A schedule that says what it is: callable ``t -> mu`` with a JSON-able ``spec`` (saved in checkpoints)."""

    def __init__(self, fn: Callable[[int], float], spec: dict):
        self.fn, self.spec = fn, spec

    def __call__(self, t: int) -> float:
        return self.fn(t)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Spec) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.spec.items())))

    def __repr__(self) -> str:
        return f"{self.spec['name']}({', '.join(f'{k}={v!r}' for k, v in self.spec.items() if k != 'name')})"


def schedule_spec(fn) -> dict | None:
    """What a mu schedule is, as a JSON-able dict: its ``spec`` (:func:`linear_mu`), else its qualified name.

    None for no schedule. Two schedules with equal specs give equal mu at every step; a
    plain callable is known only by its name.
    """
    if fn is None:
        return None
    spec = getattr(fn, "spec", None)
    if isinstance(spec, dict):
        return dict(spec)
    return {"name": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"}


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
    """PARQ-style ramp :cite:`jin2025parq`: ``mu`` goes linearly from ``start`` to ``end`` over ``ramp_steps`` steps.

    After ``ramp_steps`` steps it stays at ``end``.
    """
    if int(ramp_steps) < 1:
        raise ValueError(f"ramp_steps must be a positive int, got {ramp_steps}")
    for v, n in ((start, "start"), (end, "end")):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{n} must lie in [0, 1], got {v}")

    ramp_steps, start, end = int(ramp_steps), float(start), float(end)

    def mu(t: int) -> float:
        return start + (end - start) * min(t, ramp_steps) / ramp_steps

    return _Spec(mu, {"name": "linear_mu", "ramp_steps": ramp_steps, "start": start, "end": end})


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


@dataclass(frozen=True)
class RelaxSchedule:
    r"""The mu schedule of one run: one object for the NumPy driver and the torch optimizer.

    .. math::

        \lambda_k = \lambda_0 \rho^k,\quad \mu_t = \frac{\lambda_k}{1 + \lambda_k}\ (t < t_2),
        \qquad \mu_t = 1\ (t \ge t_2),

    with ``k = t // every`` (per step: ``every = 1``; per epoch: ``every`` = steps per
    epoch, or the epoch count passed as ``k``), ``t_2 = phase2_start`` (None: never).
    ``mu_ramp`` (a schedule ``t -> mu``, e.g. :func:`linear_mu`) replaces the lam
    schedule. A method with a ``fixed_mu`` (:class:`brelax.steps.Method`: BinaryConnect and
    PGD 1, gd 0) has that mu for every t.

    Parameters
    ----------
    method : a name in :data:`brelax.steps.METHODS`
    lam0 : float >= 0
    rho : float >= 1 (default :data:`DEFAULT_RHO`)
    every : int >= 1
    phase2_start : int >= 0 or None, in steps
    mu_ramp : callable ``t -> mu`` or None

    Raises
    ------
    ValueError
        An unknown method, ``lam0 < 0``, ``rho < 1``, ``every < 1``, a negative ``phase2_start``.
    TypeError
        ``mu_ramp`` is not callable.
    """

    method: str = "binaryrelax"
    lam0: float = 1.0
    rho: float = DEFAULT_RHO
    every: int = 1
    phase2_start: int | None = None
    mu_ramp: Callable | None = None

    def __post_init__(self):
        get_method(self.method)  # ValueError naming the registered methods
        object.__setattr__(self, "lam0", check_nonneg(self.lam0, "lam0"))
        rho = check_nonneg(self.rho, "rho")
        if rho < 1:
            raise ValueError(f"rho must be >= 1 (lam must not shrink), got {self.rho}")
        object.__setattr__(self, "rho", rho)
        for name, low in (("every", 1), ("phase2_start", 0)):
            v = getattr(self, name)
            if v is None and name == "phase2_start":
                continue
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
                raise ValueError(
                    f"{name} must be an int >= {low}{' or None' if name == 'phase2_start' else ''}, got {v!r}"
                )
            object.__setattr__(self, name, int(v))
        if self.mu_ramp is not None and not callable(self.mu_ramp):
            raise TypeError(f"mu_ramp must be callable t -> mu, got {type(self.mu_ramp).__name__}")

    def lam(self, k: int) -> float:
        """``lam0 * rho**k`` (inf once it overflows)."""
        try:
            return self.lam0 * self.rho**k
        except OverflowError:
            return math.inf

    def mu(self, t: int, k: int | None = None) -> float:
        """``mu_t``; ``k`` is the lam index (default ``t // every``)."""
        fixed = get_method(self.method).fixed_mu
        if fixed is not None:
            return fixed
        if self.phase2_start is not None and t >= self.phase2_start:
            return 1.0
        if self.mu_ramp is not None:
            return float(self.mu_ramp(t))
        lam = self.lam(t // self.every if k is None else k)
        return 1.0 if math.isinf(lam) else lam / (1.0 + lam)

    def __call__(self, t: int) -> float:
        return self.mu(t)
