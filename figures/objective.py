"""Figure 1: the objective against the step for the five methods on planted least squares.

Left: f(x_t), the point each method evaluates the gradient at (float for GD,
relaxed for BinaryRelax and ProxQuant, quantized for BC and PGD). Right:
f(P(y_t)), the quantized point each method would output at step t (f(P(x_t))
for the non-lazy ones). Both as ``f - f_lower`` on a log axis, where
``f_lower`` is the unconstrained least-squares minimum; the dotted line is the
planted ``x_star``; the vertical line marks BinaryRelax's switch to Phase II.

Data: ``objective.json`` with ``params`` (to replay each run with
:func:`figures._lsq.rerun`) and per-method ``f``, ``f_quant``, ``mu``.

Run: ``python -m figures.objective --out DIR [--quick] [--seed S]``.
"""

from __future__ import annotations

import numpy as np

from . import _lsq
from .style import figure_maker, legend_below, method_style, new_figure, script_main

NAME = "objective"
METHODS = ("gd", "binaryconnect", "pgd", "proxquant", "binaryrelax")
FLOOR = 1e-12  # log axis floor for f - f_lower (which is >= 0 up to round-off)


def compute(quick: bool = False, seed: int = 0) -> dict:
    problem = _lsq.make_problem(seed)
    y0 = _lsq.start_point(problem, seed)
    data = {
        "seed": seed,
        "quick": quick,
        "problem": dict(_lsq.PROBLEM),
        "L": problem.L,
        "f_lower": problem.f_lower,
        "f_star": problem.f(problem.x_star),
        "runs": {},
    }
    for method in METHODS:
        params = _lsq.run_params(problem, method, quick)
        traj = _lsq.run(problem, y0, params)
        data["runs"][method] = {
            "problem": {},
            "optimize": params,
            "recovered": traj.meta["recovered"],
            **_lsq.series(traj, ("f", "f_quant", "mu")),
        }
    data["phase2_start"] = data["runs"]["binaryrelax"]["optimize"]["phase2_start"]
    return data


def plot(data: dict):
    fig, (ax_x, ax_q) = new_figure(1, 2, figsize=(7.6, 4.0), sharey=True)
    fl = data["f_lower"]
    for method, run in data["runs"].items():
        st = method_style(method)
        t = np.arange(len(run["f"]))
        ax_x.plot(t, np.maximum(np.asarray(run["f"]) - fl, FLOOR), **st)
        lab = st["label"] + (" (recovers x*)" if run["recovered"] else "")
        ax_q.plot(t, np.maximum(np.asarray(run["f_quant"]) - fl, FLOOR), color=st.get("color"), label=lab)
    for ax in (ax_x, ax_q):
        ax.set_yscale("log")
        ax.axvline(data["phase2_start"], color="k", ls=":", lw=1)
        ax.axhline(max(data["f_star"] - fl, FLOOR), color="k", ls="--", lw=0.8)
        ax.set_xlabel("step t")
    ax_x.text(
        data["phase2_start"],
        0.97,
        " Phase II\n (BinaryRelax)",
        transform=ax_x.get_xaxis_transform(),
        va="top",
        fontsize=7.5,
    )
    ax_q.text(
        0.98,
        max(data["f_star"] - fl, FLOOR) * 2.0,
        "planted x* (values <= 1e-12 drawn at 1e-12)",
        fontsize=7,
        ha="right",
        transform=ax_q.get_yaxis_transform(),
    )
    ax_x.set_ylabel(r"$f - f_{\rm lower}$")
    ax_x.set_title(r"(a) at the evaluation point: $f(x_t)$")
    ax_q.set_title(r"(b) at the quantized point: $f(P(y_t))$")
    legend_below(fig, ax_q, ncol=5, fontsize=7.5)
    p = data["problem"]
    fig.suptitle(
        f"Planted least squares, {p['qset']}, m={p['m']}, n={p['n']}, noise={p['noise']:g}, "
        f"lr=1/L (seed {data['seed']})",
        fontsize=10,
    )
    return fig


make = figure_maker(compute, plot, NAME)


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
