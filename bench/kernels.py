"""NumPy projection benchmarks: exact ternary per tensor and per channel, level sets, memory.

Every exact projection timed here starts from the float32 weights and
includes computing the magnitudes (``np.abs``), as the one-pass baseline
``np.abs(w).sum()`` does. The float64 errors of the level-set section come
from the kernels' own codes and scales, so the float32 rounding of an output
array cannot blur "exact never loses to Lloyd".
"""

from __future__ import annotations

import numpy as np
from array_api_compat import numpy as xnp

import brelax
from brelax import fast, heuristics, kernels, projections

from .timing import peak_bytes, row, section, timed_row

TERNARY = (0.0, 1.0)
LEVEL_SETS = ("uniform:3", "uniform:4", "levels:1,3")


def one_pass(w):
    """The baseline: one memory pass over ``w``."""
    return lambda: np.abs(w).sum()


def fast_ternary(w2d):
    """Exact ternary values with the fast kernel (the active backend: numba when installed), one row per scale
    group of the 2-D float32 ``w2d``."""
    return lambda: fast.ternary_values(w2d, 1.0)


def sort_ternary(w2d):
    """Exact ternary with the sort-based reference kernel (float64 magnitudes, as ``QuantSet`` feeds it)."""
    return lambda: projections.ternary_sort(xnp, np.abs(w2d.astype(np.float64)), TERNARY)


def sq_error(a, idx, scale, levels) -> float:
    """``sum ||a - scale L[idx]||^2`` over the rows, float64."""
    q = np.asarray(levels, dtype=np.float64)[idx]
    return float(np.sum((a - scale[:, None] * q) ** 2))


def project_fast(w, levels):
    """Exact projection of the 1-D ``w`` onto the free-scale set with these levels, fast kernel, dtype of ``w``."""
    idx, scale = fast.fast_kernel(xnp, levels)(xnp, np.abs(w)[None], levels)
    v = (scale[0] * np.asarray(levels)[idx[0]]).astype(w.dtype)
    return np.where(w < 0, -v, v)


def ternary_per_tensor(cfg, rng) -> dict:
    rows = []
    Q = brelax.ternary()
    for n in cfg.ternary_n:
        w = rng.standard_normal(n).astype(np.float32)
        w2 = w.reshape(1, -1)
        base, tag = one_pass(w), f"n={n:.0e}"
        target = 6.0 if n == 10**7 else None  # issue 19 (issue 12 asked 5x)
        fast_row = timed_row(
            f"exact fast (histogram) values, {tag}",
            fast_ternary(w2),
            base,
            "np.abs(w).sum()",
            cfg.repeats,
            target=target,
            why="a scatter-add histogram and a hull gather before the value pass",
            n=n,
        )
        sort_row = timed_row(
            f"exact sort-based reference, {tag}", sort_ternary(w2), base, "np.abs(w).sum()", cfg.slow_repeats, n=n
        )
        rows += [
            fast_row,
            sort_row,
            timed_row(
                f"TWN heuristic (brelax.heuristics.twn), {tag}",
                lambda: heuristics.twn(w),
                base,
                "np.abs(w).sum()",
                cfg.repeats,
                n=n,
            ),
            row(
                f"exact fast / sort-based (the two rows above), {tag}",
                fast_row["value"] / sort_row["value"],
                "x",
                "sort-based reference",
                n=n,
            ),
            timed_row(
                f"Q.project(w), the whole public call, {tag}",
                lambda: Q.project(w),
                base,
                "np.abs(w).sum()",
                cfg.repeats,
                target=target,
                n=n,
            ),
        ]
        w64 = w.astype(np.float64)
        rows.append(
            timed_row(
                f"Q.project(w) on float64 input, {tag}",
                lambda: Q.project(w64),
                one_pass(w64),
                "np.abs(w64).sum()",
                cfg.repeats,
                n=n,
            )
        )
    notes = [
        "w ~ N(0, 1) float32, one scale per tensor; 'exact fast' is brelax.fast.ternary_values on the active "
        f"kernel backend ({kernels.backend()}), values included.",
        "Q.project includes validation, codes and dequantization; float32 input takes the NumPy fast path "
        "(no float64 copy), float64 input the float64 path with the same fast kernel.",
    ]
    return section("Exact ternary, NumPy, per tensor", rows, notes)


