"""Step-log overhead: one ResNet-20 training step of ``brelax train`` (CPU) with the step log on and off.

HOOK on code others own: :class:`brelax.torch.optimizer.QuantOptimizer`,
:mod:`brelax.torch.steplog` and :mod:`brelax.torch.models`.

The step is ``brelax train``'s inner loop: forward, summed cross-entropy, the
finiteness check, backward, ``QuantOptimizer.step`` (BinaryRelax, binary, one
scale per output channel, SGD momentum 0.9), ``zero_grad``. Variants, each on
its own copy of the same model and batch:

* ``off`` -- diagnostics off, no step-log calls at all: the step as it was before the log existed;
* ``log off`` -- diagnostics off and a disabled :class:`~brelax.torch.steplog.StepLog`
  called as ``brelax train --no-diagnostics`` calls it (target: at most 1% above ``off``);
* ``log on`` -- diagnostics on and the row recorded (target: at most 5% above ``off``);
* ``checked`` -- ``log on`` plus a same-batch check (:func:`brelax.torch.train.same_batch_check`) on every
  step; ``--check-every 25`` costs 1/25 of the difference (target: at most 5% above ``log on``).

The epoch file is written once per epoch; its cost (one epoch of 391 rows, CIFAR-10
at batch 128) divided by 391 is its own row. The optional noise pairs
(``--noise-every k``) cost one more forward and backward every k steps; a row gives
the step with one, for information.
"""

from __future__ import annotations

import copy
import math
import os
import statistics
import tempfile
import time

from .timing import interleaved, ratio_row, row, section, torch_threads, unavailable

TITLE = "Step log overhead: ResNet-20 training step of brelax train, CPU"
#: The default of ``brelax train --check-every``: its overhead is (step with a check / step - 1) / K.
CHECK_EVERY = 25
_CFG = _CTX = None
STEPS_PER_EPOCH = 391  # CIFAR-10, 50000 images at batch 128


def steplog_overhead(cfg, rng) -> dict:
    try:
        import torch

        from brelax.torch import steplog
        from brelax.torch.models import param_groups, resnet20
        from brelax.torch.optimizer import QuantOptimizer
    except ImportError as err:
        return unavailable(TITLE, err)
    with torch_threads(1), tempfile.TemporaryDirectory() as tmp:
        return _overhead(cfg, torch, steplog, param_groups, resnet20, QuantOptimizer, tmp)


def _overhead(cfg, torch, steplog, param_groups, resnet20, QuantOptimizer, tmp) -> dict:
    import types

    import torch.nn.functional as F

    from brelax.torch.train import same_batch_check

    global _CFG, _CTX
    _CFG, _CTX = types.SimpleNamespace(amp="none"), types.SimpleNamespace(world_size=1, device=torch.device("cpu"))

    torch.manual_seed(0)
    model0 = resnet20()
    x = torch.randn(cfg.train_batch, 3, 32, 32)
    y = torch.randint(0, 10, (cfg.train_batch,))
    variants = {"off": (False, None), "log_off": (False, False), "log_on": (True, True), "checked": (True, True)}
    models, opts, logs = {}, {}, {}
    for name, (diag, log) in variants.items():
        models[name] = copy.deepcopy(model0)
        base = torch.optim.SGD(param_groups(models[name], "binary", axis=0), lr=0.01, momentum=0.9)
        opts[name] = QuantOptimizer(base, method="binaryrelax", qset="binary", axis=0, diagnostics=diag)
        logs[name] = None if log is None else steplog.StepLog(os.path.join(tmp, name), log)

    def step(name):
        m, opt, slog = models[name], opts[name], logs[name]
        out = m(x)
        ce = F.cross_entropy(out.float(), y, reduction="sum")
        if not bool(torch.isfinite(ce.detach())):
            raise FloatingPointError("non-finite loss in the benchmark")
        (ce / len(y)).backward()
        pair = math.nan
        if slog is not None and slog.enabled and slog.noise_due(opt.step_count):
            pair = 0.0
        t = opt.step_count
        opt.step()
        check = None
        if name == "checked":  # a same-batch check on every step (brelax train --check-every 1)
            nd = float(opt.last_diagnostics["total"]["step_norm2"])
            params = [p for g in opt.param_groups for p in g["params"]]
            check = same_batch_check(_CFG, _CTX, m, m, params, x, y, len(y), float(ce.detach()) / len(y), nd)
        opt.zero_grad(set_to_none=True)
        if slog is not None and opt.diagnostics:
            slog.record(t, 1, float(ce.detach()) / len(y), 0.01, opt.last_diagnostics, pair, check)
        elif slog is not None:  # brelax train calls nothing else with diagnostics off
            slog.record(t, 1, math.nan, 0.01, {}, pair)

    times, ratio = interleaved(step, variants, cfg.repeats)

    # one epoch file of STEPS_PER_EPOCH rows like the recorded ones
    slog = logs["log_on"]
    rows_ = slog.rows[-1:] * STEPS_PER_EPOCH
    slog.rows = [dict(r) for r in rows_]
    t0 = time.perf_counter()
    slog.end_epoch(1)
    write_s = time.perf_counter() - t0
    step_off = statistics.median(times["off"])
    columns = len(rows_[0])

    # a step with a noise pair, against one without (both with the log on)
    params = [p for g in opts["log_on"].param_groups for p in g["params"]]
    pair_times = []
    for _ in range(max(2, cfg.repeats // 2)):
        t0 = time.perf_counter()
        step("log_on")
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = models["log_on"]
        out = m(x)
        F.cross_entropy(out.float(), y).backward()
        steplog.noise_pair(m, lambda m=m: F.cross_entropy(m(x).float(), y), params)
        opts["log_on"].step()
        opts["log_on"].zero_grad(set_to_none=True)
        pair_times.append((time.perf_counter() - t0) / t_plain)

    notes = [
        f"batch {cfg.train_batch} of 3x32x32, torch {torch.__version__}, 1 thread; median over "
        f"{cfg.repeats} interleaved repeats; a step without the log took {step_off:.3f} s.",
        f"epoch file: {STEPS_PER_EPOCH} rows x {columns} float64 columns, written in {write_s * 1e3:.1f} ms.",
    ]
    rows = [
        ratio_row("step, log on / log absent", ratio("log_on", "off"), "step without the log", 1.05),
        ratio_row(
            "step, log off (--no-diagnostics) / log absent", ratio("log_off", "off"), "step without the log", 1.01
        ),
        row(
            "epoch file write, per step / step", write_s / STEPS_PER_EPOCH / step_off, "x", "step without the log", 0.01
        ),
        ratio_row(
            f"step, --check-every {CHECK_EVERY} / log on (from a check on every step)",
            {k: (1 + (v - 1) / CHECK_EVERY if k != "repeats" else v) for k, v in ratio("checked", "log_on").items()},
            "step with the log on",
            1.05,
        ),
        row(
            "step with a noise pair / step (--noise-every k adds 1/k of this minus 1)",
            statistics.median(pair_times),
            "x",
            "step with the log on",
        ),
    ]
    return section(TITLE, rows, notes)
