r"""Per-step diagnostics, written once against the array API and shared by NumPy and torch.

:func:`brelax.optimize` (NumPy, one flat vector cut into blocks) and
:class:`brelax.torch.QuantOptimizer` (one tensor per parameter) both call the
functions here, block by block, and combine the blocks with :func:`combine`.
Nothing here is a theorem: these are measured quantities; what they must satisfy
is the business of ``theory/``.

Notation, for one step ``t -> t + 1`` and one block (a tensor, or the whole vector):
``x_t`` is the point the gradient is taken at, ``y_t`` the anchor, ``p_t = P(y_t)``,
``r_t = y_t - p_t``, ``D_t = x_{t+1} - x_t``; ``g_t`` is the gradient the step used
(a minibatch gradient in SGD runs) and ``G_t = grad f(x_t)`` the full gradient (when
known). The *step sums* of a block (:data:`STEP_SUMS`, float64):

==================  ==================================================================
``step_norm2``      :math:`\|D_t\|^2`
``inner``           :math:`\langle r_t - r_{t+1}, D_t\rangle`
``cross``           :math:`\langle r_t, D_t\rangle`
``flips``           entries whose integer code changed between ``p_t`` and ``p_{t+1}``
``sgrad_norm2``     :math:`\|g_t\|^2`
``sg_dot_D``        :math:`\langle g_t, D_t\rangle`
``sg_dot_r``        :math:`\langle g_t, r_t\rangle`
``noise_norm2``     :math:`\|g_t - G_t\|^2` (NaN when ``G_t`` is unknown)
``g_dot_D``         :math:`\langle G_t, D_t\rangle` (NaN when ``G_t`` is unknown)
``stable_norm2``    :math:`\|D^s_t\|^2`, see below (NaN unless given)
``stable_g_dot_D``  :math:`\langle G_t, D^s_t\rangle`
``pattern_gap2``    :math:`\|p_{t+1} - P^s_{t+1}\|^2`
``stable_dot_r``    :math:`\langle D^s_t, r_t\rangle`
``gap_g_dot``       :math:`\langle G_t, e_t\rangle`, :math:`e_t = p_{t+1} - P^s_{t+1}` (the recorded flip)
``stable_dot_gap``  :math:`\langle D^s_t, e_t\rangle`
``gap_sg_dot``      :math:`\langle g_t, e_t\rangle` (the gradient the step used)
==================  ==================================================================

*Pattern-stable comparison* (lazy methods): with ``q_t`` the level pattern of
``p_t`` (levels times codes, per scale row; ``p_t = s q_t`` on each row), the
projection of ``y_{t+1}`` onto the ray of the old pattern is, per row,

.. math::

    P^s_{t+1} = \frac{\max(\langle y_{t+1}, q_t\rangle, 0)}{\|q_t\|^2}\, q_t
              = \frac{\max(\langle y_{t+1}, p_t\rangle, 0)}{\|p_t\|^2}\, p_t

(0 on a row where ``p_t = 0``), ``x^s_{t+1} = y_{t+1} - \mu_{t+1}(y_{t+1} - P^s_{t+1})``
and ``D^s_t = x^s_{t+1} - x_t``: the step the method would have taken had the
pattern not changed (:func:`stable_projection`).

The *point sums* (:data:`POINT_SUMS`) at ``x_t``: ``r_norm2`` = ``||r_t||^2``,
``grad_norm2`` = ``||G_t||^2``, and the smallest and largest scale of ``p_t``.
``d_Q(x_t) = (1 - mu_t) ||r_t||`` (:func:`dist_x`): ``x_t`` lies on the segment
``[y_t, p_t]`` for every method (``mu = 1`` for BinaryConnect and PGD, 0 for gd),
and for any closed ``Q``, if ``p`` is a nearest point of ``y`` then it is one of
every ``x`` on ``[y, p]``: for ``q`` in ``Q``,
``||x - p|| = ||y - p|| - ||y - x|| <= ||y - q|| - ||y - x|| <= ||x - q||``.
"""