def ternary_per_channel(cfg, rng) -> dict:
    G, n = cfg.channel_shape
    W = (rng.standard_normal((G, n)) * rng.uniform(0.5, 2.0, (G, 1))).astype(np.float32)
    flat = W.reshape(1, -1)
    tag = f"{G}x{n}"
    rows = [
        timed_row(
            f"exact fast per channel / per tensor, {tag}",
            fast_ternary(W),
            fast_ternary(flat),
            "exact fast per tensor, same data",
            cfg.repeats,
            target=1.3 if (G, n) == (512, 4608) else None,
        ),
        timed_row(f"exact fast per channel, {tag}", fast_ternary(W), one_pass(W), "np.abs(W).sum()", cfg.repeats),
        timed_row(
            f"sort-based per channel / per tensor, {tag}",
            sort_ternary(W),
            sort_ternary(flat),
            "sort-based per tensor, same data",
            cfg.repeats,
        ),
        timed_row(
            f"Q.project(W, axis=0) / Q.project(W), {tag}",
            lambda: brelax.ternary().project(W, axis=0),
            lambda: brelax.ternary().project(W),
            "the same path per tensor",
            cfg.repeats,
        ),
    ]
    return section("Exact ternary, NumPy, per channel", rows, ["Rows of W have scales drawn from U(0.5, 2)."])


def level_sets(cfg, rng) -> dict:
    rows, notes = [], []
    n = cfg.level_n
    w = rng.standard_normal(n).astype(np.float32)
    w64 = w.astype(np.float64)
    a64 = np.abs(w64)[None]
    small = w[: cfg.level_ref_n]
    a_small = np.abs(small.astype(np.float64))[None]
    for spec in LEVEL_SETS:
        Q = brelax.get_set(spec)
        lv = Q.levels
        rows.append(
            timed_row(
                f"{spec}: exact fast / Lloyd (30 iters), n={n:.0e}",
                lambda: project_fast(w, lv),
                lambda: heuristics.lloyd(w, spec, iters=30),
                "Lloyd, same input",
                cfg.slow_repeats,
                target=2.0,
            )
        )
        e_exact = sq_error(a64, *fast.fast_kernel(xnp, lv)(xnp, a64, lv), lv)
        e_lloyd = float(np.sum((w64 - heuristics.lloyd(w64, spec, iters=30)) ** 2))
        rows.append(
            row(
                f"{spec}: exact error / Lloyd error",
                np.sqrt(e_exact / e_lloyd),
                "x",
                "Lloyd's error",
                target=1.0 + 1e-9,
            )
        )
        rows.append(
            timed_row(
                f"{spec}: reference sweep / exact fast kernel, n={cfg.level_ref_n:.0e}",
                lambda: projections.level_sweep(xnp, a_small, lv),
                lambda: fast.level_refine(xnp, a_small, lv),
                "exact fast kernel",
                cfg.slow_repeats,
            )
        )
    notes.append("Errors ||w - P(w)|| in float64; error target 1 means never worse than Lloyd (to rounding).")
    return section("Level sets: exact against Lloyd's heuristic", rows, notes)


