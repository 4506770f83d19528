"""``brelax bench [--quick] [--out DIR] [--only SECTION,...]``: run the benchmarks, write latest.json/.md.

The full suite takes under three minutes on two cores; ``--quick`` (smaller
sizes, three repeats) under thirty seconds, for the tests and for development.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from . import report

# In run order. (Kept here, not in bench/__init__.py: an editable install made before that file
# existed maps ``bench`` as a namespace package, whose __init__ is never run.)
SECTIONS = (
    "ternary_per_tensor",
    "ternary_per_channel",
    "level_sets",
    "memory",
    "level_bits",
    "per_channel_vgg11",
    "torch_vs_numpy",
    "optimizer_overhead",
    "model_steps",
    "convergence",
    "steplog_overhead",
)
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


@dataclass(frozen=True)
class Sizes:
    """Problem sizes and repeat counts of one run."""

    ternary_n: tuple = (10**6, 10**7)
    channel_shape: tuple = (512, 4608)
    level_n: int = 10**6
    level_ref_n: int = 10**5
    memory_n: int = 10**6
    backend_n: int = 2**20
    backend_level_n: int = 2**15
    train_batch: int = 128
    lsq_n: int = 1000
    lsq_steps: int = 150
    repeats: int = 7
    slow_repeats: int = 5
    bits: tuple = tuple(range(2, 17))
    bits_n: tuple = (10**5, 10**4, 300)
    vgg_batch: int = 64
    model_repeats: int = 5


FULL = Sizes()
QUICK = Sizes(
    ternary_n=(10**5, 10**6),
    channel_shape=(128, 1152),
    level_n=10**5,
    level_ref_n=10**4,
    memory_n=10**5,
    backend_n=2**16,
    backend_level_n=2**12,
    train_batch=8,
    lsq_n=100,
    lsq_steps=30,
    repeats=3,
    slow_repeats=3,
    bits=(2, 3, 8, 12),
    bits_n=(10**4, 2000, 300),
    vgg_batch=2,
    model_repeats=1,
)


def _runner(name):
    from . import backends, channels, convergence, kernels, models, steplog, training

    return {
        "ternary_per_tensor": kernels.ternary_per_tensor,
        "ternary_per_channel": kernels.ternary_per_channel,
        "level_sets": kernels.level_sets,
        "memory": kernels.memory,
        "level_bits": kernels.level_bits,
        "per_channel_vgg11": channels.per_channel,
        "model_steps": models.model_steps,
        "torch_vs_numpy": backends.torch_vs_numpy,
        "optimizer_overhead": training.optimizer_overhead,
        "convergence": convergence.convergence,
        "steplog_overhead": steplog.steplog_overhead,
    }[name]


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes and 3 repeats (< 30 s)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument(
        "--only", default=None, metavar="SECTION[,SECTION]", help="comma-separated subset of: " + ", ".join(SECTIONS)
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every input (default 0)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads while timing (default 1: see bench.timing)"
    )


def selected(only) -> list:
    """The sections to run; ValueError naming any unknown one."""
    if only is None:
        return list(SECTIONS)
    parts = only if isinstance(only, (list, tuple)) else str(only).split(",")
    names = [str(s).strip() for s in parts if str(s).strip()]
    bad = [s for s in names if s not in SECTIONS]
    if bad or not names:
        raise ValueError(f"--only: unknown section(s) {bad or only!r}; choose from {', '.join(SECTIONS)}")
    return names


def run(quick: bool = False, only=None, seed: int = 0, log=print, threads: int = 1) -> dict:
    """Run the selected sections with ``threads`` torch threads; returns the results of :func:`bench.report.write`."""
    from . import timing

    sizes = QUICK if quick else FULL
    names = selected(only)
    timing.THREADS = int(threads)
    meta = {
        "schema": report.SCHEMA,
        "quick": bool(quick),
        "seed": int(seed),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"NumPy {np.__version__}",
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "threads": int(threads),
        "sizes": asdict(sizes),
        "seconds": {},
    }
    sections = {}
    for name in names:
        t0 = time.perf_counter()
        sections[name] = _runner(name)(sizes, np.random.default_rng([seed, SECTIONS.index(name)]))
        meta["seconds"][name] = round(time.perf_counter() - t0, 2)
        log(f"bench: {name} done in {meta['seconds'][name]:.1f} s ({sections[name]['status']})")
    if hasattr(os, "getloadavg"):
        meta["load_average_end"] = list(os.getloadavg())
    return {"meta": meta, "sections": sections}


def merge_into_previous(results: dict, path: str) -> dict:
    """``--only``: the new sections replace theirs in the previous ``latest.json``; the others are kept.

    The rerun is recorded in ``meta["reruns"][section]`` (its own meta), so a reader sees which
    sections come from which run. Without a readable previous file the new results stand alone.
    """
    try:
        with open(path) as f:
            old = json.load(f)
        sections, meta = dict(old["sections"]), dict(old["meta"])
    except (OSError, ValueError, KeyError, TypeError):
        return results
    reruns = dict(meta.get("reruns") or {})
    for name, sec in results["sections"].items():
        sections[name] = sec
        reruns[name] = results["meta"]
    meta["reruns"] = reruns
    return {"meta": meta, "sections": sections}


def main(args) -> int:
    from brelax.commands import _args

    try:
        names = selected(args.only)
    except ValueError as err:
        print(f"brelax bench: {err}", file=sys.stderr)
        return 2
    # A bad --seed or an unwritable --out fails now, before minutes of timing (brelax.cli prints it).
    _args.int_at_least(args.seed, "--seed", 0)
    _args.int_at_least(args.threads, "--threads", 1)
    _args.output_dir(args.out)
    results = run(args.quick, names, args.seed, log=lambda m: print(m, file=sys.stderr), threads=args.threads)
    if args.only is not None:
        results = merge_into_previous(results, os.path.join(args.out, "latest.json"))
    js, md = report.write(results, args.out)
    print(report.markdown(results))
    print(f"\nwrote {js} and {md}", file=sys.stderr)
    return 0
