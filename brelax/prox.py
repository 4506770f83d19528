r"""The relaxed penalty: prox of :math:`(\lambda/2) d_Q^2` and its Moreau envelope.

For any closed set ``Q`` (convex or not) and ``lam >= 0``,

.. math::

    \operatorname{prox}(y) = \arg\min_x \tfrac12\|x - y\|^2 + \tfrac{\lambda}{2} d_Q(x)^2
                          = \frac{y + \lambda P(y)}{1 + \lambda} = y - \mu (y - P(y)),
    \qquad \mu = \frac{\lambda}{1 + \lambda}.

Proof. For every ``z`` in ``Q``, minimising ``1/2||x - y||^2 + lam/2 ||x - z||^2``
over ``x`` gives ``x = (y + lam z)/(1 + lam)`` and the value
``lam/(2(1 + lam)) ||y - z||^2 >= lam/(2(1 + lam)) d_Q(y)^2``. Since
``d_Q(x)^2 = min_z ||x - z||^2``, the objective is the minimum over ``z`` of
these, and both bounds are attained at ``z = P(y)``. The Moreau envelope of the
indicator of ``Q`` is ``min_z i_Q(z) + lam/2 ||z - x||^2 = lam/2 d_Q(x)^2``;
that of the penalty is ``lam/(2(1 + lam)) d_Q(y)^2`` (see ``theory/THEORY.md``).
"""

from __future__ import annotations

from ._validate import check_float_array, check_nonneg


def relax(y, p, mu):
    """The interpolation ``y - mu (y - p)`` between ``y`` and its quantization ``p``.

    Written as a convex combination rather than ``(y + lam p)/(1 + lam)`` so
    that a large ``lam`` cannot overflow float16. A scalar ``mu == 1`` returns ``p``
    itself: ``y - (y - p)`` can be one rounding away from ``p``, and Phase II must be
    exactly in Q.
    """
    if isinstance(mu, (int, float)) and mu == 1:
        return p
    return y - mu * (y - p)


def prox(w, Q, lam, axis=None, group_size=None):
    r"""The prox of ``(lam/2) d_Q^2`` at ``w``: ``(w + lam P(w)) / (1 + lam)``.

    BinaryRelax's relaxed point :cite:`yin2018binaryrelax` (``lam`` grows during Phase I); the
    same map, with a different ``lam``, is ProxQuant's prox step :cite:`bai2019proxquant`.

    Parameters
    ----------
    w : NumPy array or torch tensor (float16/32/64)
    Q : QuantSet
    lam : float >= 0
    axis, group_size : granularity of the projection, as in :meth:`QuantSet.project`.

    Returns
    -------
    Same shape, dtype and backend as ``w``.

    Raises
    ------
    ValueError
        ``lam`` is negative, NaN or infinite (use ``Q.project`` for ``mu = 1``),
        and every error of :meth:`QuantSet.project`.

    Examples
    --------
    >>> import numpy as np, brelax
    >>> w = np.array([0.9, -0.2, 0.05, -1.3])
    >>> brelax.prox(w, brelax.binary(), lam=1.0)  # halfway between w and P(w) = 0.6125 sign(w)
    array([ 0.75625, -0.40625,  0.33125, -0.95625])
    >>> brelax.prox(w, brelax.binary(), lam=0.0)  # lam = 0: the identity
    array([ 0.9 , -0.2 ,  0.05, -1.3 ])
    """
    lam = check_nonneg(lam, "lam")
    check_float_array(w, "w")
    p = Q.project(w, axis=axis, group_size=group_size)
    return relax(w, p, lam / (1.0 + lam))


def moreau_envelope(w, Q, lam, axis=None, group_size=None) -> float:
    r"""``min_x 1/2||x - w||^2 + (lam/2) d_Q(x)^2 = lam / (2 (1 + lam)) d_Q(w)^2``."""
    lam = check_nonneg(lam, "lam")
    d = Q.distance(w, axis=axis, group_size=group_size)
    return lam / (2.0 * (1.0 + lam)) * d * d
