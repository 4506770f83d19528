r"""Figure 6: the scalar prox map ``u -> (u + lam P(u)) / (1 + lam)`` for several lam.

The prox of ``(lam/2) d_Q^2`` (THEORY.md section 5) is ``(u + lam P(u))/(1 + lam)``
for any closed Q, convex or not. On one coordinate it is a shrinkage towards the
nearest level, with a jump where ``P`` jumps: lam = 0 is the identity, and
lam -> inf is ``P`` itself (exact quantization).

**The scale is fixed at a = 1** (``brelax.binary(scale=1)``,
``brelax.ternary(scale=1)``): for a 1-D vector the free-scale projection is
trivial (``P(u) = |u| sign(u) = u``, every scalar is a point of the cone), so
the free-scale map would be the identity for every lam. In an n-vector with a
free scale the same picture holds per coordinate with ``a`` the fitted scale.

Data: ``prox_map.csv`` (set, lam, u, P(u), prox), computed by :func:`brelax.prox`.
"""

from __future__ import annotations

import numpy as np

import brelax

from .style import CYCLE, figure_maker, legend_below, new_figure, script_main

NAME = "prox_map"
LAMS = (0.0, 0.25, 1.0, 4.0, 16.0)
SETS = {"binary": brelax.binary(scale=1.0), "ternary": brelax.ternary(scale=1.0)}
HEADER = ("set", "lam", "u", "P_u", "prox")


def grid(quick: bool) -> np.ndarray:
    # an odd count keeps u = 0 on the grid; the same range in quick mode
    return np.linspace(-2.5, 2.5, 401 if quick else 601)


def compute(quick: bool = False, seed: int = 0) -> list:
    """Rows ``(set, lam, u, P(u), prox_lam(u))`` (``seed`` is unused: the map is deterministic)."""
    u = grid(quick)
    rows = []
    for name, Q in SETS.items():
        p = Q.project(u)
        for lam in LAMS:
            v = brelax.prox(u, Q, lam)
            rows += [(name, lam, float(a), float(b), float(c)) for a, b, c in zip(u, p, v, strict=True)]
    return rows


def plot(rows):
    fig, axes = new_figure(1, 2, figsize=(7.6, 3.9), sharey=True)
    for ax, name in zip(axes, SETS, strict=True):
        for color, lam in zip(CYCLE, LAMS, strict=False):
            sel = [r for r in rows if r[0] == name and r[1] == lam]
            u = np.array([r[2] for r in sel])
            p = np.array([r[3] for r in sel])
            v = np.array([r[4] for r in sel])
            ax.plot(*_break_at_jumps(u, v, p), color=color, label=f"lam = {lam:g} (mu = {lam / (1 + lam):.2f})")
        ax.plot(*_break_at_jumps(u, p, p), color="k", ls="--", lw=1.0, label="lam -> inf: P(u)")
        ax.set_xlabel("u")
        levels = ", ".join(f"{v:g}" for v in SETS[name].table)
        ax.set_title(f"{name}, fixed scale a = 1: levels {{{levels}}}")
        ax.set_aspect("equal", adjustable="datalim")
    axes[0].set_ylabel(r"prox$_\lambda(u) = (u + \lambda P(u))/(1+\lambda)$")
    legend_below(fig, axes[0], ncol=3)
    fig.suptitle(
        "The 1-D prox map of (lam/2) d_Q^2, per coordinate with a FIXED scale (free scale on 1-D is trivial: P(u) = u)",
        fontsize=9.5,
    )
    return fig


def _break_at_jumps(u, v, p):
    """Insert NaN between grid points where P jumps, so the plot does not draw vertical segments."""
    jumps = np.nonzero(p[1:] != p[:-1])[0] + 1
    return np.insert(u, jumps, np.nan), np.insert(v, jumps, np.nan)


make = figure_maker(compute, plot, NAME, HEADER)


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
