"""torch against NumPy for the same projections, on CPU and (when there is one) on CUDA."""

from __future__ import annotations

import numpy as np
from array_api_compat import numpy as xnp

import brelax
from brelax import fast, projections

from .timing import section, timed_row, torch_threads, unavailable

SPECS = ("binary", "ternary", "uniform:3")


def _synced(fn, device):
    import torch

    if device.type != "cuda":
        return fn

    def run():
        fn()
        torch.cuda.synchronize(device)

    return run


TITLE = "torch against NumPy, same projections"


def torch_vs_numpy(cfg, rng) -> dict:
    try:
        import torch
    except ImportError as err:
        return unavailable(TITLE, err)
    with torch_threads(1):
        return _torch_vs_numpy(cfg, rng, torch)


def _torch_vs_numpy(cfg, rng, torch) -> dict:
    from array_api_compat import array_namespace

    torch.manual_seed(0)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for spec in SPECS:
        Q = brelax.get_set(spec)
        lv = Q.levels
        n = cfg.backend_level_n if len(lv) > 2 else cfg.backend_n
        w = rng.standard_normal(n).astype(np.float32)
        a_np = np.abs(w.astype(np.float64))[None]
        ref = projections.exact_kernel(lv)
        quick = fast.fast_kernel(xnp, lv) or ref
        for dev in devices:
            wt = torch.from_numpy(w.copy()).to(dev)
            at = torch.from_numpy(a_np.copy()).to(dev)
            xt = array_namespace(at)
            tag = f"{spec}, {dev.type}, n={n:.0e}"
            rows.append(
                timed_row(
                    f"Q.project torch / NumPy, {tag}",
                    _synced(lambda: Q.project(wt), dev),
                    lambda: Q.project(w),
                    "Q.project on the NumPy array",
                    cfg.repeats,
                )
            )
            rows.append(
                timed_row(
                    f"reference kernel torch / NumPy, {tag}",
                    _synced(lambda: ref(xt, at, lv), dev),
                    lambda: ref(xnp, a_np, lv),
                    "the same kernel on NumPy",
                    cfg.repeats,
                )
            )
            if quick is not ref:
                rows.append(
                    timed_row(
                        f"reference kernel torch / fast NumPy kernel, {tag}",
                        _synced(lambda: ref(xt, at, lv), dev),
                        lambda: quick(xnp, a_np, lv),
                        "fast NumPy kernel",
                        cfg.repeats,
                    )
                )
    notes = [f"torch {torch.__version__}, {torch.get_num_threads()} thread (see bench.timing.torch_threads)."]
    if len(devices) == 1:
        notes.append("CUDA: not available here (torch.cuda.is_available() is False).")
    return section(TITLE, rows, notes)
