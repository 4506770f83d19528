r"""Fast exact kernels for torch tensors (CPU or CUDA): the projections of :mod:`brelax.projections`, faster.

Device-agnostic torch operations only: no ``.cpu()``, no ``.numpy()``, no
Python loop over entries. A few host reads of small per-row tensors (to size
the histogram) are the only synchronisations. The reference kernels stay the
definition; these are dispatch from :meth:`brelax.sets.QuantSet.quantize`,
pinned to the reference by ``tests/test_fast_torch.py`` on every device
present. Tie rule and ranges as in :mod:`brelax.fast`.

* :func:`binary_rows` -- ``L = {l_0}``: the closed form ``a = ||y||_1 / (n l_0)``,
  ``q = sign(y)`` (``sign(0) = +1``), fused into one sum and one ``copysign``.
* :func:`ternary_threshold` -- ``L = {0, l_1}``: the histogram bounds of
  :func:`brelax.fast.ternary_hist`, vectorised over all rows at once: one
  histogram of the float bits (``bincount``), bounds on every bin, an exact
  sort of the few entries in the surviving bins.
* level sets with more levels are not here: on CPU tensors
  :func:`brelax.fast.level_kernel` runs on a zero-copy NumPy view of the
  magnitudes (see :func:`quantize`), elsewhere the reference sweep.

:func:`quantize` returns a :class:`~brelax.sets.QuantizedTensor` whose values
(what ``dequantize()`` returns) are formed directly, and whose codes are
computed on first access from the input (they cost one more pass, which a
training step that only needs the values never pays).
"""

from __future__ import annotations

import math

import torch

_U = 2.0**-53  # unit roundoff of float64


def _l1_scales(a, l0: float):
    r"""Per row ``sum(a) / (n l_0)`` of the finite magnitudes ``a``, accumulated in float64, never overflowing.

    ``a.sum(dim=1, dtype=float64)``: a float32 row cannot overflow a float64
    sum; a float64 row can (``[1e308, 1e308]``), and is then summed again as
    ``2^-k a`` with ``2^k >= n`` and the scale multiplied back by ``2^k``
    (powers of two: exact; see :func:`brelax.fast.l1_row_sums`).
    """
    n = a.shape[1]
    sums = a.sum(dim=1, dtype=torch.float64)
    bad = ~torch.isfinite(sums)
    if not bool(bad.any().item()):
        return sums / (n * float(l0))
    k = max(1, math.ceil(math.log2(n)))
    again = torch.ldexp(a, torch.tensor(-k, device=a.device)).sum(dim=1, dtype=torch.float64)
    scaled = torch.ldexp(again / (n * float(l0)), torch.tensor(k, device=a.device))
    return torch.where(bad, scaled, sums / (n * float(l0)))


def binary_rows(g, l0: float, out=None):
    r"""Exact projection of each row of ``g`` onto ``{±a l_0}^n``: values and scales.

    The pattern of the binary set is fixed (every entry at ``l_0``), so the
    best scale is ``<|y|, 1> l_0 / (n l_0^2) = ||y||_1 / (n l_0)`` and the
    projection is ``sign(y) a l_0`` with ``sign(0) = +1`` -- exactly
    :func:`brelax.projections.single_level`. The values are
    ``copysign(dtype(a l_0), y)``, which is ``dtype(a * table[code])`` of the
    reference dequantization; only ``-0.0`` needs care (``copysign`` would give
    ``-a l_0``; the reference gives ``+a l_0``), fixed where the input holds a zero.

    On CPU, float32/float64 rows run :func:`brelax.fast.binary_values` on the
    zero-copy NumPy views of ``g`` and of the output: ``abs`` into the output,
    float64 row sums, the sign on the bits, by row chunks that stay in cache.
    Elsewhere: ``abs`` into the output, float64 row sums
    (:func:`_l1_scales`), ``copysign``. Row sums are float64 on every path,
    and finite input gives finite values (float64 rows near ``1.8e308``,
    float32 rows near ``3.4e38`` included).

    Parameters
    ----------
    g : (G, n) floating torch tensor, finite
    l0 : float
        The level.
    out : (G, n) contiguous tensor of ``g.dtype``, optional
        The output buffer (fresh by default); it must not overlap ``g``.

    Returns
    -------
    (values, scales) or None
        ``values``: ``(G, n)`` tensor of ``g.dtype``; ``scales``: ``(G,)``
        float64 tensor. None where ``g`` holds NaN or inf (the caller validates).
    """
    G, n = g.shape
    values = torch.empty_like(g, memory_format=torch.contiguous_format) if out is None else out
    if g.device.type == "cpu" and g.dtype in (torch.float32, torch.float64) and g.numel():
        from . import fast

        got = fast.binary_values(g.contiguous().numpy(), l0, out=values.numpy())
        return None if got is None else (values, torch.from_numpy(got[1]))
    torch.abs(g, out=values)
    a = values if values.dtype in (torch.float32, torch.float64) else values.float()
    scales = _l1_scales(a, l0)
    if not bool(torch.isfinite(scales).all().item()):
        return None  # NaN or inf in g: the caller validates
    has_zero = bool((a.amin() == 0).item()) if a.numel() else False
    sv = (scales * float(l0)).to(g.dtype)[:, None]
    torch.copysign(sv.expand(G, n), g, out=values)
    if has_zero:  # some entry is +-0: it must map to +a l_0
        values = torch.where(g == 0, sv.expand(G, n), values)
    return values, scales


