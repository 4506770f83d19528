r"""The flip costs of Lemma II.3 (THEORY.md): the a-priori bound and the per-step terms of Theorem II.4."""

from __future__ import annotations

import math

import numpy as np

from .numerics import _nan, field


def set_info(meta) -> dict:
    """The quantization set as the flip-cost bound needs it: levels, free scale, binary-type.

    Reads the set named ``meta["qset"]`` (its levels, 0 included), else ``meta["levels"]``.
    The recorded ``meta["levels"]`` holds the *positive* levels only, so it cannot tell
    ternary ``{0, +-1}`` from binary ``{+-1}``: it is used only when the set's name is not
    recognised. Returns ``{"levels", "l_max", "binary", "free_scale", "row_min",
    "n_quantized", "known"}``.
    """
    levels, free = meta.get("levels"), None
    name = str(meta.get("qset", ""))
    try:
        from brelax import get_set

        Q = get_set(name)
        free = Q.scale is None
        levels = list(Q.levels)
    except (ValueError, TypeError, ImportError):
        pass
    if free is None:
        free = "@" not in name and bool(name)
    known = levels is not None and len(levels) > 0
    lv = [float(v) for v in levels] if known else []
    return {
        "levels": lv,
        "l_max": max(lv) if known else math.nan,
        "binary": known and len(lv) == 1 and lv[0] > 0,
        "free_scale": bool(free),
        "row_min": meta.get("row_min"),
        "n_quantized": meta.get("n_quantized"),
        "known": known,
    }


def pattern_gap_bound(flips, scale_t, scale_n, gnorm, lr, r_norm_n, info) -> np.ndarray:
    r"""A-priori bound ``B_t >= ||P(y_{t+1}) - P^s_{t+1}||`` (THEORY.md, Lemma II.3).

    General free-scale set, per scale row with ``k_b`` code changes:
    ``B_t^2 = 4 k (a' Delta)^2 + 4 sqrt(k) a' Delta d'`` with ``a' = scale_max_{t+1}``,
    ``Delta = 2 l_max``, ``d' = ||r_{t+1}||``. Binary ``{+-l}``: also
    ``B_t = 2 sqrt(k) (l a_t + 2 g ||G_t|| / sqrt(n_min))`` (``a_t = scale_max_t``,
    ``n_min = row_min``); the smaller one is used. ``B_t = 0`` when ``k_t = 0``.

    Parameters
    ----------
    flips, scale_t, scale_n, gnorm, lr, r_norm_n : arrays of length T
        ``k_t``, ``scale_max_t``, ``scale_max_{t+1}``, ``||G_t||``, ``g_t``, ``||r_{t+1}||``.
    info : dict from :func:`set_info`

    Returns
    -------
    ndarray, length T (NaN where an input is missing).
    """
    k = np.asarray(flips, dtype=np.float64)
    e = 2.0 * info["l_max"] * scale_n
    general = 2.0 * np.sqrt(k * e * e + np.sqrt(k) * e * r_norm_n)
    out = general
    if info["binary"] and info["row_min"]:
        binary = 2.0 * np.sqrt(k) * (info["l_max"] * scale_t + 2.0 * lr * gnorm / math.sqrt(float(info["row_min"])))
        out = np.where(np.isfinite(binary), np.fmin(general, binary), general)
    return np.where(k == 0, 0.0, out)


def flip_cost_bound(B, mu_n, G, gnorm, lr, dmu, r_norm, L) -> np.ndarray:
    r"""``Ebar_t = mu' (||grad f(x_t)|| + L (g ||G_t|| + |Dmu| ||r_t||)) B_t + (L/2) mu'^2 B_t^2`` (Lemma II.3)."""
    return mu_n * (G + L * (lr * gnorm + np.abs(dmu) * r_norm)) * B + 0.5 * L * mu_n * mu_n * B * B


def recorded_flip_cost_L(mu_n, flips, grad_dot_gap, stable_dot_gap, pattern_gap, L) -> np.ndarray:
    r"""``Ehat_t`` of Lemma II.3(e) with ``H = L I``: ``mu' (<G, e_t> + L <D^s_t, e_t>) + (L/2) mu'^2 ||e_t||^2``.

    0 where no code changed or ``mu' = 0``; ``grad_dot_gap`` is ``<G, e_t>`` for the gradient the bound is
    about (the batch gradient of the same-batch checks).
    """
    mn = mu_n
    return np.where(
        (flips == 0) | (mn == 0), 0.0, mn * (grad_dot_gap + L * stable_dot_gap) + 0.5 * L * mn * mn * pattern_gap**2
    )


