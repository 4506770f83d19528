r"""Step rules: small pure functions with explicit state, written once against the array API.

Each method is a pair ``init(y0, mu0, project) -> State`` and
``update(state, grad, lr, mu_next, project) -> State``. ``grad`` is the
gradient taken at ``state.x``, the point the model is evaluated at;
``project`` is any callable returning the exact projection (per tensor, per
channel, per layer: the step rule does not care). They run unchanged on NumPy
arrays and torch tensors, which is how ``brelax.torch`` reuses them.

``State.y`` is the *anchor*: the float variable that gets projected (the
latent weights of the lazy methods; for the non-lazy methods the point that
was last projected). ``State.p = project(State.y)``. The diagnostics
(:mod:`brelax.diagnostics`) use ``r = y - p``.

============== ============================================================
method         update (``g`` = lr, ``mu'`` = mu of the next step)
============== ============================================================
gd             ``x' = x - g grad``
binaryconnect  ``y' = y - g grad``; ``x' = P(y')``
binaryrelax    ``y' = y - g grad``; ``x' = y' - mu' (y' - P(y'))``
pgd            ``x' = P(x - g grad)``
proxquant      ``z = x - g grad``; ``x' = z - mu' (z - P(z))``
============== ============================================================

BinaryConnect is BinaryRelax with ``mu = 1``; Phase II of BinaryRelax is
exactly that. The caller chooses ``mu`` (see :mod:`brelax.schedules`).
The methods are those of BinaryConnect :cite:`courbariaux2015binaryconnect`, BinaryRelax
:cite:`yin2018binaryrelax` and ProxQuant :cite:`bai2019proxquant` (here with the prox of the
squared distance, the map BinaryRelax uses).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .prox import relax


class State(NamedTuple):
    """``x``: where the gradient is taken; ``y``: the anchor; ``p``: ``P(y)``."""

    x: object
    y: object
    p: object


def lazy_init(y0, mu0, project: Callable) -> State:
    """BinaryRelax / BinaryConnect: ``x_0 = y_0 - mu_0 (y_0 - P(y_0))``."""
    p = project(y0)
    return State(relax(y0, p, mu0), y0, p)


def lazy_update(state: State, grad, lr, mu_next, project: Callable) -> State:
    """``y' = y - lr grad(x)``, ``x' = y' - mu' (y' - P(y'))`` (Algorithm 1, both phases)."""
    y = state.y - lr * grad
    p = project(y)
    return State(relax(y, p, mu_next), y, p)


def pgd_init(y0, mu0, project: Callable) -> State:
    p = project(y0)
    return State(p, y0, p)


def pgd_update(state: State, grad, lr, mu_next, project: Callable) -> State:
    """``x' = P(x - lr grad)``; ``mu`` is ignored."""
    z = state.x - lr * grad
    p = project(z)
    return State(p, z, p)


def prox_init(y0, mu0, project: Callable) -> State:
    p = project(y0)
    return State(relax(y0, p, mu0), y0, p)


def prox_update(state: State, grad, lr, mu_next, project: Callable) -> State:
    """ProxQuant (l2): ``z = x - lr grad``, ``x' = prox(z) = z - mu' (z - P(z))``."""
    z = state.x - lr * grad
    p = project(z)
    return State(relax(z, p, mu_next), z, p)


def gd_init(y0, mu0, project: Callable) -> State:
    return State(y0, y0, project(y0))


def gd_update(state: State, grad, lr, mu_next, project: Callable) -> State:
    """Float gradient descent; ``P`` is only evaluated for the diagnostics."""
    x = state.x - lr * grad
    return State(x, x, project(x))


class Method(NamedTuple):
    """The one description of a method: read by :mod:`brelax.schedules`, :func:`brelax.optimize`,
    :class:`brelax.torch.QuantOptimizer`, the CLI help and ``theory/``.

    Attributes
    ----------
    name : str
    init, update : the step rule (module docstring); ``update`` must factor into an anchor
        step followed by ``init`` (see :mod:`brelax.torch.optimizer`).
    lazy : bool
        The gradient taken at ``x`` updates a separate anchor ``y`` (the latent weights).
    fixed_mu : float or None
        The ``mu`` of every step when the method ignores the schedule (BinaryConnect and
        PGD project: 1; gd never does: 0); None when ``mu`` follows the lam schedule.
    quantizes : bool
        The method pulls the iterate towards ``Q`` (False only for float training, gd).
    x_on_segment : bool
        ``x`` lies on the segment ``[y, P(y)]`` of its anchor, so ``P(x) = P(y)``
        (THEORY.md; :meth:`QuantOptimizer.finalize` projects the anchor because of it).
    summary : str
        One line for ``--help``.
    """

    name: str
    init: Callable
    update: Callable
    lazy: bool
    fixed_mu: float | None
    quantizes: bool = True
    x_on_segment: bool = True
    summary: str = ""

    @property
    def uses_mu(self) -> bool:
        """Whether ``mu`` comes from the schedule (``fixed_mu`` is None)."""
        return self.fixed_mu is None

    @property
    def keeps_anchor(self) -> bool:
        """Whether a separate anchor must be stored: lazy methods, and those relaxing with a scheduled mu."""
        return self.lazy or self.uses_mu


METHODS = {
    "gd": Method("gd", gd_init, gd_update, False, 0.0, quantizes=False, summary="float gradient descent"),
    "binaryconnect": Method(
        "binaryconnect", lazy_init, lazy_update, True, 1.0, summary="latent y, gradient at x = P(y)"
    ),
    "pgd": Method("pgd", pgd_init, pgd_update, False, 1.0, summary="projected gradient: x' = P(x - lr g)"),
    "proxquant": Method("proxquant", prox_init, prox_update, False, None, summary="prox step with a scheduled mu"),
    "binaryrelax": Method(
        "binaryrelax", lazy_init, lazy_update, True, None, summary="latent y, x = y - mu (y - P(y)), mu scheduled"
    ),
}


def get_method(name: str) -> Method:
    """The registered :class:`Method` called ``name``.

    Raises
    ------
    ValueError
        ``name`` is not in :data:`METHODS`.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name]


def methods_help() -> str:
    """``name: summary`` of every method, for ``--help``."""
    return "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values())
