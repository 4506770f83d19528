"""``brelax project``: project an array onto a set exactly and compare with the heuristics.

For the exact projection and every heuristic that applies to the set it
prints the distance ``d = ||w - P(w)||``, the relative error ``d/||w||``, the
relative squared error ``d^2/||w||^2`` and the wall time, then the level
counts of the exact projection. The weights come from ``--input`` (a ``.npy``
file, loaded without pickle) or are drawn from a seeded distribution.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ._args import UsageError, int_at_least

DISTS = ("gaussian", "laplace", "student")
DTYPES = ("float16", "float32", "float64")
MAX_ROWS = 512  # rows of a generated 2-D weight (output channels)
MAX_LEVEL_LINES = 31


class InputError(UsageError):
    """A bad --input file or option; reported as a message with exit code 2."""


def add_arguments(p):
    p.add_argument(
        "--set",
        dest="qset",
        default="ternary",
        help="binary, ternary, uniform:3, levels:1,3, ... (append @SCALE for a fixed scale)",
    )
    p.add_argument("--n", type=int, default=1_000_000, help="entries to generate (ignored with --input)")
    p.add_argument(
        "--axis", type=int, default=None, help="one scale per index along this axis; a generated weight is then 2-D"
    )
    p.add_argument("--group-size", type=int, default=None, help="one scale per run of this many consecutive entries")
    p.add_argument("--input", default=None, help="a .npy file holding a float array (no pickle)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated weights")
    p.add_argument(
        "--dist",
        choices=DISTS,
        default="gaussian",
        help="distribution of the generated weights (student: t with 3 degrees of freedom)",
    )
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="dtype of the generated weights")


def rows_for(n: int) -> int:
    """Rows of the generated 2-D weight: the largest divisor of n up to min(512, sqrt(n))."""
    limit = max(1, min(MAX_ROWS, math.isqrt(n)))
    return next(r for r in range(limit, 0, -1) if n % r == 0)


def generate(n: int, dist: str, seed: int, dtype: str, two_d: bool) -> np.ndarray:
    if isinstance(n, bool) or n < 1:
        raise InputError(f"--n must be a positive integer, got {n}")
    rng = np.random.default_rng(seed)
    if dist == "gaussian":
        w = rng.standard_normal(n)
    elif dist == "laplace":
        w = rng.laplace(size=n)
    else:
        w = rng.standard_t(3, size=n)
    w = w.astype(dtype)
    return w.reshape(rows_for(n), -1) if two_d else w


def load_input(path: str) -> np.ndarray:
    """Load a float array from a .npy file, refusing pickles; InputError otherwise."""
    try:
        w = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"--input {path!r}: no such file") from None
    except (OSError, ValueError, EOFError) as e:
        if "pickle" in str(e):  # numpy would advise loading it unsafely; brelax never unpickles an input
            raise InputError(
                f"--input {path!r}: not a readable .npy array: not in the .npy format, or it holds pickled "
                "Python objects, which are never loaded"
            ) from None
        raise InputError(f"--input {path!r}: not a readable .npy array ({' '.join(str(e).split())})") from None
    if not isinstance(w, np.ndarray):
        w.close()
        raise InputError(f"--input {path!r}: is an .npz archive; give a single .npy array")
    if not np.issubdtype(w.dtype, np.floating):
        raise InputError(f"--input {path!r}: dtype is {w.dtype}; brelax projects float16/32/64 arrays")
    return w


def methods(Q, heuristics):
    """``(label, function(w, axis, group_size), same_set)`` for every applicable heuristic."""
    out = []
    if Q.scale is not None:
        return out
    if Q.levels == (0.0, 1.0):
        out.append(("twn", heuristics.twn, True))
        out.append(("ternary_divide_by_n", heuristics.ternary_divide_by_n, True))
    out.append(("lloyd", lambda w, axis, group_size: heuristics.lloyd(w, Q, axis, group_size), True))
    if Q.levels[0] > 0:
        out.append(
            (
                "greedy_residual (2 terms)*",
                lambda w, axis, group_size: heuristics.greedy_residual(w, 2, axis, group_size),
                False,
            )
        )
    return out


def algorithm(Q) -> str:
    from array_api_compat import numpy as xnp

    from .. import fast, projections

    if Q.scale is not None:
        return "nearest level"
    kernel = fast.fast_kernel(xnp, Q.levels) or projections.exact_kernel(Q.levels)
    return {
        projections.single_level: "closed form",
        projections.ternary_sort: "sort",
        fast.ternary_hist: "histogram-pruned sort",
    }.get(kernel, "pruned breakpoint sweep")


def _distance(w64: np.ndarray, z) -> float:
    d = w64 - np.asarray(z, dtype=np.float64)
    return math.sqrt(float(np.sum(d * d)))


def compare(w, Q, axis, group_size):
    """Rows ``(label, distance, seconds, same_set)`` and the exact QuantizedTensor."""
    from .. import heuristics

    w64 = np.asarray(w, dtype=np.float64)
    t0 = time.perf_counter()
    qt = Q.quantize(w, axis=axis, group_size=group_size)
    p = qt.dequantize()
    seconds = time.perf_counter() - t0  # the projection alone, not the distance evaluation below
    rows = [(f"exact ({algorithm(Q)})", _distance(w64, p), seconds, True)]
    for label, fn, same in methods(Q, heuristics):
        t0 = time.perf_counter()
        z = fn(w, axis, group_size)
        seconds = time.perf_counter() - t0
        rows.append((label, _distance(w64, z), seconds, same))
    return rows, qt


def granularity(axis, group_size, qt) -> str:
    if axis is not None:
        return f"one scale per index along axis {axis} ({qt.scales.shape[0]} scales)"
    if group_size is not None:
        return f"one scale per group of {group_size} ({qt.scales.shape[0]} groups)"
    return "one scale per tensor"


def print_report(args, Q, w, source, rows, qt):
    norm = math.sqrt(float(np.sum(np.asarray(w, dtype=np.float64) ** 2)))
    print(f"brelax project: w of shape {tuple(w.shape)} {w.dtype} ({source}) onto {Q.name}")
    print(f"granularity: {granularity(args.axis, args.group_size, qt)}; ||w|| = {norm:.6g}")
    print()
    print(f"{'method':<28}{'distance':>14}{'d/||w||':>12}{'d^2/||w||^2':>14}{'time [s]':>11}")
    for label, d, t, _ in rows:
        rel = d / norm if norm > 0 else 0.0
        print(f"{label:<28}{d:>14.6g}{rel:>12.6f}{rel * rel:>14.6f}{t:>11.3f}")
    print()
    if Q.scale is not None:
        print(f"fixed scale {Q.scale:g}: the projection is the elementwise nearest level; no heuristic applies.")
    if any(not same for *_, same in rows):
        print("* onto a different set: sum of 2 binary terms a1*sign(r1) + a2*sign(r2), i.e. 4 levels")
        print(f"  +-a1 +- a2 with free a1, a2, so its error is not comparable with the projection onto {Q.name}.")
    if len(rows) > 1:
        print("The heuristics are baselines, none is exact; lloyd starts from a = max|w|/l_K (a local optimum).")
    print_levels(qt)


def print_levels(qt):
    s = np.asarray(qt.scales, dtype=np.float64)
    if s.shape[0] == 1:
        scales = f"scale {s[0]:.6g}"
    else:
        scales = f"{s.shape[0]} scales: min {s.min():.6g}, median {np.median(s):.6g}, max {s.max():.6g}"
    counts = qt.level_counts()
    total = sum(counts.values())
    shown = [(lev, c) for lev, c in counts.items() if c > 0 or len(counts) <= MAX_LEVEL_LINES]
    print(f"level counts of the exact projection ({scales}):")
    for lev, c in shown[:MAX_LEVEL_LINES]:
        print(f"  {lev:>8g}  {c:>12,d}  {100.0 * c / total:6.2f}%")
    if len(shown) > MAX_LEVEL_LINES:
        print(f"  ... and {len(shown) - MAX_LEVEL_LINES} more occupied levels")


def check_granularity_flags(w, axis, group_size) -> None:
    """``--axis`` and ``--group-size`` against the array, named as the flags (the API names them axis, group_size).

    Raises
    ------
    InputError
        Both given, ``--axis`` out of range, or ``--group-size`` not a positive divisor of the size.
    """
    if axis is not None and group_size is not None:
        raise InputError("give at most one of --axis and --group-size, not both")
    if axis is not None and not -w.ndim <= axis < w.ndim:
        raise InputError(f"--axis {axis} is out of range for an array with {w.ndim} dimension(s)")
    if group_size is not None:
        int_at_least(group_size, "--group-size", 1)
        if w.size % group_size:
            raise InputError(f"--group-size {group_size} does not divide the array size {w.size}")


def main(args) -> int:
    """Project and print the report; bad input raises :class:`InputError` (brelax.cli: one line, exit 2)."""
    import brelax

    from . import _args

    _args.seed(args.seed)
    Q = brelax.get_set(args.qset)
    if args.input is not None:
        w = load_input(args.input)
        source = f"from {args.input}"
    else:
        # float64 draws, then the dtype's copy: refused now with --n named, not as a MemoryError later.
        if isinstance(args.n, int) and args.n >= 1:  # a bad --n is refused by generate(), naming it
            _args.fits_in_memory(float(args.n) * (8 + np.dtype(args.dtype).itemsize), "--n", args.n)
        w = generate(args.n, args.dist, args.seed, args.dtype, two_d=args.axis is not None)
        source = f"{args.dist}, seed {args.seed}"
    check_granularity_flags(w, args.axis, args.group_size)
    rows, qt = compare(w, Q, args.axis, args.group_size)
    print_report(args, Q, w, source, rows, qt)
    return 0