def recorded_flip_cost(ctx, L) -> tuple:
    r"""``Ehat_t``, the flip cost from the recorded flip (THEORY.md, Lemma II.3(e)), and its curvature source.

    With ``e_t = P(y_{t+1}) - P^s_{t+1}`` and a quadratic majorant ``H`` of f (``H = L I`` for any
    L-smooth f; the problem's own ``H`` where recorded: ``A^T A`` for least squares, exact),
    ``Ehat_t = mu' (<grad f(x_t), e_t> + <D^s_t, H e_t>) + (mu'^2/2) <e_t, H e_t>``, and where the
    gradient at ``x^s_{t+1}`` is recorded also ``mu' <grad f(x^s_{t+1}), e_t> + (mu'^2/2) <e_t, H e_t>``
    (the majorant taken at ``x^s_{t+1}`` instead of ``x_t``); the smaller one. No value of f enters.
    0 where the pattern did not change (``e_t = 0``) or ``mu' = 0`` (``x = y``); NaN where the fields
    are not recorded (then only the a-priori ``Ebar_t`` applies).
    """
    tr, T = ctx.traj, ctx.T
    mn = ctx.mu[1:]
    gg, sdg, pg = (field(tr, n, T) for n in ("gap_g_dot", "stable_dot_gap", "pattern_gap"))
    cs, cg = field(tr, "curv_stable_gap", T), field(tr, "curv_gap", T)
    gg, sdg, pg = (_nan(T) if v is None else v for v in (gg, sdg, pg))
    have_h = cs is not None and cg is not None and bool(np.all(np.isfinite(cs) == np.isfinite(cg)))
    if have_h and np.isfinite(cs).any():
        cross, quad, source = np.where(np.isfinite(cs), cs, L * sdg), np.where(np.isfinite(cg), cg, L * pg * pg), "H"
    else:
        cross, quad, source = L * sdg, L * pg * pg, "L"
    Eh = mn * (gg + cross) + 0.5 * mn * mn * quad
    gs = field(tr, "gap_gs_dot", T)
    if gs is not None:
        Eh = np.fmin(Eh, mn * gs + 0.5 * mn * mn * quad)
    none = (ctx.flips == 0) | (mn == 0)
    return np.where(none, 0.0, Eh), source


def segment_flip_cost(ctx) -> np.ndarray:
    r"""``Ehat_seg_t = mu' <grad f(x^s_{t+1}), e_t> + (1/2) curv_gap_seg_t`` (THEORY.md, Lemma II.3(f)).

    ``curv_gap_seg_t`` is the problem's bound on ``2 (f(x^s + mu' e_t) - f(x^s) - mu' <grad f(x^s), e_t>)``
    along the flip segment, computed at ``x^s_{t+1}`` (for softmax models from the logits there: the
    local curvature times the factor ``2 psi(a_i)`` by which the softmax weights can grow along the
    segment). Unlike :func:`recorded_flip_cost` it takes no global majorant and no ``L``. 0 where no code
    changed or ``mu' = 0``; NaN where ``curv_gap_seg`` or ``gap_gs_dot`` is not recorded.
    """
    tr, T = ctx.traj, ctx.T
    mn = ctx.mu[1:]
    seg, gs = field(tr, "curv_gap_seg", T), field(tr, "gap_gs_dot", T)
    if seg is None or gs is None:
        return _nan(T)
    Eh = mn * gs + 0.5 * seg
    none = (ctx.flips == 0) | (mn == 0)
    return np.where(none & np.isfinite(Eh), 0.0, Eh)


