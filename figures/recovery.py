r"""Figure 5: a recovery phase diagram on planted binary least squares.

For each ratio m/n and noise level, and each of ``seeds`` instances
``b = A x_star + noise e`` (x_star in {±1}^n, A Gaussian with N(0, 1/m)
entries; :func:`brelax.problems.least_squares`), every method starts from the
same point and runs ``steps`` steps with lr = 1/L. A run *recovers* when its
output has exactly the signs of x_star (``traj.meta["recovered"]``; the free
scale is not compared). The figure shows the fraction of recovering instances
with a binomial standard error bar; the data also give, per method and noise,
the smallest m/n at which at least half the instances are recovered.

With noise, grad f vanishes at no point of Q, so a lazy method with a
constant step (BC, and BinaryRelax in Phase II, which is BC) never settles:
y keeps moving and the entries whose gradient points at zero keep flipping
sign. Its last iterate is then wrong with a probability that does not vanish
as m/n grows, while ProxQuant's non-lazy prox keeps improving with m/n.
Projected GD from a random start stops at a fixed point of ``P(x - lr grad)``
after a few steps and recovers nothing at this step size.

Methods: BinaryRelax (lam0 = 0.1, rho = 1.03, Phase II for the last 30%),
BinaryConnect, projected GD and ProxQuant (the same lam schedule, no Phase II).

Data: ``recovery.csv``, one row per (method, noise, m/n): seeds, recovered,
probability, and the parameters of the runs.

Run: ``python -m figures.recovery --out DIR [--quick] [--seed S] [--jobs J]``;
instance k of a point uses seed ``S * 1000 + k``.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import brelax
from brelax.problems import least_squares

from .style import legend_below, method_style, new_figure, save_csv, save_figure, script_main

NAME = "recovery"
METHODS = ("binaryrelax", "binaryconnect", "pgd", "proxquant")
N = 40
HEADER = ("method", "noise", "m_over_n", "m", "n", "steps", "seeds", "recovered", "probability", "seed_base")


def grid(quick: bool) -> dict:
    if quick:
        return {"ratios": (0.5, 1.0, 2.0), "noises": (0.0, 0.1), "seeds": 2, "steps": 40}
    return {"ratios": (0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.5, 2.0), "noises": (0.0, 0.1), "seeds": 20, "steps": 100}


def run_params(method: str, lr: float, steps: int) -> dict:
    return dict(
        method=method,
        qset="binary",
        steps=steps,
        lr=lr,
        lam0=0.1,
        rho=1.03,
        phase2_start=int(0.7 * steps) if method == "binaryrelax" else None,
    )


def recovered_one(m: int, n: int, noise: float, seed: int, steps: int) -> dict:
    """``{method: recovered}`` for one instance; every method starts from the same ``y0``."""
    problem = least_squares(m, n, "binary", noise, seed=seed)
    y0 = problem.init(np.random.default_rng(seed + 1))
    out = {}
    for method in METHODS:
        traj = brelax.optimize(problem, y0=y0, **run_params(method, 1.0 / problem.L, steps))
        out[method] = bool(traj.meta["recovered"])
    return out


def _task(args):
    return recovered_one(*args)


def _init_worker():
    # OpenBLAS re-creates its thread pool after fork; with 2 workers on 2 cores, extra BLAS threads
    # only spin. One thread per worker process (kept for the worker's lifetime).
    global _LIMITS
    from .style import single_thread_blas

    _LIMITS = single_thread_blas()
    _LIMITS.__enter__()


_LIMITS = None


def compute(quick: bool = False, seed: int = 0, jobs: int | None = None) -> list:
    g = grid(quick)
    tasks, keys = [], []
    for noise in g["noises"]:
        for ratio in g["ratios"]:
            m = round(ratio * N)
            for k in range(g["seeds"]):
                tasks.append((m, N, float(noise), seed * 1000 + k, g["steps"]))
                keys.append((noise, ratio))
    jobs = _jobs(jobs, len(tasks))
    if jobs > 1:
        with ProcessPoolExecutor(jobs, initializer=_init_worker) as ex:
            results = list(ex.map(_task, tasks, chunksize=max(1, len(tasks) // (8 * jobs))))
    else:
        results = [_task(t) for t in tasks]
    counts = {}
    for key, res in zip(keys, results, strict=True):
        for method, ok in res.items():
            counts[(method,) + key] = counts.get((method,) + key, 0) + int(ok)
    rows = []
    for method in METHODS:
        for noise in g["noises"]:
            for ratio in g["ratios"]:
                c = counts[(method, noise, ratio)]
                rows.append(
                    (
                        method,
                        float(noise),
                        float(ratio),
                        round(ratio * N),
                        N,
                        g["steps"],
                        g["seeds"],
                        c,
                        c / g["seeds"],
                        seed * 1000,
                    )
                )
    return rows


def _jobs(jobs, n_tasks) -> int:
    """Worker count: as asked, or by default up to 2 when there is enough work to pay for the start-up."""
    if jobs is None:
        return max(1, min(2, os.cpu_count() or 1, n_tasks // 40))
    if isinstance(jobs, bool) or int(jobs) != jobs or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    return min(int(jobs), n_tasks)


def threshold(rows, method: str, noise: float):
    """The smallest m/n with recovery probability >= 1/2 (None if never reached)."""
    pts = sorted((r[2], r[8]) for r in rows if r[0] == method and r[1] == noise)
    return next((x for x, p in pts if p >= 0.5), None)


def plot(rows):
    noises = sorted({r[1] for r in rows})
    fig, axes = new_figure(1, len(noises), figsize=(7.6, 3.9), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, noise in zip(axes, noises, strict=True):
        for method in METHODS:
            pts = sorted((r[2], r[8], r[6]) for r in rows if r[0] == method and r[1] == noise)
            x, p, k = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
            st = method_style(method)
            err = np.sqrt(p * (1 - p) / k)
            ax.errorbar(x, p, yerr=err, marker="o", ms=4, capsize=2, **st)
        ax.set_xscale("log")
        ax.set_xticks(sorted({r[2] for r in rows}))
        ax.xaxis.set_major_formatter(_plain())
        ax.xaxis.set_minor_formatter(_plain(blank=True))
        ax.set_ylim(-0.04, 1.04)
        ax.set_xlabel("m / n (measurements per unknown)")
        seeds = rows[0][6]
        ax.set_title(f"noise = {noise:g} ({seeds} instances per point)")
    axes[0].set_ylabel("P(exact recovery of sign(x*))")
    legend_below(fig, axes[0], ncol=4)
    fig.suptitle(f"Recovery of a planted binary x* (n = {N}, lr = 1/L, {rows[0][5]} steps)", fontsize=10)
    return fig


def _plain(blank: bool = False):
    import matplotlib.ticker as mt

    return mt.NullFormatter() if blank else mt.FuncFormatter(lambda v, _p: f"{v:g}")


def make(out: str, quick: bool = False, seed: int = 0, jobs: int | None = None) -> list:
    rows = compute(quick, seed, jobs)
    return save_figure(plot(rows), out, NAME) + [save_csv(out, NAME, HEADER, rows)]


def _extra(parser):
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: up to 2)")


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv, extra=_extra)


if __name__ == "__main__":
    raise SystemExit(main())
