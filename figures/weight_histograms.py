r"""Figure 8: histograms of the weights x_t during BinaryRelax (binary) on the digits MLP.

``x_t = (y_t + lam_t P(y_t)) / (1 + lam_t) = (1 - mu_t) y_t + mu_t P(y_t)``: as
lam grows, x_t is pulled onto its quantization P(y_t) = ±a (one scale a per
output row here), and in Phase II (mu = 1) it *is* P(y_t). Each panel is the
histogram of every quantized weight divided by its row's scale, ``x_t / a_t``,
at one recorded step (filled), with the anchor ``y_t / a_t`` for comparison
(outline). The mass moves from a unimodal bump to two spikes at ±1.

Setup: :mod:`figures._digits` (the "BR binary" run, recorded with
``record_every``). Data: ``weight_histograms.json`` (the steps, lam_t, mu_t,
bin edges and the counts of x_t/a and y_t/a per panel).
"""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import NullLocator

from . import _digits
from .style import figure_maker, new_figure, script_main

NAME = "weight_histograms"
EDGES = np.linspace(-2.5, 2.5, 81)
PANELS = 6


def normalized(prob, vec, p):
    """Every quantized weight of ``vec`` divided by its row's scale ``a`` (binary: ``a = |P(y)|`` of the row)."""
    parts = []
    for b in prob.layout:
        if not b.quantize:
            continue
        W = b.view(vec)
        a = np.abs(b.view(p)).max(axis=1, keepdims=True)  # binary rows: every |entry| of P(y) equals a
        parts.append((W / np.where(a > 0, a, 1.0)).ravel())
    return np.concatenate(parts)


def snapshot_indices(n_recorded: int, panels: int = PANELS) -> list:
    """``panels`` recorded iterates spread over the run, first and last included."""
    return sorted({round(v) for v in np.linspace(0, n_recorded - 1, panels)})


def compute(quick: bool = False, seed: int = 0) -> dict:
    prob = _digits.problem(seed)
    traj = _digits.run("binaryrelax", "binary", quick, seed)
    its = traj.iterates
    data = {
        "seed": seed,
        "quick": quick,
        "optimize": _digits.params("binaryrelax", "binary", quick),
        "edges": EDGES.tolist(),
        "panels": [],
    }
    lam0, rho = data["optimize"]["lam0"], data["optimize"]["rho"]
    for i in snapshot_indices(len(its["t"])):
        t = int(its["t"][i])
        mu = float(traj.mu[t])
        xs = normalized(prob, its["x"][i], its["p"][i])
        ys = normalized(prob, its["y"][i], its["p"][i])
        data["panels"].append(
            {
                "t": t,
                "mu": mu,
                "lam": (lam0 * rho**t) if mu < 1 else None,
                "x_counts": np.histogram(np.clip(xs, EDGES[0], EDGES[-1]), EDGES)[0].tolist(),
                "y_counts": np.histogram(np.clip(ys, EDGES[0], EDGES[-1]), EDGES)[0].tolist(),
                "x_mass_near_pm1": float(np.mean(np.abs(np.abs(xs) - 1.0) < 0.05)),
            }
        )
    data["phase2_start"] = data["optimize"]["phase2_start"]
    return data


def plot(data: dict):
    n = len(data["panels"])
    cols = 3
    rows = (n + cols - 1) // cols
    fig, axes = new_figure(rows, cols, figsize=(7.6, 2.3 * rows + 0.6), sharex=True, sharey=True)
    axes = np.atleast_1d(axes).ravel()
    edges = np.asarray(data["edges"])
    width = np.diff(edges)
    for ax, pan in zip(axes, data["panels"], strict=True):
        xc, yc = np.asarray(pan["x_counts"], float), np.asarray(pan["y_counts"], float)
        total = xc.sum()
        ax.stairs(xc / total / width, edges, fill=True, color="#d62728", alpha=0.8, label=r"$x_t / a_t$")
        ax.stairs(yc / total / width, edges, color="k", lw=0.9, label=r"$y_t / a_t$")
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks on 6 shared axes cost seconds to draw
        phase = "Phase II, mu = 1" if pan["lam"] is None else f"lam = {pan['lam']:.3g}, mu = {pan['mu']:.3f}"
        ax.set_title(f"t = {pan['t']}: {phase}", fontsize=8.5)
        ax.text(
            0.03,
            0.95,
            f"{100 * pan['x_mass_near_pm1']:.0f}% within\n0.05 of ±1",
            transform=ax.transAxes,
            va="top",
            fontsize=7,
        )
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[-cols:]:
        ax.set_xlabel("weight / its row's scale a")
    for ax in axes[::cols]:
        ax.set_ylabel("density (log)")
    axes[0].legend(loc="upper right", fontsize=7)
    fig.suptitle(
        "BinaryRelax (binary) on the digits MLP: the relaxed weights x_t collapse onto ±a as lam grows", fontsize=9.5
    )
    return fig


make = figure_maker(compute, plot, NAME)


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
