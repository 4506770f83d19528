"""``brelax run PROBLEM``: run one method on one problem, print a summary, save the trajectory."""

from __future__ import annotations

import math
import os

import numpy as np

from ..errors import Diverged
from ..steps import get_method

PROBLEMS = ("lsq", "diabetes", "digits")


def add_arguments(p):
    p.add_argument("problem", choices=PROBLEMS, help="planted least squares, diabetes regression or the digits MLP")
    from ..steps import METHODS, methods_help

    p.add_argument("--method", default="binaryrelax", choices=tuple(METHODS), help=methods_help())
    p.add_argument("--set", dest="qset", default="binary", help="binary, ternary, uniform:3, levels:1,3, ...")
    p.add_argument("--m", type=int, default=100, help="lsq: rows of A")
    p.add_argument("--n", type=int, default=50, help="lsq: unknowns")
    p.add_argument("--noise", type=float, default=0.0, help="lsq: noise level")
    p.add_argument("--model", default="mlp", choices=("mlp", "logistic"), help="digits: the model")
    p.add_argument("--hidden", type=int, default=32, help="digits mlp: hidden units")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lr", type=float, default=None, help="step size (default 1/L when L is known, else 0.5)")
    p.add_argument("--lam0", type=float, default=1.0)
    p.add_argument("--rho", type=float, default=_optimize_default("rho"), help="lam is multiplied by rho every step")
    p.add_argument(
        "--phase2-start", type=int, default=None, help="step of the switch to Phase II (default 80%% of steps)"
    )
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--granularity", default="block", choices=("block", "tensor", "channel"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="brelax-out/trajectory.npz", help="where to write the trajectory (.npz)")


def _optimize_default(name: str):
    """The default of :func:`brelax.optimize`'s argument ``name``: the CLI states no second copy of it."""
    import inspect

    from ..optimize import optimize

    return inspect.signature(optimize).parameters[name].default


def build_problem(args):
    from .. import problems

    if args.problem == "lsq":
        return problems.least_squares(args.m, args.n, args.qset, noise=args.noise, seed=args.seed)
    if args.problem == "diabetes":
        return problems.diabetes_least_squares(seed=args.seed)
    if args.model == "logistic":
        return problems.digits_logistic(seed=args.seed)
    return problems.digits_mlp(hidden=(args.hidden,), seed=args.seed)


def main(args) -> int:
    import brelax

    from . import _args

    # Bad flags and an unwritable --out fail before the run (brelax.cli prints them on one line, exit 2).
    for flag, value, least in (
        ("--steps", args.steps, 1),
        ("--m", args.m, 1),
        ("--n", args.n, 1),
        ("--hidden", args.hidden, 1),
        ("--batch-size", args.batch_size, 1),
        ("--phase2-start", args.phase2_start, 0),
    ):
        _args.int_at_least(value, flag, least)
    _args.seed(args.seed)
    _args.float_in(args.lr, "--lr", 0.0, lo_open=True)
    # Sizes that cannot fit fail now with the flag named, not as a MemoryError deep in NumPy: the float64
    # matrix A (m x n) of lsq, and the trajectory's arrays (one float64 per field per step).
    from ..trajectory import POINT_FIELDS, STEP_FIELDS

    if args.problem == "lsq":
        big = "--m" if args.m >= args.n else "--n"
        _args.fits_in_memory(8.0 * args.m * args.n, big, args.m if big == "--m" else args.n)
    _args.fits_in_memory(8.0 * args.steps * (len(POINT_FIELDS) + len(STEP_FIELDS)), "--steps", args.steps)
    if os.path.isdir(args.out):
        raise _args.UsageError(f"--out {args.out!r} is a directory; give a file name (.npz)")
    _args.output_dir(os.path.dirname(os.path.abspath(args.out)), "the folder of --out")
    try:
        prob = build_problem(args)
        lr = args.lr if args.lr is not None else (1.0 / prob.L if prob.L else 0.5)
        p2 = args.phase2_start if args.phase2_start is not None else int(0.8 * args.steps)
        with np.errstate(over="ignore", invalid="ignore"):  # a divergence is reported below, not as a warning
            traj = brelax.optimize(
                prob,
                method=args.method,
                qset=args.qset,
                steps=args.steps,
                lr=lr,
                lam0=args.lam0,
                rho=args.rho,
                phase2_start=p2,
                batch_size=args.batch_size,
                granularity=args.granularity,
                seed=args.seed,
                progress=args.steps >= 2000,
            )
    except brelax.NonFiniteError as e:  # bad flags (ValueError, TypeError) go to brelax.cli: one line, exit 2
        _save(e.trajectory, args.out)
        raise Diverged(f"error: {e}; the trajectory up to there is in {args.out}") from None
    s = traj.summary()
    aoc = traj.aoc[np.isfinite(traj.aoc)]
    print(f"problem      {prob.name} (dim {prob.dim}, L = {prob.L if prob.L is not None else 'unknown'})")
    print(f"method       {args.method} on {traj.meta['qset']}, {traj.steps} steps, lr {lr:.4g}, Phase II from {p2}")
    print(
        f"f(x_T)       {s['f_final']:.6g}    f(P(y_T)) {s['f_quant_final']:.6g}"
        + (f"    f_lower {prob.f_lower:.4g}" if prob.f_lower is not None else "")
    )
    if s["recovered"] is not None:
        print(f"recovered    {'yes' if s['recovered'] else 'no'} (the planted x_star's pattern)")
    if hasattr(prob, "test_accuracy"):
        line = f"test acc     {prob.test_accuracy(traj.x):.4f} (quantized weights)"
        if not get_method(args.method).quantizes:  # the float weights are the trained ones too
            line += f", {prob.test_accuracy(traj.y):.4f} (float weights)"
        print(line)
    print(f"flips        {s['flips_total']} in all, {int(np.count_nonzero(traj.flips))} steps with a flip")
    print(
        f"AOC          delta_t > 0 on {int((aoc > 0).sum())} of {aoc.size} steps, "
        f"max {aoc.max() if aoc.size else math.nan:.3g}"
    )
    nd = traj.step_norm2[np.isfinite(traj.step_norm2)]
    lo, hi = (nd.min(), nd.max()) if nd.size else (math.nan, math.nan)
    print(f"steps        ||D_t||^2 min {lo:.3g}, max {hi:.3g}; d_Q(y_T) {traj.dist_y[-1]:.3g}")
    _save(traj, args.out)
    print(f"trajectory   {args.out}")
    print(f"check it     brelax verify {args.out}")
    return 0


def _save(traj, out):
    d = os.path.dirname(os.path.abspath(out))
    os.makedirs(d, exist_ok=True)
    traj.save(out)