from __future__ import annotations

import math

import numpy as np

#: Per-block sums of one step, in this order (see the module docstring).
STEP_SUMS = (
    "step_norm2",
    "inner",
    "cross",
    "flips",
    "sgrad_norm2",
    "sg_dot_D",
    "sg_dot_r",
    "noise_norm2",
    "g_dot_D",
    "stable_norm2",
    "stable_g_dot_D",
    "pattern_gap2",
    "stable_dot_r",
    "gap_g_dot",
    "stable_dot_gap",
    "gap_sg_dot",
)
#: Per-block sums of one point, in this order.
POINT_SUMS = ("r_norm2", "grad_norm2", "scale_min", "scale_max")
#: Step fields derived from the sums (what a Trajectory records per step).
STEP_OUT = (
    "step_norm2",
    "inner",
    "cross",
    "aoc",
    "flips",
    "sgrad_norm2",
    "sg_dot_D",
    "sg_dot_r",
    "noise_norm2",
    "g_dot_D",
    "stable_norm2",
    "stable_g_dot_D",
    "pattern_gap",
    "stable_dot_r",
    "gap_g_dot",
    "stable_dot_gap",
    "gap_sg_dot",
)
#: Point fields derived from the sums.
POINT_OUT = ("dist_x", "dist_y", "grad_norm2", "scale_min", "scale_max")
#: Per-block sums of one step of a base optimizer whose anchor step is not ``-lr * grad`` (heavy-ball
#: momentum, weight decay): what Theorem II.12 of THEORY.md needs (see :func:`momentum_sums`). Totals only.
MOMENTUM_SUMS = (
    "ystep_norm2",
    "ystep_old2",
    "ystep_new2",
    "p_dot_ystep",
    "r_dot_ystep",
    "raw_norm2",
    "raw_dot_r",
    "raw_dot_gap",
    "stable_clamped",
)


def _xp(x):
    import array_api_compat

    return array_api_compat.array_namespace(x), array_api_compat.device(x)


def _dot(xp, a, b):
    return xp.sum(a * b, dtype=xp.float64)


def _row_sums(u, v, axis):
    """Per scale row, ``sum(u * v)`` (keepdims; ``axis`` indexes the rows, None: one row)."""
    xp, _ = _xp(u)
    other = None if axis is None else tuple(i for i in range(u.ndim) if i != axis % u.ndim)
    if other == ():  # a 1-D array with one scale per entry
        return u * v
    return xp.sum(u * v, axis=other, keepdims=True)


def stable_projection(y_new, p_prev, axis=None):
    r"""``P^s_{t+1}``: per scale row, the projection of ``y_new`` onto the ray of ``p_prev``.

    Parameters
    ----------
    y_new : array (NumPy or torch), the anchor ``y_{t+1}``
    p_prev : array of the same shape, ``P(y_t)``
    axis : int or None
        The axis that indexes the scale rows (one scale per index), None: one scale for the whole array.

    Returns
    -------
    array like ``y_new``: per row ``max(<y, p>, 0) / ||p||^2 * p`` (0 where ``p = 0``).
    """
    xp, _ = _xp(y_new)
    a, n = _row_sums(y_new, p_prev, axis), _row_sums(p_prev, p_prev, axis)
    zero = xp.zeros_like(a)
    coef = xp.where(n > 0, xp.where(a > 0, a, zero) / xp.where(n > 0, n, xp.ones_like(n)), zero)
    return coef * p_prev