def descent_terms(ctx, L, info=None) -> dict:
    r"""The per-step terms of Theorem II.4 (arrays of length T), for checks and figures.

    Two decrease terms: ``c_t ||G_t||^2`` with ``c_t = g (1 - mu') (1 - g L (1 - mu')/2)`` (valid where
    ``mu' = 0`` or ``g L (2 - mu') <= 2``) and ``(1/g - L/2) ||u_t||^2``, ``u_t = D^s_t + Dmu r_t`` (valid
    where ``g L <= 2``); ``S_t`` is the larger valid one (NaN where neither is). ``K_t`` (continuation),
    ``N_t`` (noise), ``B_t`` (:func:`pattern_gap_bound`), the a-priori flip cost ``Ebar_t``
    (:func:`flip_cost_bound`), the recorded one ``Ehat_t`` (:func:`recorded_flip_cost`), the segment one
    ``Ehat_seg_t`` (:func:`segment_flip_cost`, NaN where not recorded) and ``Ebest_t = min(Ebar_t, Ehat_t,
    Ehat_seg_t)`` over the recorded forms; the measured excess ``E_t = f(x_{t+1}) - f(x^s_{t+1})`` (NaN
    without ``f_stable``), and ``rhs_t = f(x_t) - S_t + K_t + N_t + Ebest_t``.
    """
    tr, T = ctx.traj, ctx.T
    info = set_info(ctx.meta) if info is None else info
    g, mt, mn = ctx.lr[:-1], ctx.mu[:-1], ctx.mu[1:]
    dmu = mn - mt
    sg2 = field(tr, "sgrad_norm2", T)
    G2 = field(tr, "grad_norm2", T + 1)
    nz = field(tr, "noise_norm2", T)
    sgr = field(tr, "sg_dot_r", T)
    smax = field(tr, "scale_max", T + 1)
    sn2, sdr = field(tr, "stable_norm2", T), field(tr, "stable_dot_r", T)
    sg2 = _nan(T) if sg2 is None else sg2
    G2 = np.full(T + 1, np.nan) if G2 is None else G2
    sgr = _nan(T) if sgr is None else sgr
    smax = np.full(T + 1, np.nan) if smax is None else smax
    sn2 = _nan(T) if sn2 is None else sn2
    sdr = _nan(T) if sdr is None else sdr
    if nz is None:
        nz = np.zeros(T) if ctx.deterministic else _nan(T)
    if ctx.deterministic:
        nz = np.where(np.isnan(nz), 0.0, nz)
    r = ctx.r_norm if ctx.r_norm is not None else np.full(T + 1, np.nan)
    gn, G, xi = np.sqrt(np.maximum(sg2, 0)), np.sqrt(np.maximum(G2[:-1], 0)), np.sqrt(np.maximum(nz, 0))
    c = g * (1 - mn) * (1 - g * L * (1 - mn) / 2)
    c_valid = (mn == 0) | (g * L * (2 - mn) <= 2)
    # u = (1 - mu') a + mu' b with a = -g G_t: u = a where mu' = 0 (no pattern-stable record needed)
    u2 = np.where(mn == 0, g * g * sg2, sn2 + 2 * dmu * sdr + dmu * dmu * r[:-1] ** 2)
    cu = 1.0 / g - L / 2
    u_valid = (g * L <= 2) & np.isfinite(u2)
    with np.errstate(invalid="ignore"):
        S = np.fmax(np.where(c_valid, c * sg2, np.nan), np.where(u_valid, cu * u2, np.nan))
    K = -dmu * sgr + L * np.abs(dmu) * g * gn * r[:-1] + 0.5 * L * dmu * dmu * r[:-1] ** 2
    N = xi * (g * gn + np.abs(dmu) * r[:-1])
    B = pattern_gap_bound(ctx.flips, smax[:-1], smax[1:], gn, g, r[1:], info)
    Eb = flip_cost_bound(B, mn, G, gn, g, dmu, r[:-1], L)
    Eh, h_source = recorded_flip_cost(ctx, L)
    Ehs = segment_flip_cost(ctx)
    Ebest = np.fmin(np.fmin(Eb, Eh), Ehs)
    fs = field(tr, "f_stable", T)
    E = ctx.f[1:] - fs if fs is not None else _nan(T)
    rhs = ctx.f[:-1] - S + K + N + Ebest
    return {
        "c": c,
        "S": S,
        "u2": u2,
        "K": K,
        "N": N,
        "B": B,
        "Ebar": Eb,
        "Ehat": Eh,
        "Ehat_curvature": h_source,
        "Ehat_seg": Ehs,
        "Ebest": Ebest,
        "E": E,
        "rhs": rhs,
        "sgrad_norm2": sg2,
        "grad_norm2": G2[:-1],
        "dmu": dmu,
    }
