r"""Figure 4: Lemma B's slack and the per-step descent along planted least-squares runs.

Lemma B **[R]** (THEORY.md section 7) is exact for an L-smooth f:

    f(x_{t+1}) <= f(x_t) - (1/g)(1 - gL/2)||D_t||^2 + (mu_{t+1}/g)<r_t - r_{t+1}, D_t>
                 - ((mu_{t+1} - mu_t)/g)<r_t, D_t>,

so its slack (right side minus left side, :meth:`theory.lemmas.LemmaB.slack` on the
trajectory, with the exact ``L = ||A||_2^2``) must be >= 0 at every step, up to
round-off. (a) the slack on a symlog axis. (b) the descent
``f(x_t) - f(x_{t+1})``: Theorem 1 makes it >= ``c ||D_t||^2 >= 0`` once
AOC(d) holds with ``c > 0``; the hollow markers are the steps where it is
negative, which happen only on steps that flip signs with ``mu delta_t`` above
``1 - gL/2`` (figure 2), i.e. where the theorem's assumption fails, or at
the switch to Phase II, where mu jumps to 1 (Lemma B's cross term; Theorem 1
assumes a fixed mu).

Same instance and starting point as figures 1 and 2 (m/n = 0.8, lr = 1/L).

Data: ``lemma_b.json`` (per run: params, ``lemma_b_slack``, ``descent``,
``flips``, and a summary with the minimum slack and the negative-descent steps).
"""

from __future__ import annotations

import numpy as np

from theory.lemmas import LemmaB

from . import _lsq
from .style import figure_maker, legend_below, method_style, new_figure, script_main, symlog_y

NAME = "lemma_b"
LINTHRESH = 1e-10  # symlog: |values| below this are round-off around 0
RUNS = {
    "binaryrelax": ("binaryrelax", {}),
    "binaryconnect": ("binaryconnect", {}),
    "gd": ("gd", {}),
}


def compute(quick: bool = False, seed: int = 0) -> dict:
    problem = _lsq.make_problem(seed)
    y0 = _lsq.start_point(problem, seed)
    data = {"seed": seed, "quick": quick, "problem": dict(_lsq.PROBLEM), "L": problem.L, "runs": {}}
    for label, (method, overrides) in RUNS.items():
        params = _lsq.run_params(problem, method, quick, **overrides)
        traj = _lsq.run(problem, y0, params)
        slack = LemmaB.slack(traj.f, traj.mu, traj.lr, traj.step_norm2, traj.inner, traj.cross, problem.L)
        desc, flips = traj.descent, traj.flips
        # round-off scale of one step's f values: slack below -tol would be a real violation
        tol = 1e-10 * max(1.0, float(np.max(np.abs(traj.f))))
        entry = {
            "problem": {},
            "optimize": params,
            "lemma_b_slack": slack.tolist(),
            **_lsq.series(traj, ("descent", "flips")),
        }
        neg = np.nonzero(desc < 0)[0]
        entry["summary"] = {
            "min_slack": float(np.nanmin(slack)),
            "slack_violations": int(np.sum(slack < -tol)),
            "tolerance": tol,
            "negative_descent_steps": int(neg.size),
            "negative_descent_on_flip_steps": int(np.sum(flips[neg] > 0)),
            "negative_descent_other_steps": [int(t) for t in neg if flips[t] == 0],
            "min_descent": float(np.min(desc)),
        }
        data["runs"][label] = entry
    data["phase2_start"] = data["runs"]["binaryrelax"]["optimize"]["phase2_start"]
    return data


def plot(data: dict):
    fig, (ax_s, ax_d) = new_figure(2, 1, figsize=(6.4, 5.4), sharex=True)
    for label, run in data["runs"].items():
        st = method_style(label)
        slack = np.asarray(run["lemma_b_slack"], dtype=float)
        desc = np.asarray(run["descent"], dtype=float)
        t = np.arange(len(desc))
        s = run["summary"]
        ax_s.plot(
            t,
            slack,
            color=st.get("color"),
            lw=1.0,
            label=f"{st['label']}: min {s['min_slack']:.0e}, {s['slack_violations']} violations",
        )
        ax_d.plot(
            t, desc, color=st.get("color"), lw=1.0, label=f"{st['label']}: {s['negative_descent_steps']} steps < 0"
        )
        neg = desc < 0
        ax_d.plot(t[neg], desc[neg], "o", mfc="none", ms=4, color=st.get("color"))
    ax_s.set_yscale("symlog", linthresh=LINTHRESH)
    ax_s.set_ylim(-LINTHRESH * 10, None)
    for ax in (ax_s, ax_d):
        symlog_y(ax, LINTHRESH, every=3)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.axvline(data["phase2_start"], color="k", ls=":", lw=1)
    ax_s.axhspan(-LINTHRESH * 10, 0, color="r", alpha=0.06)
    ax_s.set_ylabel("Lemma B slack (symlog)")
    ax_d.set_ylabel(r"$f(x_t) - f(x_{t+1})$ (symlog)")
    ax_d.set_xlabel("step t (dotted: BinaryRelax Phase II)")
    ax_s.set_title("(a) Lemma B slack, exact L: must be >= 0 (shaded: violation)")
    ax_d.set_title("(b) descent per step; hollow markers: ascent steps")
    ax_s.legend(loc="upper right", fontsize=7.5)
    legend_below(fig, ax_d, ncol=3, fontsize=7.5)
    p = data["problem"]
    fig.suptitle(f"Lemma B [R] along runs: least squares m={p['m']}, n={p['n']}, lr=1/L", fontsize=10)
    return fig


make = figure_maker(compute, plot, NAME)


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
