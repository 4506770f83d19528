"""Per-channel projection of VGG-11's conv weights against one memory pass, torch and NumPy (CPU).

The authors' model: the 8 conv weights of :func:`brelax.torch.models.vgg11`
(9.2M entries, rows of 27 to 4608 entries), one scale per output channel
(``axis=0``), as ``QuantOptimizer`` projects them at every step. Subject:
``Q.project(w, axis=0)`` over all 8 tensors (the public call: validation,
grouping, kernel, values); baseline: ``w.abs().sum()`` (torch) or
``np.abs(w).sum()`` (NumPy) over the same tensors, timed back to back.
"""

from __future__ import annotations

import numpy as np

import brelax

from .timing import section, timed_row, torch_threads, unavailable

TITLE = "Per-channel projection of VGG-11's conv weights / one pass, CPU"
TARGETS = {("torch", "binary"): 3.0, ("torch", "ternary"): 6.0, ("torch", "uniform:3"): 20.0, ("numpy", "binary"): 3.0}
SPECS = ("binary", "ternary", "uniform:3")


def vgg11_conv_weights(torch, small: bool = False):
    """The conv weights of a freshly initialised VGG-11 (``small``: every other channel of each, for --quick)."""
    from brelax.torch.models import vgg11

    torch.manual_seed(0)
    ws = [m.weight.detach().clone() for m in vgg11().modules() if isinstance(m, torch.nn.Conv2d)]
    return [w[::8, ::8].contiguous() for w in ws] if small else ws


def per_channel(cfg, rng) -> dict:
    try:
        import torch

        ws = vgg11_conv_weights(torch, small=cfg.channel_shape != (512, 4608))
    except ImportError as err:
        return unavailable(TITLE, err)
    with torch_threads(1):
        return _per_channel(cfg, torch, ws)


def _per_channel(cfg, torch, ws) -> dict:
    nps = [w.numpy().copy() for w in ws]
    n = sum(w.numel() for w in ws)
    rows = []
    for spec in SPECS:
        Q = brelax.get_set(spec)
        rows.append(
            timed_row(
                f"torch {spec}: Q.project(w, axis=0) / w.abs().sum(), {n / 1e6:.1f}M entries",
                lambda: [Q.project(w, axis=0) for w in ws],
                lambda: [w.abs().sum() for w in ws],
                "w.abs().sum(), same tensors",
                cfg.repeats,
                target=TARGETS.get(("torch", spec)),
                n=n,
            )
        )
        rows.append(
            timed_row(
                f"NumPy {spec}: Q.project(w, axis=0) / np.abs(w).sum(), {n / 1e6:.1f}M entries",
                lambda: [Q.project(w, axis=0) for w in nps],
                lambda: [np.abs(w).sum() for w in nps],
                "np.abs(w).sum(), same arrays",
                cfg.repeats,
                target=TARGETS.get(("numpy", spec)),
                n=n,
            )
        )
    Q = brelax.ternary()
    rows.append(
        timed_row(
            "torch ternary: the device-agnostic torch kernel (the CUDA path) / w.abs().sum()",
            lambda: [_torch_ternary(Q, w) for w in ws],
            lambda: [w.abs().sum() for w in ws],
            "w.abs().sum(), same tensors",
            cfg.repeats,
            n=n,
        )
    )
    notes = [
        f"{len(ws)} conv weights, {n} entries, float32, {torch.get_num_threads()} torch thread; "
        "one pass = w.abs().sum() allocates |w| (page faults included, as in any new tensor).",
        "On CPU the torch path runs the NumPy ternary and level-set kernels on a zero-copy view "
        "(brelax.fast_torch.quantize); the last row is the torch-native ternary kernel, which CUDA runs.",
    ]
    return section(TITLE, rows, notes)


def _torch_ternary(Q, w):
    from brelax import fast_torch

    return fast_torch.ternary_rows(w.reshape(w.shape[0], -1), 1.0)[0]