# ---------------------------------------------------------------------- ternary


def _bits(a):
    """Integer view, mantissa bits and integer dtype of the float32/float64 magnitudes ``a``."""
    if a.dtype == torch.float32:
        return a.view(torch.int32), 23, torch.int32
    return a.view(torch.int64), 52, torch.int64


def _float_of_bits(bits, dtype):
    """The floats (float64 tensor) whose ``dtype`` bit patterns are the int64 ``bits``."""
    ity = torch.int32 if dtype == torch.float32 else torch.int64
    return bits.to(ity).view(dtype).to(torch.float64)


def ternary_threshold(a, l1: float, chunk: int = 1 << 22):
    r"""Per row the smallest kept magnitude (inf: nothing kept) and the scale of the exact ternary projection.

    ``a``: ``(G, n)`` float32 or float64 magnitudes, finite. Entry ``i`` of
    row ``g`` is at level ``l_1`` iff ``a[g, i] >= thr[g]``.

    The algorithm and its proof are those of :func:`brelax.fast.ternary_hist`
    (bins of the float bit patterns, the bound ``U_b`` on every candidate whose
    threshold lies in bin ``b``, the attained lower bound ``L``, the lower
    bound ``tau_lo`` on the optimal threshold, an exact sort of the entries in
    the hull of the surviving bins), with every row processed at once:

    1. the bins of all rows are one ``bincount`` over ``bin + row * B``
       (counts, and float64 sums of the magnitudes);
    2. the bounds are elementwise on the ``(G, B)`` table;
    3. the hull entries of all rows are gathered with one ``nonzero`` and
       sorted in a padded ``(G, width)`` table, and every candidate in it is
       evaluated exactly with the offsets (count, sum) of the bins above the
       hull.

    Float64 sums in any order differ from the exact sums by at most
    ``(n + B) 2^-53`` relative, inside the margin ``δ`` of the proof, so the
    bounds never drop the optimal bin. On CPU ``bincount`` adds in index order
    (deterministic); on other devices it may use atomics, so the scale is
    recomputed there by a deterministic masked sum (the threshold does not
    depend on the order: the hull candidates are ranked by exact sums up to
    the margin, and ties are broken by the threshold).

    Cost: about ten elementwise passes and two ``bincount`` passes (counts,
    float64 sums), plus a sort of the hull (a few hundred entries per row for
    Gaussian data). Worst case (all entries in one bin) a sort of everything,
    never a wrong answer. On CPU one ``bincount`` alone costs about 4.5 times
    the one-pass ``w.abs().sum()`` (measured: bench/), which is why the CPU
    path runs the NumPy kernel instead (cache-blocked histogram).
    """
    G, n = a.shape
    f64 = torch.float64
    dev = a.device
    ibits, mant, ity = _bits(a)
    rowmax = a.amax(dim=1).to(f64)
    if not bool(torch.isfinite(rowmax).all().item()):
        return None  # NaN or inf in a: the caller validates
    # tau* >= tau_lo (see brelax.fast.ternary_hist); a strided sample's mean is enough to size the bins.
    sample = a[:, :: max(1, n // 512)]
    rough = sample.sum(dim=1, dtype=f64) / sample.shape[1]
    tau_est = torch.maximum(rough / 2, rowmax / (2 * math.sqrt(n)))
    ratio = float(torch.max(rowmax / torch.where(tau_est > 0, tau_est, rowmax + 1)).item())
    R = int(min(max(2, math.ceil(math.log2(max(ratio, 1.0))) + 1), mant + 8))
    m = int(min(11, max(2, math.floor(math.log2(max(min(n, 1 << 16) / 16.0 / R, 1.0))))))
    sh = mant - m
    B = (R << m) + 1
    if G * B >= 2**31 - 1:
        raise ValueError(f"a: too many rows ({G}) for one histogram of {B} bins each")
    maxbits = rowmax.to(a.dtype).view(ity).to(torch.int64)
    floorbits = torch.clamp(maxbits - (R << mant), min=1)
    # Bin of every entry, as int64 (bincount's index type), with the row offset folded in.
    idx = ibits.to(torch.int64, copy=True)
    idx -= floorbits[:, None]
    idx.clamp_(min=0)
    idx.bitwise_right_shift_(sh)
    idx += (torch.arange(G, device=dev, dtype=torch.int64) * B)[:, None]
    flat = idx.reshape(-1)
    cnt = torch.bincount(flat, minlength=G * B).reshape(G, B).to(f64)
    sm = torch.bincount(flat, weights=a.reshape(-1).to(f64), minlength=G * B).reshape(G, B)
    del flat

    infbits = int(torch.tensor(math.inf, dtype=a.dtype).view(ity).item())
    ebits = torch.clamp(floorbits[:, None] + (torch.arange(B + 1, device=dev, dtype=torch.int64) << sh), max=infbits)
    edges = _float_of_bits(ebits, a.dtype)
    delta = 8.0 * (n + B + 16) * _U
    keep, b0, C, A = _surviving_bins(cnt, sm, edges, rowmax, n, delta)
    rows = torch.arange(G, device=dev)
    live = keep.any(dim=1)
    first = torch.argmax(keep.to(torch.int8), dim=1)
    last = keep.shape[1] - 1 - torch.argmax(keep.flip(1).to(torch.int8), dim=1)
    blo, bhi = b0 + first, b0 + last
    # Hull = bins [blo, bhi] of each row (none for dead rows); in bin-index space, with the row offset.
    lo_idx = torch.where(live, blo + rows * B, torch.full_like(blo, -1))
    hi_idx = torch.where(live, bhi + rows * B, torch.full_like(bhi, -2))
    base_s = A[rows, last]
    base_t = C[rows, last]
    thr, best, tstar = _best_in_hull(a, idx, lo_idx, hi_idx, base_s, base_t, chunk)
    del idx
    if dev.type != "cpu":  # bincount may have added in any order: one deterministic sum instead
        best = torch.where(a >= thr.to(a.dtype)[:, None], a, torch.zeros((), dtype=a.dtype, device=dev)).sum(
            dim=1, dtype=f64
        )
    scale = torch.where(tstar > 0, best / (torch.clamp(tstar, min=1.0) * float(l1)), torch.zeros_like(best))
    return thr, scale


def _above(x):
    """``out[:, b] = sum_{c > b} x[:, c]`` (exclusive suffix sums along the rows)."""
    inc = torch.flip(torch.cumsum(torch.flip(x, [1]), dim=1), [1])
    return torch.cat([inc[:, 1:], torch.zeros_like(inc[:, :1])], dim=1)


def _surviving_bins(cnt, sm, edges, rowmax, n, delta):
    """Port of :func:`brelax.fast._surviving_bins` to torch (same bounds, same margin)."""
    tau_lo = torch.maximum(sm.sum(dim=1) / (2 * n), rowmax / (2 * math.sqrt(n))) * (1.0 - delta)
    b0 = int(torch.min(torch.sum(edges[:, 1:] < tau_lo[:, None], dim=1)).item())
    c, s = cnt[:, b0:], sm[:, b0:]
    C, A = _above(c), _above(s)
    lo = edges[:, b0:-1].clone()
    if b0 == 0:
        lo[:, 0] = 0.0  # bin 0 also holds the entries below the floor
    hi = torch.minimum(edges[:, b0 + 1 :], rowmax[:, None])
    full = (A + s) ** 2 / torch.clamp(C + c, min=1.0)
    L = full.max(dim=1).values
    width = hi - lo
    flat = width <= 0  # all entries of the bin equal: only k = n_b
    width = torch.where(flat, torch.ones_like(width), width)
    k0 = torch.where(flat, c, (s - c * lo) / width)
    k0 = torch.clamp(torch.minimum(k0, torch.clamp(c, min=1.0)), min=1.0)
    U = (A + hi) ** 2 / (C + 1.0)
    U = torch.maximum(U, (A + k0 * hi) ** 2 / (C + k0))
    U = torch.maximum(U, full)
    keep = ((L * (1.0 - delta))[:, None] <= U) & (c > 0) & (hi >= tau_lo[:, None]) & (rowmax > 0)[:, None]
    return keep, b0, C, A


def _best_in_hull(a, idx, lo_idx, hi_idx, base_s, base_t, chunk):
    """Evaluate every candidate whose threshold lies in the hull ``lo_idx <= idx <= hi_idx`` of its row.

    Returns per row the threshold (inf if none beats keeping nothing), the
    kept sum and the kept count (float64).
    """
    G, n = a.shape
    f64 = torch.float64
    dev = a.device
    flat_a = a.reshape(-1)
    step = max(1, chunk // max(n, 1))
    pos = []
    for r0 in range(0, G, step):  # the boolean mask of a block of rows at a time
        sub = idx[r0 : r0 + step]
        mask = (sub >= lo_idx[r0 : r0 + step, None]) & (sub <= hi_idx[r0 : r0 + step, None])
        pos.append(torch.nonzero(mask.reshape(-1)).reshape(-1) + r0 * n)
    pos = torch.cat(pos) if pos else torch.zeros(0, dtype=torch.int64, device=dev)
    rows = pos // n
    vals = flat_a[pos]
    per_row = torch.bincount(rows, minlength=G)
    width = max(int(per_row.max().item()) if G else 0, 1)
    start = torch.cumsum(per_row, 0) - per_row
    P = torch.full((G, width), -1.0, dtype=a.dtype, device=dev)  # padding -1 sorts after every magnitude
    P.reshape(-1)[rows * width + (torch.arange(rows.numel(), device=dev) - start[rows])] = vals
    M = torch.full((G, width + 1), -1.0, dtype=f64, device=dev)
    M[:, :width] = torch.sort(P, dim=1, descending=True).values.to(f64)
    cs = base_s[:, None] + torch.cumsum(torch.clamp(M[:, :width], min=0.0), dim=1)
    tt = base_t[:, None] + torch.arange(1, width + 1, dtype=f64, device=dev)
    drop = (M[:, :width] > M[:, 1:]) & (torch.arange(width, device=dev) < per_row[:, None])
    obj = torch.where(drop, cs * cs / tt, torch.full_like(cs, -1.0))
    j = torch.argmax(obj, dim=1)
    r = torch.arange(G, device=dev)
    ok = (per_row > 0) & (cs[r, j] > 0)
    thr = torch.where(ok, M[r, j], torch.full_like(base_s, math.inf))
    zero = torch.zeros_like(base_s)
    return thr, torch.where(ok, cs[r, j], zero), torch.where(ok, tt[r, j], zero)


def ternary_rows(g, l1: float, out=None):
    r"""Exact projection of each row of ``g`` onto ``{0, ±a l_1}^n``: values, scales and thresholds, or None.

    Values ``copysign(dtype(a l_1), y)`` where ``|y| >= thr``, ``+0.0`` elsewhere.
    On CPU, float32/float64 rows run :func:`brelax.fast.ternary_values` on the
    zero-copy NumPy views of ``g`` and of the output (compiled loops with numba,
    cache-blocked NumPy passes without; the same bits). Elsewhere ``|g|`` goes
    into the output, :func:`ternary_threshold` finds the thresholds, and the
    values are ``copysign`` times the kept mask, plus ``0.0`` (which turns the
    ``-0.0`` of a dropped negative entry into the reference's ``+0.0``).

    Returns
    -------
    (values, scales, thr) or None
        None where ``g`` holds NaN or inf, or a float64 row lies beyond ``2^±400``.
    """
    G, n = g.shape
    values = torch.empty_like(g, memory_format=torch.contiguous_format) if out is None else out
    if g.device.type == "cpu" and g.dtype in (torch.float32, torch.float64) and g.numel():
        from . import fast

        got = fast.ternary_values(g.contiguous().numpy(), l1, out=values.numpy())
        if got is None:
            return None
        return values, torch.from_numpy(got[1]), torch.from_numpy(got[2])
    torch.abs(g, out=values)
    a = values if values.dtype in (torch.float32, torch.float64) else values.float()
    got = ternary_threshold(a, l1)
    if got is None:
        return None
    thr, scales = got
    kept = a >= thr.to(a.dtype)[:, None]
    sv = (scales * float(l1)).to(g.dtype)[:, None]
    torch.copysign(sv.expand(G, n), g, out=values)
    values.mul_(kept)
    values.add_(0.0)
    return values, scales, thr


# ------------------------------------------------------------ the torch fast path of QuantSet


def _codes_dtype(n_table):
    return torch.int8 if n_table <= 127 else (torch.int16 if n_table <= 32767 else torch.int32)


def _lazy(g, make):
    """``make`` to be called on first access of the codes; it reads ``g``, which must be unchanged then."""
    try:
        version = g._version
    except RuntimeError:  # inference tensors keep no version counter: compute now
        return make()

    def codes():
        if g._version != version:
            raise RuntimeError(
                "the input of QuantSet.quantize was modified in place before its codes were read; "
                "read QuantizedTensor.codes first, or quantize a copy"
            )
        return make()

    return codes


def quantize(g, levels):
    r"""The torch fast path of :meth:`brelax.sets.QuantSet.quantize` for grouped ``(G, n)`` input.

    Parameters
    ----------
    g : (G, n) floating torch tensor, finite (validated by the caller)
    levels : tuple of float
        The non-negative levels of a free-scale set.

    Returns
    -------
    (values, scales, codes) or None
        ``values``: ``(G, n)`` tensor of ``g.dtype``, exactly ``dequantize()``
        of the reference; ``scales``: ``(G,)`` float64; ``codes``: the signed
        codes of the reference (int8/16/32) or a zero-argument callable that
        computes them from ``g`` on first access. None where the reference
        should run (level sets with more than two levels off the CPU).

    Dispatch: binary (one level) -> :func:`binary_rows` on every device;
    ``{0, l_1}`` -> :func:`ternary_rows`, with the thresholds of
    :func:`brelax.fast.ternary_threshold` on a zero-copy NumPy view on CPU (it
    blocks the histogram in cache and is faster there; measured in bench/)
    and :func:`ternary_threshold` on other devices; other level sets on CPU ->
    :func:`brelax.fast.signed_codes` on the zero-copy NumPy view (the pruned
    sweep of :mod:`brelax.fast_levels`), values by a per-row table lookup.
    """
    with torch.no_grad():
        return _quantize(g.detach(), tuple(float(v) for v in levels))


def _quantize(g, levels):
    from . import fast, kernels

    kind = kernels.set_kind(levels)
    K = len(levels) - 1
    has_zero = levels[0] == 0
    n_table = 2 * K + (1 if has_zero else 2)
    ctype = _codes_dtype(n_table)
    cpu = g.device.type == "cpu"
    if g.dtype == torch.float64 and g.numel() and kind != "binary" and not (cpu and kind == "ternary"):
        # The squares of float64 row sums over/underflow beyond 2^+-400 (brelax.sets._unit rescales those rows
        # for the reference); float32 rows never need it, and the CPU ternary kernel checks its row maxima.
        top = g.abs().amax(dim=1)
        if bool(((top > 2.0**400) | ((top < 2.0**-400) & (top > 0))).any().item()):
            return None
    rows = kernels.kernel(levels, "torch_values")
    if kind == "binary":
        got = rows(g, levels[0])
        if got is None:
            return None
        values, scales = got
        return values, scales, _lazy(g, lambda: torch.ge(g, 0).to(torch.int8))
    if kind == "ternary":
        got = rows(g, levels[1])
        if got is None:
            return None
        values, scales, thr = got
        gg = g if g.dtype in (torch.float32, torch.float64) else g.float()

        def codes():
            t = thr.to(gg.dtype)[:, None]  # > 0, or inf
            c = torch.ge(gg, t).to(torch.int8)
            c += 1
            c -= torch.le(gg, -t).to(torch.int8)
            return c

        return values, scales, _lazy(g, codes)
    if not cpu:
        return None
    src = g if g.dtype in (torch.float32, torch.float64) else g.float()
    codes_np, scales_np = fast.signed_codes(src.contiguous().numpy(), levels)
    codes = torch.from_numpy(codes_np)
    scales = torch.from_numpy(scales_np)
    table = torch.tensor(
        [-v for v in reversed(levels) if v > 0] + ([0.0] if has_zero else []) + [v for v in levels if v > 0],
        dtype=torch.float64,
    )
    lut = (scales[:, None] * table[None, :]).to(g.dtype)
    values = torch.gather(lut, 1, codes.to(torch.int64))
    return values, scales, codes.to(ctype)