def step_sums(
    x_prev,
    x_new,
    r_prev,
    r_new,
    codes_prev=None,
    codes_new=None,
    g=None,
    g_full=None,
    x_stable=None,
    p_new=None,
    p_stable=None,
):
    """The :data:`STEP_SUMS` of one block, as one float64 array of that length (same backend as ``x_new``).

    Parameters
    ----------
    x_prev, x_new : arrays, ``x_t`` and ``x_{t+1}``
    r_prev, r_new : ``r_t = y_t - P(y_t)`` and ``r_{t+1}`` (zeros for a float block)
    codes_prev, codes_new : integer codes of ``P(y_t)``, ``P(y_{t+1})``, or None (float block: 0 flips)
    g : the gradient the step used, or None (its sums are NaN)
    g_full : ``grad f(x_t)``, or None (``noise_norm2``, ``g_dot_D``, ``stable_g_dot_D`` are NaN)
    x_stable, p_new, p_stable : ``x^s_{t+1}``, ``P(y_{t+1})`` and ``P^s_{t+1}``, or None (NaN)

    Returns
    -------
    float64 array of shape ``(len(STEP_SUMS),)``; no host synchronisation (torch stays on its device).
    """
    xp, dev = _xp(x_new)
    nan = xp.full((), math.nan, dtype=xp.float64, device=dev)
    D = x_new - x_prev
    flips = (
        xp.zeros((), dtype=xp.float64, device=dev)
        if codes_prev is None
        else xp.sum(xp.astype(codes_prev != codes_new, xp.float64))
    )
    out = [_dot(xp, D, D), _dot(xp, r_prev - r_new, D), _dot(xp, r_prev, D), flips]
    if g is None:
        out += [nan, nan, nan]
    else:
        out += [_dot(xp, g, g), _dot(xp, g, D), _dot(xp, g, r_prev)]
    if g is None or g_full is None:
        out.append(nan)
    else:
        e = g - g_full
        out.append(_dot(xp, e, e))
    out.append(nan if g_full is None else _dot(xp, g_full, D))
    if x_stable is None:
        out += [nan] * 7
    else:
        Ds = x_stable - x_prev
        gap = p_new - p_stable
        out += [_dot(xp, Ds, Ds), nan if g_full is None else _dot(xp, g_full, Ds), _dot(xp, gap, gap)]
        out += [_dot(xp, Ds, r_prev), nan if g_full is None else _dot(xp, g_full, gap), _dot(xp, Ds, gap)]
        out.append(nan if g is None else _dot(xp, g, gap))
    return xp.stack(out)


def _line_norm2(xp, ap, pp):
    """``||M a||^2`` from the row sums ``<a, p>`` and ``<p, p>`` (``M`` projects onto the lines of p's rows)."""
    pos = pp > 0
    return xp.sum(xp.where(pos, ap * ap / xp.where(pos, pp, xp.ones_like(pp)), xp.zeros_like(pp)), dtype=xp.float64)


