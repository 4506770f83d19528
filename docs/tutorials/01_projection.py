r"""
Projecting a tensor, and checking optimality against brute force
=================================================================

A quantization set with a free scale is :math:`Q = \{a q : a \ge 0,\ q \in \mathcal L^n\}`, for
a finite set of levels :math:`\mathcal L` (binary :math:`\{\pm 1\}`, ternary :math:`\{0, \pm 1\}`,
...). Its Euclidean projection

.. math::

    P(y) \in \operatorname{argmin}_{z \in Q} \|y - z\|

is a non-convex problem: the scale and the pattern have to be chosen together. brelax computes it
exactly (section 3 of :doc:`../theory`). This tutorial projects a small tensor, compares the result
with a brute-force search over every pattern, and then measures how far the usual heuristic, TWN's
threshold at :math:`0.7\,\mathrm{mean}|y|` :cite:`li2016ternary`, is from the optimum.
"""

# %%
# The exact projection
# --------------------
# ``Q.project(w)`` returns an array of the same shape and dtype; ``Q.quantize(w)`` returns the integer
# codes and the scale(s), which is what you would store.
import itertools

import matplotlib.pyplot as plt
import numpy as np

import brelax
from brelax import heuristics

rng = np.random.default_rng(0)
w = rng.standard_normal(8)
Q = brelax.ternary()
z = Q.project(w)
qt = Q.quantize(w)
print("w     ", np.round(w, 3))
print("P(w)  ", np.round(z, 3))
print("codes ", qt.codes, " scale", np.round(qt.scales, 4))
assert np.allclose(qt.dequantize(), z)

# %%
# Brute force
# -----------
# For a fixed pattern :math:`q \ne 0` the best scale is :math:`a = \max(0, \langle y, q\rangle)/\|q\|^2`,
# which leaves :math:`\|y\|^2 - \max(0, \langle y, q\rangle)^2/\|q\|^2`. With :math:`3^8 = 6561` ternary
# patterns of length 8 we can try them all and keep the best. This is independent of brelax's
# algorithm (which sorts :math:`|y|` and scans the :math:`n` possible supports).


def brute_force_distance2(y, levels):
    best = float(y @ y)  # the zero vector (a = 0)
    for q in itertools.product(levels, repeat=len(y)):
        q = np.asarray(q, dtype=float)
        qq = q @ q
        if qq > 0:
            best = min(best, float(y @ y - max(0.0, y @ q) ** 2 / qq))
    return best


exact = float(np.sum((w - z) ** 2))
brute = brute_force_distance2(w, (-1.0, 0.0, 1.0))
print(f"||w - P(w)||^2 = {exact:.12f}   brute force = {brute:.12f}")
assert abs(exact - brute) <= 1e-12 * max(1.0, brute)

# %%
# The same check over many draws, sets and sizes is what ``brelax verify`` reports as
# ``projection_optimality`` and what the tests run with hypothesis (``theory.brute`` is the
# enumeration they use). Here: 200 random vectors, binary and ternary.
worst = 0.0
for _ in range(200):
    y = rng.standard_normal(6)
    for qset, lv in ((brelax.binary(), (-1.0, 1.0)), (brelax.ternary(), (-1.0, 0.0, 1.0))):
        gap = float(np.sum((y - qset.project(y)) ** 2)) - brute_force_distance2(y, lv)
        worst = max(worst, gap)
print(f"largest (exact - brute force) over 400 projections: {worst:.2e}")
assert worst <= 1e-12

# %%
# How far is the heuristic?
# -------------------------
# TWN keeps the entries above :math:`0.7\,\mathrm{mean}|y|` and sets the scale to their mean magnitude.
# It is a point of :math:`Q`, so it can only be farther than the projection. On larger tensors the
# ratio of squared errors is what figure 7 of the :doc:`../gallery` shows for several distributions.
ratios = {}
for name, draw in (
    ("Gaussian", lambda n: rng.standard_normal(n)),
    ("Laplacian", lambda n: rng.laplace(size=n)),
    ("Student-t (3)", lambda n: rng.standard_t(3, size=n)),
):
    r = []
    for _ in range(20):
        y = draw(4096)
        e_exact = np.sum((y - Q.project(y)) ** 2)
        e_twn = np.sum((y - heuristics.twn(y)) ** 2)
        assert e_twn >= e_exact * (1 - 1e-12)
        r.append(e_twn / e_exact)
    ratios[name] = np.array(r)
    print(f"{name:14s} TWN / exact squared error: mean {np.mean(r):.4f}, max {np.max(r):.4f}")

fig, ax = plt.subplots(figsize=(6, 3))
ax.boxplot(list(ratios.values()), tick_labels=list(ratios))
ax.axhline(1.0, color="k", lw=0.8, ls=":")
ax.set_ylabel("TWN error / exact error")
ax.set_title("Ternary, n = 4096, 20 draws each")
fig.tight_layout()

# %%
# Per channel and per group
# -------------------------
# A weight tensor usually gets one scale per output channel (``axis=0``) or per group of entries
# (``group_size=``). The projection separates over the groups, so each one is solved exactly.
W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
Zc = Q.project(W, axis=0)
Zg = Q.project(W, group_size=27)
print("per channel: scales", np.round(Q.quantize(W, axis=0).scales.ravel(), 4))
print("dist per tensor ", float(Q.distance(W)), " per channel ", float(Q.distance(W, axis=0)))
assert Q.distance(W, axis=0) <= Q.distance(W) + 1e-6
assert np.allclose(Zc, Zg)  # a group of 27 = one output channel of a 3x3x3 filter
