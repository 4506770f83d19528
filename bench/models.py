"""One training step of the authors' VGG-11 and of ResNet-56 on CPU: BinaryRelax against SGD and torchao PARQ.

HOOK on code others own: ``brelax.torch.optimizer.QuantOptimizer``,
``brelax.torch.models`` and torchao's PARQ. Variants, each with its own copy
of the same model and batch, one step each in turn per repeat (ratios are
medians of per-repeat ratios):

* ``sgd``: plain SGD, momentum 0.9 (the baseline);
* ``br_binary``, ``br_ternary``, ``br_uniform3``: BinaryRelax around that SGD,
  one scale per output channel, diagnostics off;
* ``parq``: torchao PARQ ``QuantOptimizer`` (``UnifQuantizer`` at 1 bit,
  ``ProxBinaryRelax``, per channel, quantizing every step).
"""

from __future__ import annotations

import copy
import statistics

from .timing import interleaved, ratio_row, section, torch_threads, unavailable

TITLE = "Training step on the authors' VGG-11 and on ResNet-56, CPU"
SETS = (("binary", "binary"), ("ternary", "ternary"), ("uniform3", "uniform:3"))
#: Issue 19's targets, the same for both models (step time / SGD step time).
STEP_TARGETS = {"br_binary": 1.03, "br_ternary": 1.07, "br_uniform3": 1.5}
STEP_WHY = (
    "the step adds one projection of every quantized weight (the per-channel rows: one pass of the weights "
    "times that ratio) and the wrapper's lerp to forward + backward + SGD"
)


def model_steps(cfg, rng) -> dict:
    try:
        import torch

        from brelax.torch.models import param_groups, resnet56, vgg11
        from brelax.torch.optimizer import QuantOptimizer
    except ImportError as err:
        return unavailable(TITLE, err)
    from .training import _parq

    rows, notes = [], []
    with torch_threads(1):
        nets = (("VGG-11", vgg11), ("ResNet-56", resnet56))
        for name, build in nets[1:] if cfg.vgg_batch < 16 else nets:  # --quick: ResNet-56 only
            batch, reps = cfg.vgg_batch, cfg.model_repeats
            r, nt = _one_model(torch, name, build, batch, reps, param_groups, QuantOptimizer, _parq)
            rows += r
            notes += nt
    notes.append(
        f"{torch.get_num_threads()} torch thread(s) outside the section; 1 inside (see bench.timing.torch_threads)."
    )
    return section(TITLE, rows, notes)


def _one_model(torch, name, build, batch, repeats, param_groups, QuantOptimizer, parq):
    torch.manual_seed(0)
    model0 = build()
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def br(m, spec):
        base = torch.optim.SGD(param_groups(m, spec, axis=0), lr=0.05, momentum=0.9)
        return QuantOptimizer(base, method="binaryrelax", qset=spec, axis=0, diagnostics=False)

    models, opts = {}, {}
    models["sgd"] = copy.deepcopy(model0)
    opts["sgd"] = torch.optim.SGD(models["sgd"].parameters(), lr=0.05, momentum=0.9)
    for tag, spec in SETS:
        models[f"br_{tag}"] = copy.deepcopy(model0)
        opts[f"br_{tag}"] = br(models[f"br_{tag}"], spec)
    notes = []
    models["parq"] = copy.deepcopy(model0)
    p, err = parq(models["parq"], torch)
    if p is None:
        del models["parq"]
        notes.append(f"{name}: torchao PARQ not available: {type(err).__name__}: {err}")
    else:
        opts["parq"] = p

    def step(k):
        m, opt = models[k], opts[k]
        opt.zero_grad(set_to_none=True)
        loss_fn(m(x), y).backward()
        opt.step()

    times, ratio = interleaved(step, opts, repeats)

    rows = []
    targets = STEP_TARGETS
    for tag, spec in SETS:
        k = f"br_{tag}"
        rows.append(
            ratio_row(
                f"{name}, batch {batch}: BinaryRelax {spec} step / SGD step",
                ratio(k, "sgd"),
                "plain SGD step",
                targets.get(k),
                why=STEP_WHY,
                model=name,
                batch=batch,
            )
        )
    if "parq" in opts:
        rows.append(
            ratio_row(
                f"{name}, batch {batch}: torchao PARQ binary step / SGD step",
                ratio("parq", "sgd"),
                "plain SGD step",
                model=name,
                batch=batch,
            )
        )
        for tag, spec in SETS:
            rows.append(
                ratio_row(
                    f"{name}, batch {batch}: BinaryRelax {spec} step / PARQ binary step",
                    ratio(f"br_{tag}", "parq"),
                    "PARQ QuantOptimizer step (binary)",
                    1.0 if tag == "binary" else None,
                    model=name,
                    batch=batch,
                )
            )
    n_q = sum(p.numel() for p in param_groups(models["sgd"], "binary", axis=0)[0]["params"])
    notes.append(
        f"{name}: {n_q} quantized weights, SGD step median {statistics.median(times['sgd']):.3f} s ({repeats} repeats)."
    )
    return rows, notes
