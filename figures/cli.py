"""``brelax figures``: regenerate every figure (PNG + PDF + data) into one directory.

Each figure is its own module (see :data:`figures.FIGURES`); this command runs
them in order, in-process (the digits runs are trained once for figures 8
and 9), and prints how long each took. ``--quick`` writes the same files with
fewer steps and seeds. ``--readme`` also writes the README copies of the key
figures (PNG, <= 200 KB each) into ``figures/readme/`` (or the given folder).
Without ``--metrics`` the CIFAR figure plots a synthetic example log, and says so.
"""

from __future__ import annotations

import importlib
import os
import time

from . import FIGURES

#: The figures the README shows (committed under figures/readme/).
README_FIGURES = (
    "objective",
    "aoc",
    "rate",
    "lemma_b",
    "recovery",
    "projection_error",
    "weight_histograms",
    "digits_mlp",
    "flip_excess",
)
README_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "readme")


def add_arguments(parser) -> None:
    parser.add_argument(
        "--out", default=os.path.join("brelax-out", "figures"), help="output directory (default: brelax-out/figures)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer steps and seeds, same files (< 30 s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every figure (default 0)")
    parser.add_argument(
        "--only", default=None, metavar="NAME[,NAME]", help="comma-separated subset of: " + ", ".join(FIGURES)
    )
    parser.add_argument(
        "--metrics",
        default=None,
        metavar="RUN/metrics.jsonl",
        help="training log for cifar_curves (default: a synthetic example)",
    )
    parser.add_argument(
        "--readme",
        nargs="?",
        const=README_DIR,
        default=None,
        metavar="DIR",
        help=f"also write the README PNGs of {', '.join(README_FIGURES)} (default dir figures/readme)",
    )
    parser.add_argument("--jobs", type=int, default=None, help="worker processes for the recovery diagram")


def selected(only) -> list:
    """The figure names to run; ValueError on an unknown one."""
    if only is None:
        return list(FIGURES)
    names = [n.strip() for n in str(only).split(",") if n.strip()]
    bad = [n for n in names if n not in FIGURES]
    if bad or not names:
        raise ValueError(f"--only: unknown figure(s) {bad or only!r}; choose from {', '.join(FIGURES)}")
    return names


def run(
    out: str, quick: bool = False, seed: int = 0, only=None, metrics=None, readme=None, jobs=None, log=print
) -> dict:
    """Make the figures; returns ``{name: {"seconds": s, "files": [...]}}``."""
    from .style import readme_copies, single_thread_blas

    names = selected(only)
    os.makedirs(out, exist_ok=True)
    extra = {"cifar_curves": {"metrics": metrics}, "recovery": {"jobs": jobs}}
    report = {}
    with single_thread_blas(), readme_copies(readme, README_FIGURES) if readme else _nothing():
        for name in names:
            module = importlib.import_module(f"figures.{name}")
            t0, c0 = time.perf_counter(), time.process_time()
            files = module.make(out, quick=quick, seed=seed, **extra.get(name, {}))
            report[name] = {
                "seconds": time.perf_counter() - t0,
                "cpu_seconds": time.process_time() - c0,
                "files": files,
            }
            log(
                f"{name:18s} {report[name]['seconds']:6.1f} s (cpu {report[name]['cpu_seconds']:5.1f} s)  "
                + ", ".join(os.path.basename(f) for f in files)
            )
    return report


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def main(args) -> int:
    from brelax.commands import _args

    try:
        names = selected(args.only)
    except ValueError as e:
        print(f"brelax figures: {e}")
        return 2
    # Bad flags, a bad --metrics and an unwritable --out fail now, before any figure is made
    # (brelax.cli prints them on one line, exit 2).
    _args.int_at_least(args.seed, "--seed", 0)
    _args.int_at_least(args.jobs, "--jobs", 1)
    if args.metrics is not None:
        from .cifar_curves import read_metrics

        _args.input_file(args.metrics, "--metrics")
        try:
            read_metrics(args.metrics)
        except (ValueError, UnicodeDecodeError) as e:
            raise _args.UsageError(f"--metrics {e}") from None
    _args.output_dir(args.out)
    if args.readme:
        _args.output_dir(args.readme, "--readme")
    t0 = time.perf_counter()
    report = run(args.out, args.quick, args.seed, ",".join(names), args.metrics, args.readme, args.jobs)
    total = time.perf_counter() - t0
    n_files = sum(len(r["files"]) for r in report.values())
    print(f"{len(report)} figures, {n_files} files in {args.out} ({total:.1f} s{', quick' if args.quick else ''})")
    return 0
