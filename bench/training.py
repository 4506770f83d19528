"""Optimizer overhead: one ResNet-20 training step (forward, backward, optimizer step) on CPU.

HOOK on code others own: ``brelax.torch.optimizer.QuantOptimizer`` and
``brelax.torch.models`` (and, for the peer, torchao's PARQ). When they do not
import, the section reports ``not available: <error>``; rows that need only
torchao report their own line in the notes.

Variants, each with its own copy of the same initial model and batch:

* plain SGD (momentum 0.9) -- the baseline;
* BinaryRelax, binary, one scale per output channel, diagnostics on and off;
* torchao PARQ ``QuantOptimizer`` with ``ProxBinaryRelax`` and ``UnifQuantizer``
  at 1 bit (2 levels), per channel, quantizing every step (``quant_period=1``),
  so both wrappers do one projection per step.

In each repeat every variant runs one step in turn, and each ratio is the
median over repeats of that repeat's step times.
"""

from __future__ import annotations

import copy

from .timing import interleaved, ratio_row, row, section, torch_threads, unavailable

TITLE = "Optimizer overhead: ResNet-20 training step, CPU"


def _tensor_bytes(states) -> int:
    """Bytes of the distinct tensors in optimizer state dicts (shared storage counted once)."""
    import torch

    seen, total = set(), 0
    for state in states:
        for per_param in state.values():
            for t in per_param.values():
                if torch.is_tensor(t) and t.data_ptr() not in seen:
                    seen.add(t.data_ptr())
                    total += t.numel() * t.element_size()
    return total


def _parq(model, torch):
    """torchao PARQ QuantOptimizer on the same quantized weights, or the import error."""
    import logging

    # torchao's import logs its CUDA-only native libraries failing to load on a CPU box, and a torch
    # deprecation about its own Enum registration: third-party noise on every bench run, not ours to fix.
    noisy = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [log.level for log in noisy]
    for log in noisy:
        log.setLevel(logging.ERROR)
    try:
        from torchao.prototype.parq import ProxBinaryRelax, QuantOptimizer, UnifQuantizer
    except Exception as err:  # torchao raises more than ImportError when its native parts are missing
        return None, err
    finally:
        for log, level in zip(noisy, levels, strict=True):
            log.setLevel(level)
    from brelax.torch.models import param_groups

    groups = param_groups(model, "binary", axis=0)
    parq_groups = [{"params": groups[0]["params"], "quant_bits": 1}] + [{"params": g["params"]} for g in groups[1:]]
    base = torch.optim.SGD(parq_groups, lr=0.1, momentum=0.9)
    opt = QuantOptimizer(
        base,
        UnifQuantizer(),
        ProxBinaryRelax(anneal_start=0, anneal_end=10_000),
        quant_period=1,
        quant_per_channel=True,
    )
    return opt, None


def optimizer_overhead(cfg, rng) -> dict:
    try:
        import torch

        from brelax.torch.models import param_groups, resnet20
        from brelax.torch.optimizer import QuantOptimizer
    except ImportError as err:
        return unavailable(TITLE, err)
    with torch_threads(1):
        return _overhead(cfg, torch, param_groups, resnet20, QuantOptimizer)


def _overhead(cfg, torch, param_groups, resnet20, QuantOptimizer) -> dict:
    torch.manual_seed(0)
    model0 = resnet20()
    x = torch.randn(cfg.train_batch, 3, 32, 32)
    y = torch.randint(0, 10, (cfg.train_batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def sgd(m):
        return torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

    def br(m, diagnostics):
        base = torch.optim.SGD(param_groups(m, "binary", axis=0), lr=0.1, momentum=0.9)
        return QuantOptimizer(base, method="binaryrelax", qset="binary", axis=0, diagnostics=diagnostics)

    variants = {"sgd": sgd, "br_diag_on": lambda m: br(m, True), "br_diag_off": lambda m: br(m, False)}
    notes = [
        f"batch {cfg.train_batch} of 3x32x32, torch {torch.__version__}, {torch.get_num_threads()} thread "
        "(see bench.timing.torch_threads)."
    ]
    models, opts = {}, {}
    for name, make in variants.items():
        models[name] = copy.deepcopy(model0)
        opts[name] = make(models[name])
    models["parq"] = copy.deepcopy(model0)
    parq, err = _parq(models["parq"], torch)
    if parq is None:
        del models["parq"]
        notes.append(f"torchao PARQ: not available: {type(err).__name__}: {err}")
    else:
        opts["parq"] = parq

    def step(name):
        m, opt = models[name], opts[name]
        opt.zero_grad(set_to_none=True)
        loss_fn(m(x), y).backward()
        opt.step()

    _, ratio = interleaved(step, opts, cfg.repeats)

    rows = [
        ratio_row("BinaryRelax (diagnostics on) / SGD", ratio("br_diag_on", "sgd"), "plain SGD step", 1.10),
        ratio_row("BinaryRelax (diagnostics off) / SGD", ratio("br_diag_off", "sgd"), "plain SGD step", 1.05),
    ]
    if "parq" in opts:
        rows.append(
            ratio_row(
                "BinaryRelax (diagnostics off) / torchao PARQ",
                ratio("br_diag_off", "parq"),
                "PARQ QuantOptimizer step",
                1.0,
            )
        )
        rows.append(ratio_row("torchao PARQ / SGD", ratio("parq", "sgd"), "plain SGD step"))
    n_quant = sum(p.numel() for p in param_groups(models["sgd"], "binary", axis=0)[0]["params"])
    sgd_state = _tensor_bytes([opts["sgd"].state])
    for name in ("br_diag_off", "br_diag_on", "parq"):
        if name in opts:
            opt = opts[name]
            inner = getattr(opt, "base", None) or getattr(opt, "base_optimizer", None)
            extra = _tensor_bytes([opt.state] + ([inner.state] if inner is not None else [])) - sgd_state
            rows.append(
                row(
                    f"{name}: optimizer state beyond SGD's, per quantized parameter",
                    max(extra, 0) / n_quant,
                    "bytes/param",
                    "SGD momentum excluded",
                    n_quantized=n_quant,
                )
            )
    return section(TITLE, rows, notes)
