r"""Compiled loops (numba) of the exact ternary kernel and the level sweep, bitwise their NumPy forms.

Optional: ``pip install brelax[fast]``. Without numba this module is never
imported and the pure NumPy passes of :mod:`brelax.fast` run; which one runs
is chosen in one place, :mod:`brelax.kernels`.

Each loop reads the **signed** values ``g`` (a ``(G, n)`` C-ordered float32 or
float64 array) and takes ``|g|`` on the fly, so no buffer of magnitudes is
written. Each computes exactly what its NumPy counterpart computes, in the
same floating-point order where the order matters, so the two backends agree
bit for bit (pinned by ``tests/test_fast_numba.py``):

* :func:`histogram` -- per row and bin, the count and the float64 sum of the
  magnitudes, bins ``(bits(max(|g|, floor)) - bits(floor)) >> sh``. The sums
  are added entry by entry in index order, per block of ``chunk`` entries of
  a long row, block sums then added in block order: the order of
  ``np.bincount`` on the blocks of :func:`brelax.fast._histogram`.
* :func:`hull` -- the magnitudes with ``lo[r] <= |g| < hi[r]``, row by row (the
  caller sorts them per row, so only the multiset matters), given how many
  there are per row (the histogram's counts).
* :func:`values` -- ``copysign(sv[r], g)`` where ``|g| >= thr[r]``, else ``+0.0``.
* :func:`edges` -- the bin edges as float64 values of their bit patterns (exact);
  :func:`bounds` -- the bounds of :func:`brelax.fast._surviving_bins` and the hull
  they leave, in one pass over the small ``(rows, bins)`` tables, with the same
  IEEE operations in the same order (the suffix sums added from the last bin
  down, as the cumsum of the reversed bins) -- in NumPy these tables cost more
  than the histogram itself on rows of a few thousand entries.
* :func:`sweep_pruned` -- the sweep of :func:`brelax.fast_levels.sweep_rows`, evaluated only at the
  keys that interval bounds cannot rule out (the same objective values and best key).

Cost: one read of ``g`` per loop, no temporaries of size n.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_OPTS = {"cache": True, "nogil": True, "boundscheck": False}


@nb.njit(**_OPTS)
def histogram(g, bits, floorbits, sh, B, chunk, mask):  # pragma: no cover - compiled
    G, n = g.shape
    cnt = np.zeros((G, B), dtype=np.int64)
    sm = np.zeros((G, B))
    loc = np.zeros(B)
    for r in range(G):
        fb = floorbits[r]
        if n >= chunk:  # blocks of `chunk` entries, their sums added in block order
            for c0 in range(0, n, chunk):
                loc[:] = 0.0
                for i in range(c0, min(n, c0 + chunk)):
                    b = bits[r, i] & mask
                    k = ((b if b > fb else fb) - fb) >> sh
                    cnt[r, k] += 1
                    loc[k] += np.float64(abs(g[r, i]))
                for k in range(B):
                    sm[r, k] += loc[k]
        else:
            for i in range(n):
                b = bits[r, i] & mask
                k = ((b if b > fb else fb) - fb) >> sh
                cnt[r, k] += 1
                sm[r, k] += np.float64(abs(g[r, i]))
    return cnt, sm


@nb.njit(**_OPTS)
def hull(g, lo, hi, per):  # pragma: no cover - compiled
    # ``per[r]``: how many entries of row r lie in [lo, hi) (the histogram's counts of the hull bins).
    # Branch-free: every magnitude is written at the next free slot, and the slot advances only on a hit
    # (a branch per entry mispredicts on a wide hull: 13 passes instead of 3, measured).
    G, n = g.shape
    total = per.sum()
    rows = np.empty(total + 1, dtype=np.int64)
    vals = np.empty(total + 1, dtype=g.dtype)
    j = 0
    for r in range(G):
        if per[r] == 0:
            continue
        lo_r, hi_r = lo[r], hi[r]
        for i in range(n):
            v = abs(g[r, i])
            vals[j] = v
            j += (v >= lo_r) & (v < hi_r)
        rows[j - per[r] : j] = r
    return rows[:total], vals[:total]


@nb.njit(**_OPTS)
def values(g, thr, sv, out):  # pragma: no cover - compiled
    G, n = g.shape
    for r in range(G):
        t, s = thr[r], sv[r]
        for i in range(n):
            x = g[r, i]
            if abs(x) >= t:
                out[r, i] = -s if x < 0 else s
            else:
                out[r, i] = 0.0
    return out


@nb.njit(**_OPTS)
def bounds(cnt, sm, edges, rowmax, tau_lo, delta):  # pragma: no cover - compiled
    # brelax.fast._surviving_bins and the hull it gives, row by row, in the same operations in the same
    # order (elementwise IEEE arithmetic; the suffix sums added from the last bin down, as the cumsum of
    # the reversed bins): returns b0, vlo, vhi, base_s, base_t and the hull's entry count per row.
    G, B = cnt.shape
    b0 = B
    for r in range(G):
        k = 0
        for b in range(B):
            k += edges[r, b + 1] < tau_lo[r]
        b0 = min(b0, k)
    W = B - b0
    vlo = np.empty(G)
    vhi = np.empty(G)
    base_s = np.empty(G)
    base_t = np.empty(G)
    per = np.zeros(G, dtype=np.int64)
    C = np.empty(W)
    A = np.empty(W)
    U = np.empty(W)
    thr = 1.0 - delta
    for r in range(G):
        C[W - 1] = 0.0
        A[W - 1] = 0.0
        cc = 0.0
        aa = 0.0
        for b in range(W - 1, 0, -1):
            cc += cnt[r, b0 + b]
            aa += sm[r, b0 + b]
            C[b - 1] = cc
            A[b - 1] = aa
        L = -np.inf
        for b in range(W):
            c = cnt[r, b0 + b]
            s = sm[r, b0 + b]
            lo = 0.0 if (b0 == 0 and b == 0) else edges[r, b0 + b]
            hi = min(edges[r, b0 + b + 1], rowmax[r])
            full = A[b] + s
            full = full * full
            full = full / max(C[b] + c, 1.0)
            L = max(L, full)
            width = hi - lo
            if width <= 0:
                k0 = c
            else:
                k0 = s - c * lo
                k0 = k0 / width
            k0 = min(k0, max(c, 1.0))
            k0 = max(k0, 1.0)
            u = A[b] + hi
            u = u * u
            u = u / (C[b] + 1.0)
            g = k0 * hi
            g = g + A[b]
            g = g * g
            g = g / (C[b] + k0)
            u = max(u, g)
            u = max(u, full)
            ok = (c > 0) and (hi >= tau_lo[r]) and (rowmax[r] > 0)
            U[b] = u if ok else -np.inf
        first, last = -1, -1
        lim = L * thr
        for b in range(W):
            if lim <= U[b]:
                if first < 0:
                    first = b
                last = b
        live = first >= 0
        blo = b0 + (first if live else 0)
        bhi = b0 + (last if live else W - 1)
        if not live:
            vlo[r] = np.inf
        elif blo > 0:
            vlo[r] = edges[r, blo]
        else:
            vlo[r] = -1.0
        vhi[r] = edges[r, min(bhi + 1, B)] if (bhi < B - 1 and live) else np.inf
        base_s[r] = A[bhi - b0]
        base_t[r] = C[bhi - b0]
        if live:
            t = 0
            for b in range(blo, bhi + 1):
                t += np.int64(cnt[r, b])
            per[r] = t
    return b0, vlo, vhi, base_s, base_t, per


@nb.njit(**_OPTS)
def edges(floorbits, sh, B, mant, bias, infbits):  # pragma: no cover - compiled
    # The float64 value of the bit patterns min(floorbits[r] + (b << sh), infbits), b = 0..B, of a float type with
    # `mant` mantissa bits and exponent bias `bias`: what NumPy's view-and-convert gives, exactly (every such value
    # is an integer times a power of two that float64 holds exactly).
    G = floorbits.size
    out = np.empty((G, B + 1))
    one = np.int64(1) << mant
    for r in range(G):
        for b in range(B + 1):
            bits = min(floorbits[r] + (np.int64(b) << sh), infbits)
            e = bits >> mant
            m = bits & (one - 1)
            if bits == infbits:
                out[r, b] = np.inf
            elif e == 0:
                out[r, b] = np.ldexp(np.float64(m), 1 - bias - mant)
            else:
                out[r, b] = np.ldexp(np.float64(one + m), int(e - bias - mant))
    return out


@nb.njit(**_OPTS)
def _count_ge(s, r, m, v):  # pragma: no cover - compiled
    # #{i : fl(s[r, i] / m) >= v} for decreasing s[r]: a binary search on the keys themselves (exact).
    lo, hi = 0, s.shape[1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if s[r, mid] / m >= v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(**_OPTS)
def _count_gt(s, r, m, v):  # pragma: no cover - compiled
    # #{i : fl(s[r, i] / m) > v} for decreasing s[r].
    lo, hi = 0, s.shape[1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if s[r, mid] / m > v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(**_OPTS)
def _state(s, r, D, mids, lv0, dl, dn, v, c):  # pragma: no cover - compiled
    # The sweep's state at v (every key >= v consumed): counts into c, and S, N by the formula of
    # brelax.fast_levels._sweep_sorted (left to right, the same operations).
    n = s.shape[1]
    S = lv0 * D[r, n]
    N = n * lv0 * lv0
    for j in range(mids.size):
        c[j] = _count_ge(s, r, mids[j], v)
        S = S + dl[j] * D[r, c[j]]
        N = N + dn[j] * c[j]
    return S, N


@nb.njit(**_OPTS)
def _bound(hi, S_hi, N_hi, lo, S_lo, N_lo):  # pragma: no cover - compiled
    # brelax.fast_levels._interval_bound for one gap (lo, hi).
    Nx = (S_lo - S_hi + (hi * N_hi - lo * N_lo) / 2) / max((hi - lo) / 2, 1e-300)
    Nx = min(max(Nx, N_hi), N_lo)
    Ux = max(min(S_hi + hi / 2 * (Nx - N_hi), S_lo - lo / 2 * (N_lo - Nx)), 0.0)
    both = max(S_hi * S_hi / N_hi, S_lo * S_lo / N_lo)
    return max(both, Ux * Ux / max(Nx, 1e-300))


@nb.njit(**_OPTS)
def sweep_pruned(s, D, mids, lv0, dl, dn, obj0, delta, stride):  # pragma: no cover - compiled
    # The best state of the sweep of brelax.fast_levels._sweep_sorted (same candidates, same objective values
    # bit for bit, same tie rule: the largest key among equal objectives), without visiting every key: the
    # objective at a grid of keys gives an attained lower bound L; a gap between two grid keys whose interval
    # bound (brelax.fast_levels._interval_bound) is below L (1 - delta) holds no better key and is skipped; the
    # others are merged and swept key by key. Returns per row the best key (inf: all entries at l_0), its
    # counts c_j (entries above l_j) and its S and N.
    G, n = s.shape
    K = mids.size
    thr = np.empty(G)
    cbest = np.zeros((G, K), dtype=np.int64)
    Sbest = np.empty(G)
    Nbest = np.empty(G)
    c = np.zeros(K, dtype=np.int64)
    ptr = np.zeros(K, dtype=np.int64)
    end = np.zeros(K, dtype=np.int64)
    m = (n + stride - 1) // stride
    grid = np.empty(K * m)
    for r in range(G):
        best, best_key = obj0[r], np.inf
        Sbest[r] = lv0 * D[r, n]
        Nbest[r] = n * lv0 * lv0
        cbest[r, :] = 0
        k = 0
        for j in range(K):
            for i in range(0, n, stride):
                grid[k] = s[r, i] / mids[j]
                k += 1
        g = np.unique(grid[:k])[::-1]  # decreasing distinct grid keys
        Sg = np.empty(g.size)
        Ng = np.empty(g.size)
        for t in range(g.size):
            S, N = _state(s, r, D, mids, lv0, dl, dn, g[t], c)
            Sg[t], Ng[t] = S, N
            f = S * S / N if N > 0 else 0.0
            if f > best or (f == best and g[t] > best_key):
                best, best_key = f, g[t]
                Sbest[r], Nbest[r] = S, N
                cbest[r, :] = c
        for t in range(g.size):
            hi = g[t]
            lo = g[t + 1] if t + 1 < g.size else 0.0
            if t + 1 < g.size:
                ub = _bound(hi, Sg[t], Ng[t], lo, Sg[t + 1], Ng[t + 1])
                if ub < best * (1.0 - delta):
                    continue
            # keys strictly inside (lo, hi) (below the smallest grid key: every key down to 0), merged
            for j in range(K):
                ptr[j] = _count_ge(s, r, mids[j], hi)
                end[j] = _count_gt(s, r, mids[j], lo) if t + 1 < g.size else n
            while True:
                j = -1
                key = -np.inf
                for jj in range(K):
                    if ptr[jj] < end[jj]:
                        kk = s[r, ptr[jj]] / mids[jj]
                        if kk > key:
                            j, key = jj, kk
                if j < 0:
                    break
                ptr[j] += 1
                nxt = -np.inf
                for jj in range(K):
                    if ptr[jj] < end[jj]:
                        nxt = max(nxt, s[r, ptr[jj]] / mids[jj])
                if nxt == key:
                    continue  # not the last of a run of equal keys
                # every key >= key consumed: ptr[j] is c_j(key); S, N by the formula of _state
                S = lv0 * D[r, n]
                N = n * lv0 * lv0
                for jj in range(K):
                    S = S + dl[jj] * D[r, ptr[jj]]
                    N = N + dn[jj] * ptr[jj]
                f = S * S / N if N > 0 else 0.0
                if f > best or (f == best and key > best_key):
                    best, best_key = f, key
                    Sbest[r], Nbest[r] = S, N
                    cbest[r, :] = ptr
        thr[r] = best_key
    return thr, cbest, Sbest, Nbest
