"""``brelax train``: quantized CIFAR-10/100 training with BinaryRelax and its baselines.

The defaults are the authors' schedule (MATH.md section 6): SGD with lr 0.1,
momentum 0.9, weight decay 1e-4, batch 128, lr times 0.1 at epochs 80 and 140,
``lam_e = 1 * 1.04**e`` in epoch ``e`` (counted from 0), Phase II (``mu = 1``)
from epoch 150 of 200. Every conv weight is quantized, one scale per output
channel; the last Linear, BN and biases stay float.

Each epoch appends a row to ``OUT/metrics.jsonl``: the train and test loss and
accuracy of the *quantized* model ``P(y)`` (BN in eval mode, running
statistics gathered at ``x``), the running loss at ``x`` on the augmented
batches, lr, lam, mu, the per-layer AOC summary (MATH.md section 5: mean and
max of ``delta_t``, the fraction of steps with ``delta_t <= 0``), sign/level
flips, ``d_Q(y)``, seconds and images/s. ``OUT/ckpt.pt`` is rewritten
atomically after every epoch (and once before the first), so a NaN stop or a
crash keeps the last good one; ``--resume`` continues from it bit for bit on CPU.

``torchrun --nproc_per_node N -m brelax train ...`` runs the same code under
DDP (see :mod:`brelax.torch.ddp`); ``--batch-size`` is the global batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import schedules
from ..sets import get_set
from . import checkpoint, ddp
from .data import CifarLoader, load_cifar, synthetic_cifar
from .models import MODEL_NAMES, build_model, param_groups
from .optimizer import METHOD_NAMES, QuantOptimizer

CLASSES = {"cifar10": 10, "cifar100": 100}
# Changing one of these makes a checkpoint a different run; --resume refuses it.
RUN_KEYS = ("dataset", "model", "bn", "shortcut", "set", "method", "axis", "include_last_fc",
            "batch_size", "seed", "synthetic", "synthetic_n", "limit_train")


class TrainingStopped(FloatingPointError):
    """The loss or the weights became NaN/inf; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Everything a run depends on (the CLI flags, one to one). See ``brelax train --help``."""

    dataset: str = "cifar10"
    data: str | None = None
    out: str = "run"
    model: str = "resnet20"
    bn: bool = True
    shortcut: str = "A"
    set: str = "binary"
    method: str = "binaryrelax"
    axis: int | None = 0
    include_last_fc: bool = False
    epochs: int = 200
    batch_size: int = 128
    eval_batch_size: int = 500
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: list = field(default_factory=lambda: [80, 140])
    gamma: float = 0.1
    lam0: float = 1.0
    rho: float = 1.04
    phase2_epoch: int | None = 150
    seed: int = 0
    init: str | None = None
    synthetic: bool = False
    synthetic_n: int = 1024
    limit_train: int | None = None
    limit_test: int | None = None
    augment: bool = True
    device: str = "auto"
    amp: str = "none"
    compile: bool = False
    channels_last: bool = False
    sync_bn: bool = False
    deterministic: bool = False
    workers: int = 0
    resume: bool = False
    eval_train: bool = True
    diagnostics: bool = True
    progress: bool = True

    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first bad field."""
        choices = {"dataset": tuple(CLASSES), "model": MODEL_NAMES, "method": METHOD_NAMES,
                   "amp": ("none", "bf16"), "shortcut": ("A", "B")}
        for k, valid in choices.items():
            if getattr(self, k) not in valid:
                raise ValueError(f"unknown {k} {getattr(self, k)!r}; valid: {', '.join(valid)}")
        get_set(self.set)
        for k in ("epochs", "batch_size", "eval_batch_size", "synthetic_n"):
            if not isinstance(getattr(self, k), int) or getattr(self, k) < 1:
                raise ValueError(f"{k} must be an int >= 1, got {getattr(self, k)!r}")
        for k in ("lr", "gamma"):
            if not getattr(self, k) > 0 or not math.isfinite(getattr(self, k)):
                raise ValueError(f"{k} must be a finite number > 0, got {getattr(self, k)!r}")
        if not self.bn and self.model != "vgg11":
            raise ValueError(f"--no-bn exists for vgg11 only, not {self.model}")
        if self.data is None and not self.synthetic:
            raise ValueError("give --data DIR (the CIFAR python archive or folder) or --synthetic")
        return self

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class TrainResult:
    """``summary`` (JSON-able), the finalized model (holding ``P(y)``) and the optimizer."""

    summary: dict
    model: torch.nn.Module
    optimizer: QuantOptimizer


