"""``brelax verify``: check every result of ``theory/`` along real trajectories and write the reports.

``brelax verify`` runs every check module on the embedded default problems
(:mod:`proofs_checks.suite`); ``brelax verify PATH [PATH ...]`` checks saved runs
instead (a NumPy trajectory ``.npz`` from ``brelax run --out`` or a ``brelax train``
run directory, :func:`proofs_checks.run_file.verify_run`); ``brelax verify
--mutants`` runs seeded defects and reports which ones the checks catch
(:mod:`proofs_checks.mutants`).

stdout gets the per-result counts, the coverage of every trajectory and the
disclaimer; the per-row table only with ``--verbose``. ``verify-report.md`` and
``verify-report.json`` (with the top-level ``"coverage"`` list) go into ``--out``.
Exit status 0 when no result is ``violated`` (``assumption-not-met`` does not
fail the run), 1 otherwise (with ``--mutants``: 1 when a defect is missed or a
correct-code control has a violated row, a false alarm),
2 on bad arguments.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time

from . import coverage

MODULES = (
    "check_projection",
    "check_orthogonality",
    "check_prox",
    "check_moreau",
    "check_prox_distance",
    "check_lemma_a",
    "check_lemma_b",
    "check_aoc",
    "check_fact_c",
    "check_monotonicity",
    "check_flip_descent",
    "check_batch_descent",
    "check_heavy_ball",
    "check_prox_step",
    "check_rates",
    "check_sgd",
    "check_epoch_bound",
    "check_theorem1",
    "check_theorem2",
    "check_corollary3",
)
#: Modules whose evidence is runs of the optimizer (the others need no run).
NEEDS_RUNS = set(MODULES[4:])


def add_arguments(p):
    p.add_argument("--out", default="brelax-out", help="directory for verify-report.md/.json (default ./brelax-out/)")
    p.add_argument("--quick", action="store_true", help="fewer problems and steps (about 15 s)")
    p.add_argument(
        "--only",
        default=None,
        metavar="NAME",
        help="only these results (comma-separated names or prefixes, e.g. lemma_b,theorem1)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every problem, run and test input (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true", help="also print the per-row table (always in the .md/.json)")
    p.add_argument(
        "--mutants",
        action="store_true",
        help="run seeded defects and report each as caught or missed (exit 0 only if all are caught)",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="saved runs to verify (trajectory .npz or training run directory); default: embedded problems",
    )


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
    if not enabled or not sys.stderr.isatty():  # a bar redrawn into a log file or a pipe is noise
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
    from brelax.commands import _args

    from . import report
    from .suite import Suite

    # Bad flags and an unwritable --out fail now, not after every check has run (brelax.cli prints them).
    _args.seed(args.seed)
    if getattr(args, "mutants", False) and getattr(args, "paths", None):
        raise _args.UsageError(
            f"--mutants runs seeded defects on the embedded problems and takes no PATH (got {' '.join(args.paths)})"
        )
    _args.output_dir(args.out)
    if getattr(args, "mutants", False):
        return _main_mutants(args)
    if getattr(args, "paths", None):
        return _main_paths(args)
    modules = load_modules()
    try:
        selection = select(modules, args.only)
    except ValueError as e:
        raise _args.UsageError(f"--only: {e}") from None
    t0 = time.perf_counter()
    with _one_blas_thread():
        suite = Suite(quick=args.quick, seed=args.seed)
        results = verify(suite, selection, progress=not args.no_progress)
    elapsed = time.perf_counter() - t0
    cov = coverage.coverage(results, suite.made())
    summary = report.make_summary(
        results, seed=args.seed, quick=bool(args.quick), only=args.only, elapsed_s=round(elapsed, 2)
    )
    return _finish(results, summary, cov, args)


def _finish(results, summary, cov, args) -> int:
    """Print the summary (the row table with --verbose), write the reports; the exit status."""
    from . import report

    if getattr(args, "verbose", False):
        print(report.table(results))
        print()
    md, js = report.write_reports(results, summary, args.out, coverage=cov)
    print(report.stdout_summary(results, summary, cov))
    print(f"Reports: {md}, {js}")
    return 0 if summary["ok"] else 1


def _main_paths(args) -> int:
    """``brelax verify PATH [PATH ...]``: every result whose inputs the saved runs provide."""
    from . import report
    from .run_file import verify_paths

    wanted = _only_trajectory_results(args.only)  # before any file is read
    t0 = time.perf_counter()
    with _one_blas_thread():  # an unreadable PATH raises InputError: brelax.cli prints it, exit 2
        results, runs = verify_paths(args.paths, seed=args.seed)
    if wanted is not None:
        results = [r for r in results if r.name in wanted]
    elapsed = time.perf_counter() - t0
    cov = coverage.coverage(results, runs)
    summary = report.make_summary(results, seed=args.seed, paths=list(args.paths), elapsed_s=round(elapsed, 2))
    return _finish(results, summary, cov, args)


def _only_trajectory_results(only):
    """The trajectory results ``--only`` names (names or prefixes), or None for all of them.

    Raises
    ------
    UsageError
        A name that matches no trajectory result (the ones a saved run can be checked for).
    """
    from brelax.commands import _args
    from theory import TRAJECTORY_RESULTS

    if not only:
        return None
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    names = {n for n in TRAJECTORY_RESULTS for w in wanted if n == w or n.startswith(w)}
    missing = [w for w in wanted if not any(n == w or n.startswith(w) for n in TRAJECTORY_RESULTS)]
    if missing:
        raise _args.UsageError(
            f"--only {','.join(missing)}: no such result for a saved run; valid: {', '.join(TRAJECTORY_RESULTS)}"
        )
    return names


def _main_mutants(args) -> int:
    """``brelax verify --mutants``: each seeded defect must make some result "violated", and the
    correct-code controls (:data:`proofs_checks.mutants.CONTROLS`) none; exit 0 only when both hold."""
    from . import mutants

    t0 = time.perf_counter()
    with _one_blas_thread():
        rows = mutants.run_all(seed=args.seed, quick=bool(args.quick))
        controls = mutants.run_controls(seed=args.seed)
    elapsed = time.perf_counter() - t0
    print(mutants.table(rows))
    print()
    print(mutants.control_table(controls))
    alarms = mutants.false_alarms(controls)
    path = mutants.write_report(rows, args.out, controls=controls, elapsed_s=round(elapsed, 2))
    missed = [r["name"] for r in rows if not r["caught"]]
    print(
        f"\n{len(rows) - len(missed)} of {len(rows)} defects caught ({elapsed:.1f} s)"
        + (f"; MISSED: {', '.join(missed)}" if missed else "")
        + f"\nfalse alarms: {alarms}"
        + (f" (on {', '.join(r['name'] for r in controls if r['false_alarms'])})" if alarms else "")
        + f"\nReport: {path}"
    )
    return 0 if not missed and alarms == 0 else 1


if __name__ == "__main__":  # pragma: no cover
    import argparse

    ap = argparse.ArgumentParser(prog="brelax verify")
    add_arguments(ap)
    sys.exit(main(ap.parse_args()))