def momentum_sums(y_prev, y_new, r_prev, p_new=None, p_stable=None, g_raw=None, axis=None):
    r"""The :data:`MOMENTUM_SUMS` of one block: the anchor step ``a_t = y_{t+1} - y_t`` against the patterns.

    With ``M_t`` the orthogonal projector onto the lines of the rows of ``p_t = y_t - r_t`` (per scale
    row, ``M u = (<u, p>/||p||^2) p``; 0 on a row where ``p = 0``; the identity on a float block, given
    as ``p_new=None``), and ``G_t`` the raw gradient of the step (``.grad``, before momentum and weight
    decay): ``ystep_norm2`` :math:`\|a_t\|^2`, ``ystep_old2`` :math:`\|M_t a_t\|^2`, ``ystep_new2``
    :math:`\|M_{t+1} a_t\|^2`, ``p_dot_ystep`` :math:`\langle p_t, a_t\rangle`, ``r_dot_ystep``
    :math:`\langle r_t, a_t\rangle`, ``raw_norm2`` :math:`\|G_t\|^2`, ``raw_dot_r``
    :math:`\langle G_t, r_t\rangle`, ``raw_dot_gap`` :math:`\langle G_t, p_{t+1} - P^s_{t+1}\rangle`,
    ``stable_clamped`` the rows with :math:`\langle y_{t+1}, p_t\rangle < 0` and :math:`p_t \ne 0` (where the
    ray comparison :func:`stable_projection` differs from the line ``M_t y_{t+1}``).

    Parameters
    ----------
    y_prev, y_new, r_prev : arrays
        ``y_t``, ``y_{t+1}``, ``r_t``.
    p_new, p_stable : arrays or None
        ``P(y_{t+1})`` and ``P^s_{t+1}``; ``p_new=None``: a float block (``M = I``, no flip);
        ``p_stable=None``: no pattern-stable comparison (``raw_dot_gap`` is NaN).
    g_raw : array or None
        The raw gradient; None makes its sums NaN.
    axis : int or None
        The scale-row axis (None: one scale for the block).

    Returns
    -------
    array
        float64, shape ``(len(MOMENTUM_SUMS),)``, on the block's device.

    Examples
    --------
    >>> import numpy as np
    >>> y, y_new = np.array([1.0, -2.0]), np.array([0.5, -1.0])
    >>> s = dict(zip(MOMENTUM_SUMS, momentum_sums(y, y_new, np.zeros(2)).tolist()))
    >>> s["ystep_norm2"], s["ystep_old2"]  # a float block: M = I
    (1.25, 1.25)
    """
    xp, dev = _xp(y_new)
    nan = xp.full((), math.nan, dtype=xp.float64, device=dev)
    a = y_new - y_prev
    p_prev = y_prev - r_prev
    a2 = _dot(xp, a, a)
    if p_new is None:  # unquantized: x = y, M = I
        old2 = new2 = a2
        clamped = xp.zeros((), dtype=xp.float64, device=dev)
        pa = _dot(xp, p_prev, a)
    else:  # one pass per row sum: <a, p>, <p, p>, <y', p> for the old pattern, <a, p'>, <p', p'> for the new
        ap, pp = _row_sums(a, p_prev, axis), _row_sums(p_prev, p_prev, axis)
        old2, new2 = _line_norm2(xp, ap, pp), _line_norm2(xp, _row_sums(a, p_new, axis), _row_sums(p_new, p_new, axis))
        clamped = xp.sum(xp.astype((pp > 0) & (_row_sums(y_new, p_prev, axis) < 0), xp.float64))
        pa = xp.sum(ap, dtype=xp.float64)
    out = [a2, old2, new2, pa, _dot(xp, r_prev, a)]
    if g_raw is None:
        out += [nan, nan, nan]
    else:
        if p_new is None:  # a float block: no flip
            g_gap = xp.zeros((), dtype=xp.float64, device=dev)
        else:  # NaN without the pattern-stable comparison (pgd, proxquant)
            g_gap = nan if p_stable is None else _dot(xp, g_raw, p_new - p_stable)
        out += [_dot(xp, g_raw, g_raw), _dot(xp, g_raw, r_prev), g_gap]
    out.append(clamped)
    return xp.stack(out)


def point_sums(r, g_full=None, scales=None):
    """The :data:`POINT_SUMS` of one block at one point (float64 array, same backend as ``r``).

    Parameters
    ----------
    r : ``y - P(y)`` of the block
    g_full : ``grad f(x)`` of the block, or None (NaN)
    scales : the scales of ``P(y)`` (one per row), or None (a float block: NaN)
    """
    xp, dev = _xp(r)
    nan = xp.full((), math.nan, dtype=xp.float64, device=dev)
    out = [_dot(xp, r, r), nan if g_full is None else _dot(xp, g_full, g_full)]
    if scales is None:
        out += [nan, nan]
    else:
        s = xp.asarray(scales, dtype=xp.float64, device=dev)
        out += [xp.min(s), xp.max(s)]
    return xp.stack(out)


def dist_x(mu: float, r_norm: float) -> float:
    """``d_Q(x) = (1 - mu) ||y - P(y)||`` for ``x = y - mu (y - P(y))`` (see the module docstring)."""
    return (1.0 - mu) * r_norm


