"""``brelax verify``: check every result of ``theory/`` along real trajectories and write the reports.

Runs every check module on the embedded default problems (:mod:`proofs_checks.suite`),
prints a table (name, statement, problem, method, measured, bound, ratio, status),
and writes ``verify-report.md`` and ``verify-report.json`` into ``--out``.
Exit status 0 when no result is ``violated`` (``assumption-not-met`` does not
fail the run), 1 otherwise, 2 on a bad ``--only``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time

MODULES = ("check_projection", "check_orthogonality", "check_prox", "check_moreau", "check_prox_distance",
           "check_lemma_a", "check_lemma_b", "check_aoc", "check_fact_c", "check_theorem1", "check_theorem2",
           "check_corollary3")
#: Modules whose evidence is runs of the optimizer (the others need no run).
NEEDS_RUNS = set(MODULES[4:])


def add_arguments(p):
    p.add_argument("--out", default="brelax-out", help="directory for verify-report.md/.json (default ./brelax-out/)")
    p.add_argument("--quick", action="store_true", help="fewer problems and steps (about 15 s)")
    p.add_argument("--only", default=None, metavar="NAME",
                   help="only these results (comma-separated names or prefixes, e.g. lemma_b,theorem1)")
    p.add_argument("--seed", type=int, default=0, help="seed of every problem, run and test input (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_modules():
    return [importlib.import_module(f"proofs_checks.{m}") for m in MODULES]


def select(modules, only):
    """``[(module, wanted names)]`` for ``--only`` (None: everything); unknown names raise ValueError."""
    if not only:
        return [(m, set(m.RESULTS)) for m in modules]
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    every = [n for m in modules for n in m.RESULTS]
    out, matched = [], set()
    for m in modules:
        names = {n for n in m.RESULTS for w in wanted if n == w or n.startswith(w)}
        matched |= {w for w in wanted for n in names if n == w or n.startswith(w)}
        if names:
            out.append((m, names))
    missing = [w for w in wanted if w not in matched]
    if missing:
        raise ValueError(f"unknown result(s) {', '.join(missing)}; valid: {', '.join(every)}")
    return out


def _bar(total, enabled, desc):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the bar is cosmetic
        return None
    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)


def _one_blas_thread():
    """BLAS threads fight each other on a small shared machine (20x slower); one is also deterministic."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def verify(suite, selection, progress=True, projectors=None):
    """Run the selected checks; returns the list of Results."""
    runs = suite.all_runs() if any(m.__name__.rsplit(".", 1)[-1] in NEEDS_RUNS for m, _ in selection) else []
    bar = _bar(len(runs) + len(selection), progress, "verify")
    for p, s in runs:
        if bar is not None:
            bar.set_postfix_str(f"{p.key} {s.label}"[:40])
        suite.run(p, s)
        if bar is not None:
            bar.update(1)
    results = []
    for m, names in selection:
        if bar is not None:
            bar.set_postfix_str(m.__name__.rsplit(".", 1)[-1])
        results += [r for r in m.run(suite, projectors=projectors) if r.name in names]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return results


def main(args) -> int:
    from . import report
    from .suite import Suite

    modules = load_modules()
    try:
        selection = select(modules, args.only)
    except ValueError as e:
        print(f"brelax verify: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    with _one_blas_thread():
        suite = Suite(quick=args.quick, seed=args.seed)
        results = verify(suite, selection, progress=not args.no_progress)
    elapsed = time.perf_counter() - t0
    summary = report.make_summary(results, seed=args.seed, quick=bool(args.quick), only=args.only,
                                  elapsed_s=round(elapsed, 2))
    print(report.table(results))
    print()
    print(report.summary_table(results))
    md, js = report.write_reports(results, summary, args.out)
    c = summary["counts"]
    print(f"\n{c['holds']} hold, {c['violated']} violated, {c['assumption-not-met']} assumption-not-met "
          f"({summary['distinct_results']} distinct results, {elapsed:.1f} s). Reports: {md}, {js}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":  # pragma: no cover
    import argparse

    ap = argparse.ArgumentParser(prog="brelax verify")
    add_arguments(ap)
    sys.exit(main(ap.parse_args()))