def _data(cfg: TrainConfig, classes: int):
    if cfg.synthetic:
        train = synthetic_cifar(cfg.synthetic_n, classes, seed=cfg.seed)
        test = synthetic_cifar(max(cfg.synthetic_n // 5, 1), classes, seed=cfg.seed + 1)
    else:
        train = load_cifar(cfg.data, cfg.dataset, train=True)
        test = load_cifar(cfg.data, cfg.dataset, train=False)
    cut = lambda d, n: d if n is None else (d[0][:n], d[1][:n])  # noqa: E731
    return cut(train, cfg.limit_train), cut(test, cfg.limit_test)


def _model_kwargs(cfg: TrainConfig) -> dict:
    return {"bn": cfg.bn} if cfg.model == "vgg11" else {"shortcut": cfg.shortcut}


def build_optimizer(cfg: TrainConfig, net, steps_per_epoch: int) -> QuantOptimizer:
    """SGD over named groups (quantized conv weights first) wrapped in QuantOptimizer, epoch schedule."""
    names = {id(p): n for n, p in net.named_parameters()}
    groups = param_groups(net, get_set(cfg.set), axis=cfg.axis, include_last_fc=cfg.include_last_fc)
    for g in groups:
        g["params"] = [(names[id(p)], p) for p in g["params"]]
    base = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    p2 = None if cfg.phase2_epoch is None else cfg.phase2_epoch * steps_per_epoch
    return QuantOptimizer(base, method=cfg.method, qset=cfg.set, axis=cfg.axis, lam0=cfg.lam0, rho=cfg.rho,
                          schedule="epoch", phase2_start=p2, diagnostics=cfg.diagnostics)


class _AOC:
    """Per-layer running summary of the diagnostics rows of one epoch."""

    def __init__(self):
        self.layers: dict = {}

    def add(self, diag: dict):
        for name, d in diag.items():
            a = self.layers.setdefault(name, {"n": 0, "sum": 0.0, "max": -math.inf, "nonpos": 0, "flips": 0})
            a["flips"] += d["flips"]
            a["dist_y"] = d["dist_y"]
            if math.isfinite(d["delta"]):
                a["n"] += 1
                a["sum"] += d["delta"]
                a["max"] = max(a["max"], d["delta"])
                a["nonpos"] += d["delta"] <= 0

    def summary(self) -> dict:
        per, n, s, mx, nonpos, flips = {}, 0, 0.0, -math.inf, 0, 0
        for name, a in self.layers.items():
            per[name] = {"aoc_mean": a["sum"] / a["n"] if a["n"] else None, "aoc_max": a["max"] if a["n"] else None,
                         "aoc_nonpos_frac": a["nonpos"] / a["n"] if a["n"] else None, "flips": a["flips"],
                         "dist_y": a.get("dist_y")}
            n, s, mx, nonpos, flips = n + a["n"], s + a["sum"], max(mx, a["max"]), nonpos + a["nonpos"], flips + a["flips"]
        return {"aoc_mean": s / n if n else None, "aoc_max": mx if n else None,
                "aoc_nonpos_frac": nonpos / n if n else None, "flips": flips, "layers": per}


def _autocast(cfg, device):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")


@torch.no_grad()
def evaluate(net, loader, ctx, cfg) -> tuple[float, float]:
    """Mean loss and accuracy of ``net`` in eval mode over the loader, summed over ranks."""
    net.eval()
    acc = torch.zeros(3, dtype=torch.float64, device=ctx.device)
    for xb, yb in loader:
        if len(yb) == 0:
            continue
        with _autocast(cfg, ctx.device):
            out = net(xb)
        acc[0] += F.cross_entropy(out.float(), yb, reduction="sum")
        acc[1] += (out.argmax(1) == yb).sum()
        acc[2] += len(yb)
    loss, correct, n = ddp.all_reduce_sum(acc, ctx).tolist()
    return loss / n, correct / n


def _progress(loader, cfg, ctx, desc):
    if not (cfg.progress and ctx.is_main):
        return loader
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is cosmetic
        return loader
    return tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)


def train(cfg: TrainConfig, on_loss=None) -> TrainResult:
    """Run (or resume) one training run; see the module docstring. Called by ``brelax train``.

    Parameters
    ----------
    cfg : TrainConfig
    on_loss : callable ``(step, loss) -> loss`` or None
        Applied to every minibatch loss before the finiteness check (tests inject a NaN with it).

    Raises
    ------
    TrainingStopped
        The loss or the weights became NaN or inf; ``OUT/ckpt.pt`` is the last good epoch.
    ValueError
        A bad config, or ``--resume`` from a checkpoint of a different run.
    """
    cfg.validate()
    ctx = ddp.init_from_env(cfg.device)
    try:
        return _train(cfg, ctx, on_loss)
    finally:
        ddp.shutdown(ctx)


def _train(cfg, ctx, on_loss):
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)  # warn, not fail, on ops without one
    elif ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    classes = CLASSES[cfg.dataset]
    (tr_x, tr_y), (te_x, te_y) = _data(cfg, classes)
    if cfg.batch_size % ctx.world_size:
        raise ValueError(f"batch_size={cfg.batch_size} (global) must be divisible by the {ctx.world_size} ranks")
    per_rank = cfg.batch_size // ctx.world_size
    # A last global batch smaller than the world would leave a rank with no samples in training.
    drop_last = ctx.world_size > 1 and 0 < len(tr_y) % cfg.batch_size < ctx.world_size
    kw = dict(device=ctx.device, seed=cfg.seed, rank=ctx.rank, world_size=ctx.world_size,
              channels_last=cfg.channels_last)
    loader = CifarLoader(tr_x, tr_y, per_rank, train=True, augment=cfg.augment, drop_last=drop_last, **kw)
    eval_bs = max(1, cfg.eval_batch_size // ctx.world_size)
    test_loader = CifarLoader(te_x, te_y, eval_bs, train=False, **kw)
    train_eval = CifarLoader(tr_x, tr_y, eval_bs, train=False, **kw) if cfg.eval_train else None

    net = build_model(cfg.model, classes, seed=cfg.seed, **_model_kwargs(cfg))
    if cfg.init:
        net.load_state_dict(checkpoint.float_init_state(cfg.init))
    net = net.to(ctx.device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    fwd = ddp.wrap(net, ctx, cfg.sync_bn)
    net = checkpoint.unwrap(fwd)  # SyncBatchNorm conversion may have replaced modules
    opt = build_optimizer(cfg, net, len(loader))
    if cfg.compile:
        fwd = torch.compile(fwd)

    ckpt_path = os.path.join(cfg.out, "ckpt.pt")
    metrics_path = os.path.join(cfg.out, "metrics.jsonl")
    start = 0
    if cfg.resume and os.path.isfile(ckpt_path):
        ck = checkpoint.load(ckpt_path)  # CPU: RNG states must stay there; load_state_dict moves the rest
        diff = [k for k in RUN_KEYS if ck["config"].get(k) != getattr(cfg, k)]
        if diff:
            raise ValueError(f"--resume: {ckpt_path} is a different run ({', '.join(diff)} differ)")
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        checkpoint.set_rng_state(ck["rng"])
        start = int(ck["epoch"])
    elif cfg.resume and ctx.is_main:
        print(f"brelax train: --resume but no {ckpt_path}; starting from epoch 0", file=sys.stderr)

    def save(epoch):
        ddp.broadcast_buffers(net, ctx)
        if ctx.is_main:
            checkpoint.save_atomic({
                "format": checkpoint.FORMAT, "epoch": epoch, "config": cfg.to_dict(),
                "model_name": cfg.model, "model_kwargs": _model_kwargs(cfg), "num_classes": classes,
                "model": net.state_dict(), "optimizer": opt.state_dict(), "rng": checkpoint.rng_state(),
                "loader_epoch": epoch, "world_size": ctx.world_size}, ckpt_path)
        ddp.barrier(ctx)

    if ctx.is_main:
        os.makedirs(cfg.out, exist_ok=True)
        rows = []
        if start and os.path.isfile(metrics_path):  # drop rows of epochs the checkpoint does not have
            with open(metrics_path) as f:
                rows = [r for r in (json.loads(line) for line in f if line.strip()) if r["epoch"] <= start]
        checkpoint.write_text_atomic(metrics_path, "".join(json.dumps(r) + "\n" for r in rows))
    if start == 0:
        save(0)

    row = None
    for epoch in range(start, cfg.epochs):
        lr = schedules.multistep(cfg.lr, cfg.milestones, cfg.gamma)(epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        loader.set_epoch(epoch)
        fwd.train()
        aoc, run = _AOC(), torch.zeros(3, dtype=torch.float64, device=ctx.device)
        # lam, mu and phase of the epoch's first forward pass (Phase II may start mid-epoch).
        lam, mu, phase, t0 = opt.lam, opt.mu, opt.phase, time.perf_counter()
        sizes = loader.global_batch_sizes()
        for i, (xb, yb) in enumerate(_progress(loader, cfg, ctx, f"epoch {epoch + 1}/{cfg.epochs}")):
            m = sizes[i]  # the global batch this rank's part belongs to
            with _autocast(cfg, ctx.device):
                out = fwd(xb)
            ce = F.cross_entropy(out.float(), yb, reduction="sum")
            if on_loss is not None:
                ce = on_loss(opt.step_count, ce)
            if not ddp.all_true(torch.isfinite(ce.detach()), ctx):
                raise TrainingStopped(f"non-finite loss at epoch {epoch + 1}, step {opt.step_count + 1} "
                                      f"(lr={lr:g}); stopped, {ckpt_path} keeps the last good epoch")
            # Sum over the rank's samples, scaled so that DDP's gradient mean is the global-batch mean.
            (ce * (ctx.world_size / m)).backward()
            try:
                opt.step()
            except FloatingPointError as e:
                raise TrainingStopped(f"{e}; stopped at epoch {epoch + 1}, {ckpt_path} keeps the last good epoch") from None
            opt.zero_grad(set_to_none=True)
            run += torch.stack([ce.detach().double(), (out.argmax(1) == yb).sum().double(),
                                torch.tensor(float(len(yb)), dtype=torch.float64, device=ctx.device)])
            if cfg.diagnostics:
                aoc.add(opt.last_diagnostics)
        train_s = time.perf_counter() - t0
        opt.epoch_end()
        ddp.broadcast_buffers(net, ctx)
        run_loss, run_correct, seen = ddp.all_reduce_sum(run, ctx).tolist()
        quant = opt.quantized() if cfg.method != "float" else contextlib.nullcontext()
        with quant:
            test_loss, test_acc = evaluate(net, test_loader, ctx, cfg)
            tr_loss, tr_acc = evaluate(net, train_eval, ctx, cfg) if train_eval else (None, None)
        row = {"epoch": epoch + 1, "step": opt.step_count, "lr": lr, "lam": lam, "mu": mu, "phase": phase,
               "eval_weights": "float" if cfg.method == "float" else "quantized",
               "train_loss": tr_loss, "train_acc": tr_acc, "test_loss": test_loss, "test_acc": test_acc,
               "running_loss": run_loss / seen, "running_acc": run_correct / seen,
               **aoc.summary(), "seconds": time.perf_counter() - t0, "images_per_s": seen / train_s}
        row = checkpoint.json_safe(row)
        save(epoch + 1)
        if ctx.is_main:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            if cfg.progress:
                print(f"epoch {epoch + 1}/{cfg.epochs}  test_acc {test_acc:.4f}  test_loss {test_loss:.4f}  "
                      f"lr {lr:g}  lam {lam:.4g}  mu {mu:.4f}  flips {row['flips']}  "
                      f"{row['images_per_s']:.0f} img/s", flush=True)

    if cfg.method != "float":
        opt.finalize()
    summary = {"out": cfg.out, "checkpoint": ckpt_path, "epochs": cfg.epochs, "world_size": ctx.world_size,
               "device": str(ctx.device), "last": row if row is not None else checkpoint.last_jsonl_row(metrics_path),
               "config": cfg.to_dict()}
    if ctx.is_main:
        checkpoint.write_text_atomic(os.path.join(cfg.out, "summary.json"), json.dumps(summary, indent=2) + "\n")
    return TrainResult(summary, net, opt)
