"""Timing and memory helpers: interleaved ratios, medians, peak allocations, result rows."""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
import tracemalloc

#: Fewest timed rounds of any ratio: the median of 5 per-round ratios survives two rounds hit by a burst.
MIN_ROUNDS = 5


def ratio(subject, baseline, repeats: int, warmup: int = 1) -> dict:
    """Median over rounds of ``t(subject) / t(baseline)``, the two timed back to back in each round.

    The one timing loop of the bench (:func:`interleaved`) with two names.
    Returns the median ratio, its ``min`` and ``max`` over the rounds, both
    median times (seconds, for information only) and the number of rounds.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    fns = {"baseline": baseline, "subject": subject}
    times, stats = interleaved(lambda k: fns[k](), ("baseline", "subject"), repeats, warmup)
    out = stats("subject", "baseline")
    out["subject_s"] = statistics.median(times["subject"])
    out["baseline_s"] = statistics.median(times["baseline"])
    return out


def peak_bytes(fn) -> int:
    """Peak bytes allocated (and traced) while ``fn()`` runs, above what was allocated before.

    NumPy reports its array buffers to tracemalloc, so this counts every
    temporary array; torch tensors are not traced.
    """
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(0, peak - base)


def row(
    label: str,
    value,
    unit: str,
    baseline: str | None = None,
    target: float | None = None,
    higher_is_better: bool = False,
    **extra,
) -> dict:
    """One result: ``value`` in ``unit`` (``"x"``: a ratio to ``baseline``), with an optional target.

    ``meets`` is whether ``value <= target`` (``>=`` if ``higher_is_better``),
    None without a target.
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{label}: value must be finite, got {value}")
    meets = None
    if target is not None:
        meets = bool(value >= target) if higher_is_better else bool(value <= target)
    out = {"label": label, "value": value, "unit": unit, "baseline": baseline, "target": target, "meets": meets}
    out.update(extra)
    return out


def timed_row(label: str, subject, baseline, baseline_label: str, repeats: int, target=None, **extra) -> dict:
    """A ``row`` holding the interleaved time ratio of ``subject`` to ``baseline`` over ``repeats`` rounds."""
    r = ratio(subject, baseline, repeats)
    return ratio_row(label, r, baseline_label, target, subject_s=r["subject_s"], baseline_s=r["baseline_s"], **extra)


def ratio_row(label: str, stats: dict, baseline_label: str, target=None, **extra) -> dict:
    """A ``row`` from the ``stats`` of :func:`interleaved`: the median ratio, with its min and max over rounds."""
    return row(
        label,
        stats["ratio"],
        "x",
        baseline_label,
        target,
        min=stats["min"],
        max=stats["max"],
        repeats=stats["repeats"],
        **extra,
    )


def section(title: str, rows: list, notes=None) -> dict:
    return {"title": title, "status": "ok", "rows": rows, "notes": list(notes or [])}


def unavailable(title: str, err: BaseException) -> dict:
    """The result of a section whose dependencies are missing."""
    return {"title": title, "status": f"not available: {type(err).__name__}: {err}", "rows": [], "notes": []}


#: torch intra-op threads of a bench run (``brelax bench --threads N``; set by :func:`bench.cli.run`).
THREADS = 1


@contextlib.contextmanager
def torch_threads(n: int | None = None):
    """Run torch with ``n`` intra-op threads (default :data:`THREADS`), then restore the previous count.

    On a shared two-core machine with other work running, two OpenMP threads
    make every small torch op wait tens of milliseconds for a busy core, which
    would swamp what the benchmark measures; one thread (the default) avoids that.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(THREADS if n is None else n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def interleaved(step, names, repeats: int, warmup: int = 1):
    """Time ``step(name)`` for every name, round-robin, ``repeats`` rounds after ``warmup`` warm-up rounds.

    Returns ``(times, stats)``: the seconds of each name per round, and
    ``stats(a, b)``, a dict with the median over rounds of ``t(a) / t(b)``
    (``"ratio"``), its ``"min"`` and ``"max"`` and the number of rounds
    (``"repeats"``). Interleaving puts each pair of the same round under the
    same machine load, which is what makes the ratio stable; the min and max
    show how much load there was.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times: dict = {k: [] for k in names}
    for rep in range(repeats + warmup):
        gc.collect()
        for k in names:
            t0 = time.perf_counter()
            step(k)
            if rep >= warmup:
                times[k].append(time.perf_counter() - t0)

    def stats(a, b) -> dict:
        rs = [s / max(t, 1e-9) for s, t in zip(times[a], times[b], strict=True)]
        return {"ratio": statistics.median(rs), "min": min(rs), "max": max(rs), "repeats": len(rs)}

    return times, stats