def step_fields(sums) -> dict:
    """The :data:`STEP_OUT` fields (Python floats) from one row of :data:`STEP_SUMS` values.

    ``aoc`` = ``inner / step_norm2`` (NaN where ``D_t = 0``), ``pattern_gap`` = ``sqrt(pattern_gap2)``.
    """
    s = dict(zip(STEP_SUMS, (float(v) for v in sums), strict=True))
    nd = s["step_norm2"]
    s["aoc"] = s["inner"] / nd if nd > 0 else math.nan
    s["pattern_gap"] = math.sqrt(s.pop("pattern_gap2"))
    return {k: s[k] for k in STEP_OUT}


def point_fields(sums, mu: float) -> dict:
    """The :data:`POINT_OUT` fields from one row of :data:`POINT_SUMS` values and the point's ``mu``."""
    r2, g2, smin, smax = (float(v) for v in sums)
    r = math.sqrt(r2)
    return {"dist_x": dist_x(mu, r), "dist_y": r, "grad_norm2": g2, "scale_min": smin, "scale_max": smax}


def combine(step_rows, point_rows, mu: float, layer_names) -> tuple[dict, dict, dict]:
    """Totals and per-layer fields of one step from the per-block sums (host side, NumPy).

    Parameters
    ----------
    step_rows : array ``(n_blocks, len(STEP_SUMS))`` or None (no step: the initial point)
    point_rows : array ``(n_blocks, len(POINT_SUMS))`` at the new point ``x_{t+1}``
    mu : ``mu_{t+1}``, the mu of the new point
    layer_names : a name per block, None for a block that gets no per-layer entry
        (float blocks, and every block of a single-block problem); totals include all blocks.

    Returns
    -------
    ``(step_total, point_total, layers)``: two dicts of :data:`STEP_OUT` / :data:`POINT_OUT`
    fields (the step one empty without ``step_rows``) and ``{name: fields}`` with both merged.
    The total sums are the sums over blocks; scale_min/max are the min/max over quantized blocks.
    """
    pr = np.asarray(point_rows, dtype=np.float64).reshape(-1, len(POINT_SUMS))
    tot_p = pr[:, :2].sum(axis=0).tolist()
    with np.errstate(all="ignore"):
        smin = np.nanmin(pr[:, 2]) if np.any(np.isfinite(pr[:, 2])) else math.nan
        smax = np.nanmax(pr[:, 3]) if np.any(np.isfinite(pr[:, 3])) else math.nan
    point_total = point_fields(tot_p + [smin, smax], mu)
    layers = {n: point_fields(pr[i], mu) for i, n in enumerate(layer_names) if n is not None}
    step_total = {}
    if step_rows is not None:
        sr = np.asarray(step_rows, dtype=np.float64).reshape(-1, len(STEP_SUMS))
        step_total = step_fields(sr.sum(axis=0))
        for i, n in enumerate(layer_names):
            if n is not None:
                layers[n].update(step_fields(sr[i]))
    return step_total, point_total, layers


def rows_of(shape, axis) -> int:
    """Entries sharing one scale in a tensor of ``shape`` quantized along ``axis`` (None: the whole tensor)."""
    size = math.prod(shape)
    return size if axis is None else size // shape[axis]


def quant_meta(qset, shapes_axes) -> dict:
    """``row_min``, ``levels`` and ``n_quantized`` of a run.

    Parameters
    ----------
    qset : QuantSet
    shapes_axes : iterable of ``(shape, axis)``, one per quantized tensor (axis None: one scale per tensor)
    """
    rows, n = [], 0
    for shape, axis in shapes_axes:
        rows.append(rows_of(tuple(shape), axis))
        n += math.prod(shape)
    return {
        "row_min": min(rows) if rows else None,
        "levels": [float(v) for v in qset.levels if v > 0],
        "n_quantized": int(n),
    }
