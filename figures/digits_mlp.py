"""Figure 9: the digits MLP: test accuracy against step for float, BC and BR (binary, ternary), and flips.

(a) Test accuracy (450 held-out digits) at every recorded iterate, evaluated
at the quantized point P(y_t) for BC and BR and at x_t for the float run.
The final float accuracy of P(x_T) (quantizing the float net once at the end)
is printed in the legend for comparison. (b) The number of quantized weights
whose level changed at each step (for GD: whose sign changed), log scale,
as a moving average over 5 steps (the raw counts are in the data file; gaps:
no flip in the window).
Vertical lines: the step-size drops (dotted) and BinaryRelax's Phase II (dashed).

Setup: :mod:`figures._digits` (full batch, lr 0.5 with MultiStep drops).

Data: ``digits_mlp.json``, per run: params, recorded steps, test accuracy, the
flips per step, f(x_t) and f(P(y_t)).
"""

from __future__ import annotations

import numpy as np

from . import _digits
from .style import figure_maker, new_figure, script_main

NAME = "digits_mlp"
SMOOTH = 5


def compute(quick: bool = False, seed: int = 0) -> dict:
    prob = _digits.problem(seed)
    data = {"seed": seed, "quick": quick, "problem": prob.describe(), "lr": dict(_digits.LR), "runs": {}}
    n_quant = int(sum(b.size for b in prob.layout if b.quantize))
    data["quantized_weights"] = n_quant
    for label, (method, qset) in _digits.RUNS.items():
        traj = _digits.run(method, qset, quick, seed)
        t, acc = _digits.test_accuracy_curve(traj, seed)
        entry = {
            "optimize": _digits.params(method, qset, quick),
            "t": t,
            "test_accuracy": acc,
            "flips": [int(v) for v in traj.flips],
            "f": np.asarray(traj.f).tolist(),
            "f_quant": np.asarray(traj.f_quant).tolist(),
        }
        if method == "gd":
            entry["test_accuracy_quantized_at_end"] = float(prob.test_accuracy(traj.x))
        data["runs"][label] = entry
    steps = data["runs"]["float (GD)"]["optimize"]["steps"]
    data["lr_drops"] = [int(m * steps) for m in _digits.LR["milestones"]]
    data["phase2_start"] = data["runs"]["BR binary"]["optimize"]["phase2_start"]
    return data


def plot(data: dict):
    fig, (ax_a, ax_f) = new_figure(2, 1, figsize=(6.4, 5.6), sharex=True)
    for label, run in data["runs"].items():
        color = _digits.COLORS[label]
        lab = f"{label}: {run['test_accuracy'][-1]:.3f}"
        if "test_accuracy_quantized_at_end" in run:
            lab += f" (quantized at end: {run['test_accuracy_quantized_at_end']:.3f})"
        ax_a.plot(run["t"], run["test_accuracy"], color=color, marker=".", ms=3, label=lab)
        flips = np.asarray(run["flips"], dtype=float)
        k = min(SMOOTH, len(flips))
        smooth = np.convolve(flips, np.ones(k) / k, mode="valid")
        # a step window with no flip at all has no place on a log axis: leave a gap
        ax_f.plot(np.arange(len(smooth)) + (k - 1) / 2, np.where(smooth > 0, smooth, np.nan), color=color, lw=1.0)
    for ax in (ax_a, ax_f):
        for t in data["lr_drops"]:
            ax.axvline(t, color="k", ls=":", lw=0.9)
        ax.axvline(data["phase2_start"], color="k", ls="--", lw=0.9)
    ax_a.set_ylim(max(0.0, min(min(r["test_accuracy"][len(r["t"]) // 4 :]) for r in data["runs"].values()) - 0.05), 1.0)
    ax_a.set_ylabel("test accuracy")
    ax_a.set_title("(a) test accuracy (BC/BR at P(y_t), float at x_t); final values in the legend")
    ax_a.legend(loc="lower right", fontsize=7)
    ax_f.set_yscale("log")
    ax_f.set_ylabel(f"flips per step ({SMOOTH}-step mean)")
    ax_f.set_xlabel("step t (dotted: lr x 0.2; dashed: BR Phase II)")
    ax_f.set_title(f"(b) weights changing level, of {data['quantized_weights']} quantized")
    p = data["problem"]
    fig.suptitle(f"MLP on sklearn digits (64-{p.get('hidden', ['?'])[0]}-10, relu), full batch", fontsize=10)
    return fig


make = figure_maker(compute, plot, NAME)


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
