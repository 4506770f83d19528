r"""Compiled loops (numba) of the exact ternary kernel: the passes of :func:`brelax.fast.ternary_threshold`, fused.

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
def sweep_sorted(s, mids, dl, dn, s0, n0):  # pragma: no cover - compiled
    # The sweep of brelax.fast_levels.sweep_rows on rows of decreasing magnitudes s: the K runs of keys
    # s / m_j merged in the order of its stable argsort (largest key first; among equal keys the lower level,
    # then the earlier entry), S and N accumulated in that order from 0 and then offset by s0 and n0 (as
    # cumsum then +=), a candidate after each run of equal keys, the first maximum kept. Returns per row the
    # key of the best state (inf: the state with every entry at l_0).
    G, n = s.shape
    K = mids.size
    thr = np.empty(G)
    ptr = np.zeros(K, dtype=np.int64)
    head = np.empty(K)  # the next key of each run (-inf: run done)
    keys = np.empty((K, n + 1))  # the row's keys, divided up front (off the merge's critical path)
    for r in range(G):
        for j in range(K):
            m = mids[j]
            for i in range(n):
                keys[j, i] = s[r, i] / m
            keys[j, n] = -np.inf
        best = s0[r] * s0[r] / n0 if n0 > 0 else 0.0
        best_key = np.inf
        cs = 0.0
        cn = 0.0
        for j in range(K):
            ptr[j] = 0
            head[j] = keys[j, 0]
        j_next = 0
        for jj in range(1, K):
            j_next = jj if head[jj] > head[j_next] else j_next
        for _t in range(n * K):
            j = j_next
            key = head[j]
            i = ptr[j]
            ptr[j] = i + 1
            head[j] = keys[j, i + 1]
            cs += s[r, i] * dl[j]
            cn += dn[j]
            j_next = 0
            for jj in range(1, K):
                j_next = jj if head[jj] > head[j_next] else j_next
            if head[j_next] == key:
                continue  # not the last of a run of equal keys
            S = cs + s0[r]
            N = cn + n0
            obj = S * S / N if N > 0 else 0.0
            if obj > best:
                best, best_key = obj, key
        thr[r] = best_key
    return thr