def memory(cfg, rng) -> dict:
    n = cfg.memory_n
    w = rng.standard_normal(n).astype(np.float32)
    w2 = w.reshape(1, -1)
    u3 = brelax.uniform(3).levels
    small = w2[:, : max(1, n // 10)]
    measured = {
        "exact fast ternary": peak_bytes(fast_ternary(w2)),
        "sort-based ternary": peak_bytes(sort_ternary(w2)),
        "Q.project ternary (float32 input)": peak_bytes(lambda: brelax.ternary().project(w)),
        "exact fast uniform:3 (n/10)": peak_bytes(lambda: fast.level_refine(xnp, np.abs(small), u3)),
        "reference sweep uniform:3 (n/10)": peak_bytes(
            lambda: projections.level_sweep(xnp, np.abs(small.astype(np.float64)), u3)
        ),
    }
    rows = []
    for label, b in measured.items():
        entries = small.size if "(n/10)" in label else n
        rows.append(row(f"{label}: peak extra bytes per entry", b / entries, "bytes/entry", None, n=entries))
    rows.append(
        row(
            "exact fast ternary / sort-based, peak bytes",
            measured["exact fast ternary"] / max(measured["sort-based ternary"], 1),
            "x",
            "sort-based ternary peak",
        )
    )
    rows.append(
        row(
            "exact fast uniform:3 / reference sweep, peak bytes",
            measured["exact fast uniform:3 (n/10)"] / max(measured["reference sweep uniform:3 (n/10)"], 1),
            "x",
            "reference sweep peak",
        )
    )
    notes = [
        f"tracemalloc peak above the start, float32 input of n={n:.0e} (input itself not counted); "
        "the int64 codes every kernel returns are 8 bytes per entry."
    ]
    return section("Memory: peak extra bytes (tracemalloc)", rows, notes)


def bits_n(cfg, bits: int) -> int:
    """Entries for uniform(bits): the exact search costs O(min(K log n, n log K)) per evaluated value."""
    return cfg.bits_n[0] if bits <= 10 else (cfg.bits_n[1] if bits <= 13 else cfg.bits_n[2])


def _timed_peak(fn):
    """``(seconds, peak extra bytes, result)`` of one call of ``fn`` under tracemalloc."""
    import time

    out = []
    t0 = time.perf_counter()
    peak = peak_bytes(lambda: out.append(fn()))
    return time.perf_counter() - t0, peak, out[0]


def level_bits(cfg, rng) -> dict:
    """uniform(b), b = 2..16: time and peak memory of the exact projection against Lloyd (30 iterations)."""
    rows = []
    for bits in cfg.bits:
        n = bits_n(cfg, bits)
        w = rng.standard_normal(n).astype(np.float32)
        w64 = w.astype(np.float64)
        Q = brelax.uniform(bits)
        spec = f"uniform:{bits}"
        # Peak and error from one call each under tracemalloc; time from interleaved rounds, untraced.
        _, exact_peak, p_exact = _timed_peak(lambda: Q.project(w))
        _, lloyd_peak, p_lloyd = _timed_peak(lambda: heuristics.lloyd(w, spec, iters=30))
        rows.append(
            timed_row(
                f"{spec}: exact Q.project / Lloyd (30 iters), time, n={n:.0e}",
                lambda: Q.project(w),
                lambda: heuristics.lloyd(w, spec, iters=30),
                "Lloyd, same input",
                cfg.slow_repeats,
                target=2.0 if bits <= 10 else None,
                why="the exact search evaluates the objective at many keys (it is flat to ~1e-9 at many levels), "
                "Lloyd runs 30 fixed passes",
                n=n,
            )
        )
        rows.append(
            row(
                f"{spec}: exact Q.project peak extra bytes per entry, n={n:.0e}",
                exact_peak / n,
                "bytes/entry",
                None,
                target=64.0 if n >= 10**5 else None,
                n=n,
            )
        )
        rows.append(
            row(f"{spec}: Lloyd peak extra bytes per entry, n={n:.0e}", lloyd_peak / n, "bytes/entry", None, n=n)
        )
        e_exact = float(np.sum((w64 - p_exact) ** 2))
        e_lloyd = float(np.sum((w64 - p_lloyd) ** 2))
        rows.append(
            row(
                f"{spec}: exact error / Lloyd error",
                np.sqrt(e_exact / max(e_lloyd, 1e-300)),
                "x",
                "Lloyd's error",
                target=1.0 + 1e-6,
            )
        )  # float32 outputs: equal errors differ by rounding
    notes = [
        "w ~ N(0, 1) float32, one scale per tensor; times are interleaved rounds (untraced), peaks and errors "
        "from one call of each under tracemalloc. Peak = tracemalloc peak above the start, input excluded; "
        "target 64 bytes/entry whatever the number of levels, checked at 10^5 entries (at fewer, the fixed "
        "blocks of the search, under 1 MB whatever n and K, dominate the per-entry figure).",
        "Up to 9 levels the pruned key sweep runs; above, the value-space search (brelax.fast_levels."
        "_best_key_wide): exact, memory independent of K, time O(min(K log n, n log K)) per evaluated value; "
        "the objective is flat to ~1e-9 at 14+ bits, so many values are evaluated (hence fewer entries). "
        "Before this: uniform(8) on 10^6 took 88 s and 9 GB, uniform(16) on 10^5 raised MemoryError.",
    ]
    return section("Level sets uniform(2..16): exact against Lloyd, time and memory", rows, notes)
