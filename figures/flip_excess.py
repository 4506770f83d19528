r"""Figure 11: the cumulative flip excess against its whole-run a-priori bound **[R]**, and coverage per run.

THEORY.md, Theorem II.4 (this project's result): on every step of a lazy method,
compare the actual step with the step the run would take if the quantization
pattern of ``y_t`` did not change (``x^s_{t+1}``, the recorded ``f_stable``). The
*flip excess* ``E_t = f(x_{t+1}) - f(x^s_{t+1})`` is zero on pattern-stable steps with
mu fixed, and ``E_t <= Ebar_t``, an a-priori bound from the flips, the scales and
``||grad f||`` (:func:`theory.descent_terms`). Summed over the whole run -- every
phase, no window chosen -- the total decrease is bounded by ``f_0 - f_* + sum_t (K_t +
Ebar_t)``.

(a) ``sum_{s<t} E_s`` (measured, solid) and ``sum_{s<t} Ebar_s`` (a priori, dashed) for
BinaryRelax (continuation, Phase II in the last third) and BinaryConnect on planted
least squares (symlog: a flip can also lower f, so E_t may be negative). ProxQuant is
not lazy: it has no pattern-stable comparison, and its every-step result is the
prox-step descent (Theorem II.6), which has no flip term; its flips are marked.
(b) Coverage per run: the fraction of steps on which some trajectory result of
``brelax verify`` holds with a finite bound (:func:`proofs_checks.verify_run`, with
constants estimated on a burn-in window, and :mod:`proofs_checks.coverage`).

Same instance and start as figures 1, 2 and 4. Data: ``flip_excess.json``.
"""

from __future__ import annotations

import numpy as np

from proofs_checks import coverage as cov
from proofs_checks import verify_run
from theory import descent_terms
from theory.context import Context

from . import _lsq
from .style import figure_maker, method_style, new_figure, script_main, symlog_y

NAME = "flip_excess"
RUNS = ("binaryrelax", "binaryconnect", "proxquant")
COVERAGE_RUNS = ("gd", "binaryconnect", "pgd", "proxquant", "binaryrelax")


def compute(quick: bool = False, seed: int = 0) -> dict:
    problem = _lsq.make_problem(seed)
    y0 = _lsq.start_point(problem, seed)
    data = {"seed": seed, "quick": quick, "problem": dict(_lsq.PROBLEM), "L": problem.L, "runs": {}, "coverage": []}
    for method in COVERAGE_RUNS:
        params = _lsq.run_params(problem, method, quick)
        traj = _lsq.run(problem, y0, params)
        entry = {"problem": {}, "optimize": params, "flips": np.asarray(traj.flips, dtype=float).tolist()}
        if method in RUNS:
            tm = descent_terms(Context(traj), problem.L)
            E, Eb = np.asarray(tm["E"], dtype=float), np.asarray(tm["Ebar"], dtype=float)
            lazy = bool(np.isfinite(E).any())
            entry.update(
                lazy=lazy,
                E=E.tolist(),
                Ebar=Eb.tolist(),
                cum_E=np.cumsum(np.nan_to_num(E)).tolist() if lazy else None,
                cum_Ebar=np.cumsum(Eb).tolist() if lazy else None,
                steps_over_bound=int(np.sum(Eb * (1 + 1e-9) + 1e-12 < E)) if lazy else None,
            )
            data["runs"][method] = entry
        results = verify_run(traj, key=method)
        [c] = cov.coverage(
            results, [{"key": method, "problem": "lsq", "method": method, "steps": len(traj.step_norm2)}]
        )
        data["coverage"].append(
            {
                "method": method,
                "steps": c["steps"],
                "guarantee_steps": c["guarantee_steps"],
                "certified_steps": c["certified_steps"],
                "fraction": c["guarantee_steps"] / c["checked_steps"] if c["checked_steps"] else 0.0,
                "by": c["by"],
                "violated": [r.name for r in results if r.status == "violated"],
            }
        )
    data["phase2_start"] = data["runs"]["binaryrelax"]["optimize"]["phase2_start"]
    return data


def plot(data: dict):
    fig, (ax, ax_c) = new_figure(2, 1, figsize=(6.4, 6.2), height_ratios=(2.2, 1))
    for method, run in data["runs"].items():
        st = method_style(method)
        t = np.arange(1, len(run["flips"]) + 1)
        flips = np.asarray(run["flips"]) > 0
        if not run["lazy"]:
            ax.plot(
                t[flips],
                np.zeros(int(flips.sum())),
                "|",
                ms=8,
                color=st.get("color"),
                label=f"{st['label']}: not lazy, no E_t (Theorem II.6 has no flip term); {int(flips.sum())} flip steps",
            )
            continue
        cE, cB = np.asarray(run["cum_E"]), np.asarray(run["cum_Ebar"])
        ax.plot(t, cE, color=st.get("color"), label=f"{st['label']}: measured sum E (total {cE[-1]:.3g})")
        ax.plot(
            t,
            cB,
            color=st.get("color"),
            ls="--",
            lw=1.1,
            label=f"{st['label']}: a-priori sum Ebar (total {cB[-1]:.3g})",
        )
    symlog_y(ax, 1e-2, every=1)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.axvline(data["phase2_start"], color="k", ls=":", lw=1)
    ax.set_xlabel("step t (dotted: BinaryRelax Phase II)")
    ax.set_ylabel("cumulative flip excess (symlog)")
    ax.legend(loc="center right", fontsize=6.8)
    ax.set_title("(a) sum of E_t = f(x_{t+1}) - f(x^s_{t+1}) against the a-priori bound, whole run", fontsize=9)
    names = [method_style(c["method"])["label"] for c in data["coverage"]]
    frac = [c["fraction"] for c in data["coverage"]]
    colors = [method_style(c["method"]).get("color", "#7f7f7f") for c in data["coverage"]]
    ax_c.barh(names, frac, color=colors)
    for i, c in enumerate(data["coverage"]):
        ax_c.text(
            min(c["fraction"], 1.0) - 0.01,
            i,
            f"{c['guarantee_steps']}/{c['steps']}",
            va="center",
            ha="right",
            fontsize=7.5,
            color="w",
        )
    ax_c.axvline(0.95, color="k", ls="--", lw=1)
    ax_c.set_xlim(0, 1.0)
    ax_c.set_xlabel("fraction of steps with a descent guarantee (dashed: goal 0.95)")
    ax_c.set_title("(b) guarantee coverage per run (brelax verify PATH on each trajectory)", fontsize=9)
    p = data["problem"]
    fig.suptitle(
        f"Flip cost, this project's Theorem II.4 [R]: least squares m={p['m']}, n={p['n']}, lr=1/L", fontsize=10
    )
    return fig


make = figure_maker(compute, plot, NAME)


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
