"""Timing and memory helpers: interleaved ratios, medians, peak allocations, result rows."""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
import tracemalloc


def _once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ratio(subject, baseline, repeats: int, warmup: int = 1) -> dict:
    """Median over ``repeats`` of ``t(subject) / t(baseline)``, timed back to back in each repeat.

    Interleaving puts both timings of a repeat in the same load conditions,
    and the median of the per-repeat ratios discards the repeats a burst of
    other work hit harder. Returns the ratio and both median times (seconds,
    for information only).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        baseline()
        subject()
    ts, tb, rs = [], [], []
    for _ in range(repeats):
        gc.collect()
        b = _once(baseline)
        s = _once(subject)
        tb.append(b)
        ts.append(s)
        rs.append(s / max(b, 1e-9))
    return {
        "ratio": statistics.median(rs),
        "subject_s": statistics.median(ts),
        "baseline_s": statistics.median(tb),
        "repeats": repeats,
    }


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
    """A ``row`` holding the interleaved time ratio of ``subject`` to ``baseline``."""
    r = ratio(subject, baseline, repeats)
    return row(
        label,
        r["ratio"],
        "x",
        baseline_label,
        target,
        subject_s=r["subject_s"],
        baseline_s=r["baseline_s"],
        repeats=r["repeats"],
        **extra,
    )


def section(title: str, rows: list, notes=None) -> dict:
    return {"title": title, "status": "ok", "rows": rows, "notes": list(notes or [])}


def unavailable(title: str, err: BaseException) -> dict:
    """The result of a section whose dependencies are missing."""
    return {"title": title, "status": f"not available: {type(err).__name__}: {err}", "rows": [], "notes": []}


@contextlib.contextmanager
def torch_threads(n: int = 1):
    """Run torch with ``n`` intra-op threads, then restore the previous count.

    On a shared two-core machine with other work running, two OpenMP threads
    make every small torch op wait tens of milliseconds for a busy core, which
    would swamp what the benchmark measures; one thread avoids that.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def interleaved(step, names, repeats: int):
    """Time ``step(name)`` for every name, round-robin, ``repeats`` rounds after one warm-up round.

    Returns ``(times, ratio)``: the seconds of each name per round, and ``ratio(a, b)``, the median
    over rounds of ``t(a) / t(b)``. Interleaving puts each pair
    of the same round under the same machine load, which is what makes the ratio stable.
    """
    times = {k: [] for k in names}
    for rep in range(repeats + 1):
        for k in names:
            t0 = time.perf_counter()
            step(k)
            if rep:
                times[k].append(time.perf_counter() - t0)

    def ratio(a, b) -> float:
        return statistics.median(s / t for s, t in zip(times[a], times[b], strict=True))

    return times, ratio
