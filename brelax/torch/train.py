"""``brelax train``: quantized CIFAR-10/100 training with BinaryRelax and its baselines.

The defaults are the authors' schedule (penhunt/binaryrelax): SGD with lr 0.1,
momentum 0.9, weight decay 1e-4, batch 128, lr times 0.1 at epochs 80 and 140,
``lam_e = 1 * 1.04**e`` in epoch ``e`` (counted from 0), Phase II (``mu = 1``)
from epoch 150 of 200. Every conv weight is quantized, one scale per output
channel; the last Linear, BN and biases stay float. ``--recipe yin2018``
(:func:`recipe_config`) is exactly what the authors' code runs: lam
``1.04**(e + 1)``, one scale per conv tensor, VGG-11 with conv biases.

Each epoch appends a row to ``OUT/metrics.jsonl``: the train and test loss and
accuracy of the *quantized* model ``P(y)`` (BN in eval mode, running
statistics re-estimated at ``P(y)`` on training images, :mod:`brelax.torch.bn`),
the running loss at ``x`` on the augmented batches, ``train_loss_x`` (the full train loss at the
training iterate ``x`` itself, eval mode, running statistics as trained: the point Theorem II.10's
epoch form is about), lr, lam, mu, the per-layer
AOC summary (theory/THEORY.md: mean and
max of ``delta_t``, the fraction of steps with ``delta_t <= 0``), sign/level
flips, ``d_Q(y)``, seconds and images/s. ``OUT/ckpt.pt`` is rewritten
atomically after every epoch (and once before the first), so a NaN stop or a
crash keeps the last good one; ``--resume`` continues from it bit for bit on CPU.
With diagnostics on, ``OUT/steps/`` holds the per-step log, one file per epoch
written before the epoch's metrics row (:mod:`brelax.torch.steplog`; ``--noise-every K``
adds a second minibatch gradient every K steps). ``--dataset digits`` trains
scikit-learn's 8x8 digits (offline, not augmented) with ``--model digits_cnn`` or
``digits_mlp``, on the same optimizer, checkpoints, metrics and step log.

The authors evaluate elsewhere: at the weights the epoch's last gradient was
taken at (the relaxed ``x`` in Phase I, ``P(y)`` from before the last update in
Phase II). Every row also holds that test loss and accuracy
(``test_loss_authors``, ``test_acc_authors``; ``mu_authors`` is the ``mu`` of
that point), and ``summary.json`` reports ``last`` and ``best_phase2``, the
Phase II epoch with the best test accuracy by each evaluation point
(:func:`best_phase2`; the authors' 89.21% is of that kind).

Nothing is lost: the metrics row of an epoch is written (atomically) before its
checkpoint, and a resume drops rows past the checkpoint, so an interruption
between the two writes reruns that epoch. Before a checkpoint is written every
parameter, buffer (BatchNorm statistics) and latent weight is checked for NaN
and inf, as are the epoch's losses; a non-finite one stops the run
(:class:`TrainingStopped`) and the last good checkpoint stays. A non-empty
``OUT`` is refused unless ``--resume`` or ``--force``; a resume deletes the
temporary files that an interrupted write left behind.

``torchrun --nproc_per_node N -m brelax train ...`` runs the same code under
DDP (see :mod:`brelax.torch.ddp`); ``--batch-size`` is the global batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import math
import os
import pickle
import random
import re
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import schedules
from .._atomic import DIGEST_SUFFIX, LOCK_NAME
from .._atomic import folder_lock as run_lock
from ..commands import _args
from ..errors import Diverged, ResumeMismatch
from ..sets import get_set
from ..steps import get_method
from . import bn, checkpoint, ddp, steplog
from .data import CifarLoader, load_cifar, synthetic_cifar
from .models import DIGITS_MODELS, MODEL_NAMES, build_model, param_groups
from .optimizer import METHOD_NAMES, QuantOptimizer

CLASSES = {"cifar10": 10, "cifar100": 100, "digits": 10}
#: ``--sampling``: the training order (:class:`brelax.torch.data.CifarLoader`'s ``replacement``).
SAMPLINGS = ("shuffle", "with_replacement")
#: The model a dataset trains when ``--model`` is not given (the recipes' own model otherwise).
DATASET_MODELS = {"digits": "digits_cnn"}
#: A dataset's own defaults, used where neither a flag nor the recipe sets the field. The digits' values are
#: BinaryRelax's on digits_cnn, binary, chosen on a validation split of the training images by ``brelax compare``
#: (lr x rho x Phase II start; lr times 0.1 at 40% and 70% of the epochs).
DATASET_DEFAULTS = {
    "digits": {"epochs": 30, "batch_size": 64, "lr": 0.1, "rho": 1.3, "milestones": [12, 21], "phase2_epoch": 15}
}
#: The largest float32: lr, gamma and weight decay past it overflow in torch's float32 arithmetic.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Training images (per rank) whose BatchNorm statistics the evaluation of P(y) uses (brelax.torch.bn).
BN_IMAGES = 10_000
# Changing one of these makes a checkpoint a different run; --resume refuses it, even with --override.
RUN_KEYS = (
    "dataset",
    "model",
    "bn",
    "conv_bias",
    "shortcut",
    "set",
    "method",
    "axis",
    "include_last_fc",
    "batch_size",
    "seed",
    "synthetic",
    "synthetic_n",
    "limit_train",
)


class TrainingStopped(Diverged):
    """The loss or the weights became NaN/inf; the last good checkpoint is kept (exit 3)."""


#: Named bundles of :class:`TrainConfig` values (``brelax train --recipe NAME``); see :func:`recipe_config`.
RECIPES: dict[str, dict] = {
    "default": {},
    # The authors' public code (penhunt/binaryrelax), VGG-11 on CIFAR-10, binary weights.
    "yin2018": {
        "model": "vgg11",
        "bn": True,
        "conv_bias": True,
        "set": "binary",
        "method": "binaryrelax",
        "axis": None,
        "include_last_fc": False,
        "epochs": 200,
        "batch_size": 128,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "milestones": [80, 140],
        "gamma": 0.1,
        "lam0": 1.04,
        "rho": 1.04,
        "phase2_epoch": 150,
    },
    # PARQ-style (Jin et al. 2025; torchao's ProxBinaryRelax anneals the same way): mu linear in the step.
    "parq": {"axis": 0, "mu_schedule": "linear"},
}


def recipe_config(name: str = "default", **overrides) -> TrainConfig:
    """The :class:`TrainConfig` of recipe ``name``, with ``overrides`` (field values) on top.

    A recipe is a named bundle of defaults; every value given explicitly, here
    or as a ``brelax train`` flag, wins over it.

    Parameters
    ----------
    name : {"default", "yin2018", "parq"}
        ``"default"``: the :class:`TrainConfig` defaults. ``"yin2018"``: the
        authors' VGG-11 experiment as their public code runs it (see Notes).
        ``"parq"``: the defaults with a PARQ-style schedule, ``mu`` rising
        linearly in the step from 0 to 1 at the start of Phase II (epoch 150),
        one scale per output channel. The anneal window of the PARQ paper's
        own runs is not known to this project; this ramp is ours.
    **overrides
        :class:`TrainConfig` fields.

    Returns
    -------
    TrainConfig
        With ``recipe=name``.

    Raises
    ------
    ValueError
        Unknown ``name``.
    TypeError
        An override that is not a :class:`TrainConfig` field.

    Notes
    -----
    ``yin2018`` differs from the defaults in four ways, all taken from the
    authors' code:

    * lam is multiplied by 1.04 at the *start* of every epoch, the first
      included, so epoch ``e`` (from 0) uses ``lam = 1.04**(e + 1)``: here
      ``lam0 = 1.04``, ``rho = 1.04`` (the default uses ``1.04**e``);
    * one scale per whole conv tensor (``axis=None``; the default is one per
      output channel);
    * VGG-11 whose convs have biases, and weight decay 1e-4 on every parameter,
      BatchNorm and biases included (SGD's ``weight_decay``, which the default
      also applies to every group);
    * the rest is the default too: the classifier float, the first conv
      quantized, Phase II (``mu = 1``) from epoch 150 of 200, lr 0.1 with
      MultiStep [80, 140] x 0.1, SGD momentum 0.9, batch 128.

    One difference is left: their ``sign`` maps 0 to 0, ours maps it to
    ``+a``. The two projections differ only where an entry of ``y`` is exactly
    0, a set of measure zero that a trained float weight does not hit.

    Their evaluation point is not ours; ``metrics.jsonl`` records both (see
    :func:`train`).
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; valid: {', '.join(RECIPES)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise TypeError(f"not TrainConfig fields: {', '.join(bad)}")
    values = {k: (list(v) if isinstance(v, list) else v) for k, v in RECIPES[name].items()}
    dataset = overrides.get("dataset", values.get("dataset"))
    if "model" not in overrides and "model" not in values and dataset in DATASET_MODELS:
        values["model"] = DATASET_MODELS[dataset]  # --dataset digits trains digits_cnn unless --model says otherwise
    for k, v in DATASET_DEFAULTS.get(dataset, {}).items():
        if k not in overrides and k not in values:
            values[k] = list(v) if isinstance(v, list) else v
    return TrainConfig(**{**values, **overrides, "recipe": name})


@dataclass
class TrainConfig:
    """Everything a run depends on (the CLI flags, one to one). See ``brelax train --help``."""

    dataset: str = "cifar10"
    data: str | None = None
    out: str = "run"
    model: str = "resnet20"
    bn: bool = True
    shortcut: str = "A"
    conv_bias: bool = True
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
    mu_schedule: str = "geometric"
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
    force: bool = False
    override: bool = False
    eval_train: bool = True
    diagnostics: bool = True
    noise_every: int = 0
    #: The order of the training batches: a fresh permutation per epoch, or i.i.d. positions drawn with
    #: replacement (the sampling Theorems II.10-II.11 and the epoch check assume).
    sampling: str = "shuffle"
    #: Every K-th step, f_B(x_(t+1)) and grad f_B(x_(t+1)) on the step's own batch (0: never); see
    #: :func:`same_batch_check`. 25 keeps the cost near 4% of training (one more forward and backward).
    check_every: int = 25
    progress: bool = True
    quiet: bool = False
    recipe: str = "default"

    def validate(self) -> TrainConfig:
        """Raise ValueError naming the first bad field."""
        choices = {
            "dataset": tuple(CLASSES),
            "model": MODEL_NAMES,
            "method": METHOD_NAMES,
            "amp": ("none", "bf16"),
            "shortcut": ("A", "B"),
            "sampling": SAMPLINGS,
        }
        for k, valid in choices.items():
            if getattr(self, k) not in valid:
                raise ValueError(f"unknown {k} {getattr(self, k)!r}; valid: {', '.join(valid)}")
        get_set(self.set)
        for k in ("epochs", "batch_size", "eval_batch_size", "synthetic_n", "limit_train", "limit_test"):
            _args.int_at_least(getattr(self, k), _flag(k), 1)
        for k in ("workers", "phase2_epoch", "noise_every", "check_every"):
            _args.int_at_least(getattr(self, k), _flag(k), 0)
        _args.seed(self.seed)
        # The weights are float32: a value past its largest float overflows inside torch (a traceback there).
        for k in ("lr", "gamma"):
            _args.float_in(getattr(self, k), _flag(k), 0.0, FLOAT32_MAX, lo_open=True)
        _args.float_in(self.lam0, "--lam0", 0.0)
        _args.float_in(self.rho, "--rho", 1.0)  # lam must not shrink (brelax.schedules)
        _args.float_in(self.momentum, "--momentum", 0.0, 1.0, hi_open=True)
        _args.float_in(self.weight_decay, "--wd", 0.0, FLOAT32_MAX)
        for m in self.milestones:
            _args.int_at_least(m, "--milestones", 1)
        for k in range(len(self.milestones) + 1):  # the lr of every epoch, lr * gamma**k, stays a float32
            try:
                lr_k = self.lr * self.gamma**k
            except OverflowError:
                lr_k = math.inf
            if not lr_k <= FLOAT32_MAX:
                raise _args.UsageError(
                    f"--gamma {self.gamma:g}: the lr after {k} milestone(s), {self.lr:g} * {self.gamma:g}^{k}, "
                    f"overflows float32 (max {FLOAT32_MAX:.3g})"
                )
        if self.synthetic and self.dataset != "digits":  # uint8 images, the test set n/5, float32 batches
            _args.fits_in_memory(self.synthetic_n * 3 * 32 * 32 * 1.2, "--synthetic-n", self.synthetic_n)
        if self.resume and self.force:
            raise _args.UsageError("give --resume (continue the run) or --force (start over), not both")
        if self.init is not None and not self.resume and not os.path.isfile(self.init):  # before the data are read
            raise _args.UsageError(f"--init {self.init!r}: no such file")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(self.device)):
            raise _args.UsageError(f"--device {self.device!r} is not supported; use auto, cpu, cuda or cuda:N")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise _args.UsageError(f"--device {self.device!r}: CUDA is not available on this machine")
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; valid: {', '.join(RECIPES)}")
        if self.mu_schedule not in ("geometric", "linear"):
            raise ValueError(f"unknown mu_schedule {self.mu_schedule!r}; valid: geometric, linear")
        if self.mu_schedule == "linear" and not self.phase2_epoch:
            raise ValueError(
                f"--mu-schedule linear ramps mu up to --phase2-epoch, which must be >= 1, got {self.phase2_epoch!r}"
            )
        if not self.conv_bias and self.model != "vgg11":
            raise ValueError(f"--no-conv-bias exists for vgg11 only, not {self.model}")
        if not self.bn and self.model != "vgg11":
            raise ValueError(f"--no-bn exists for vgg11 only, not {self.model}")
        if (self.dataset == "digits") != (self.model in DIGITS_MODELS):
            raise ValueError(
                f"--dataset {self.dataset} and --model {self.model} do not fit: the digits (8x8) "
                f"train {' or '.join(DIGITS_MODELS)}, CIFAR the other models"
            )
        if self.data is None and not self.synthetic and self.dataset != "digits":
            raise ValueError("give --data DIR (the CIFAR python archive or folder) or --synthetic")
        return self

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


#: Fields whose flag is not ``--field-name``: a renamed one, and the switches that turn a default off.
_FLAGS = {
    "weight_decay": "--wd",
    **{k: "--no-" + k.replace("_", "-") for k in ("bn", "conv_bias", "augment", "diagnostics", "eval_train")},
    "progress": "--no-progress",
}


def _flag(field_name: str) -> str:
    """The ``brelax train`` flag of a TrainConfig field (``weight_decay``: ``--wd``, ``bn``: ``--no-bn``)."""
    return _FLAGS.get(field_name, "--" + field_name.replace("_", "-"))


#: What a run writes into ``OUT`` (``--force`` removes these, and only these, before it starts over).
RUN_OUTPUTS = ("ckpt.pt", "ckpt.pt" + DIGEST_SUFFIX, "metrics.jsonl", "summary.json", steplog.FOLDER)


def check_run_dir(cfg: TrainConfig) -> None:
    """Refuse a non-empty ``--out`` unless ``--resume`` or ``--force``; make sure it can be written.

    Called before any rank writes anything (all ranks see the same folder), with the
    folder's lock held. ``--resume`` needs ``OUT/ckpt.pt``; ``--force`` removes what an
    earlier run wrote (:data:`RUN_OUTPUTS`, ``steps/`` included, so ``verify`` never reads
    an older run's step log), refusing anything there that is not a regular file (a
    symlink, FIFO or device) or, for ``steps``, a plain folder.

    Raises
    ------
    UsageError (a ValueError)
        ``--out`` holds files (an earlier run would be overwritten), is a file, is not writable,
        or (``--force``) holds a run output that is not a regular file.
    ResumeMismatch
        ``--resume`` and no ``OUT/ckpt.pt``.
    """
    _args.output_dir(cfg.out)
    if cfg.resume:
        if not os.path.isfile(os.path.join(cfg.out, "ckpt.pt")):
            raise ResumeMismatch(_no_checkpoint(cfg.out))
        return
    held = sorted(f for f in os.listdir(cfg.out) if not (f.startswith(".brelax-write-check.") or f == LOCK_NAME))
    if held and not cfg.force:
        raise _args.UsageError(
            f"--out {cfg.out!r} is not empty ({', '.join(held[:3])}"
            f"{', ...' if len(held) > 3 else ''}); give --resume to continue that run, "
            "--force to start over in it, or another --out"
        )
    if cfg.force and _is_launcher_main():  # one process removes; the others have written nothing yet
        clear_run(cfg.out)


def clear_run(out: str) -> list:
    """Remove what a run wrote into ``out`` (:data:`RUN_OUTPUTS`); first refuse any that is not a plain file/folder.

    Returns
    -------
    list of str
        The paths removed.

    Raises
    ------
    UsageError
        A run output is a symlink, FIFO, device or socket (``steps``: anything but a real folder).
    """
    import shutil
    import stat

    found = []
    for name in RUN_OUTPUTS:
        path = os.path.join(out, name)
        if not os.path.lexists(path):
            continue
        mode = os.lstat(path).st_mode
        want_dir = name == steplog.FOLDER
        if not (stat.S_ISDIR(mode) if want_dir else stat.S_ISREG(mode)):
            raise _args.UsageError(
                f"--force: {path} is not a regular {'folder' if want_dir else 'file'} (a symlink, FIFO or device); "
                "refusing to replace it"
            )
        found.append((path, want_dir))
    for path, is_dir in found:
        if is_dir:
            shutil.rmtree(path)
        else:
            os.unlink(path)
    remove_stale_temp_files(out)
    return [p for p, _ in found]


def remove_stale_temp_files(out: str) -> list:
    """Delete the temporary files an interrupted atomic write left in ``out`` and its step log folder.

    :func:`brelax._atomic.atomic_write` names them ``.NAME.RANDOM.tmp`` beside ``NAME``
    (``.ckpt.pt.*.tmp``, 110 MB for VGG-11; ``steps/.epoch_0003.npz.*.tmp``).

    Returns
    -------
    list of str
        The paths removed.
    """
    gone = []
    for folder in (out, os.path.join(out, steplog.FOLDER)):
        for tmp in sorted(glob.glob(os.path.join(glob.escape(folder), ".*.tmp"))):
            if os.path.isfile(tmp):
                os.unlink(tmp)
                gone.append(tmp)
    return gone


def _read_rows(path: str) -> list:
    """The rows of a metrics.jsonl; a torn line (a run of an older version killed mid-append) is skipped, said so."""
    rows = []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                print(
                    f"brelax train: {path}:{i} is not a complete row (an interrupted write); dropped", file=sys.stderr
                )
                continue
            if isinstance(row, dict) and isinstance(row.get("epoch"), int):
                rows.append(row)
    return rows


def first_nonfinite(net: torch.nn.Module, optimizer=None) -> str | None:
    """The name of the first parameter, buffer or latent weight holding NaN or inf, or None.

    Every floating parameter and buffer of ``net`` (BatchNorm running statistics
    included) and every latent float weight ``y`` of a :class:`QuantOptimizer`.
    """
    for kind, named in (("parameter", net.named_parameters()), ("buffer", net.named_buffers())):
        for name, t in named:
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return f"{kind} {name}"
    for slot in getattr(optimizer, "slots", ()):
        y = optimizer.state.get(slot.param, {}).get("latent")
        if y is not None and not bool(torch.isfinite(y).all()):
            return f"latent weight y of {slot.name}"
    return None


@dataclass
class TrainResult:
    """``summary`` (JSON-able), the finalized model (holding ``P(y)``) and the optimizer."""

    summary: dict
    model: torch.nn.Module
    optimizer: QuantOptimizer


def digits_data(split_seed: int = 0):
    """scikit-learn's 8x8 digits as images: ``((train x, y), (test x, y)), (mean, std)``.

    The stratified split of :func:`brelax.problems.digits` with seed ``split_seed`` (fixed,
    so that every run sees the same test set); float32 images 1 x 8 x 8 in [0, 1]
    (pixel / 16); the normalisation is the training images' mean and std.
    """
    from ..problems import digits

    X_tr, y_tr, X_te, y_te = digits(split=True, seed=split_seed, standardize=False)
    img = lambda X: torch.from_numpy((X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8))  # noqa: E731
    tr = img(X_tr)
    norm = ((float(tr.mean()),), (float(tr.std()),))
    return ((tr, torch.from_numpy(y_tr)), (img(X_te), torch.from_numpy(y_te))), norm


def _data(cfg: TrainConfig, classes: int):
    if cfg.dataset == "digits":
        train, test = digits_data()[0]
    elif cfg.synthetic:
        train = synthetic_cifar(cfg.synthetic_n, classes, seed=cfg.seed)
        test = synthetic_cifar(max(cfg.synthetic_n // 5, 1), classes, seed=cfg.seed + 1)
    else:
        try:
            train = load_cifar(cfg.data, cfg.dataset, train=True)
            test = load_cifar(cfg.data, cfg.dataset, train=False)
        except (FileNotFoundError, ValueError, pickle.UnpicklingError) as e:  # one line naming the flag
            raise _args.UsageError(f"--data {cfg.data}: {e}") from None
    cut = lambda d, n: d if n is None else (d[0][:n], d[1][:n])  # noqa: E731
    return cut(train, cfg.limit_train), cut(test, cfg.limit_test)


def _model_kwargs(cfg: TrainConfig) -> dict:
    if cfg.model in DIGITS_MODELS:
        return {}
    return {"bn": cfg.bn, "conv_bias": cfg.conv_bias} if cfg.model == "vgg11" else {"shortcut": cfg.shortcut}


def build_optimizer(cfg: TrainConfig, net, steps_per_epoch: int) -> QuantOptimizer:
    """SGD over named groups (quantized conv weights first) wrapped in QuantOptimizer, epoch schedule."""
    names = {id(p): n for n, p in net.named_parameters()}
    groups = param_groups(net, get_set(cfg.set), axis=cfg.axis, include_last_fc=cfg.include_last_fc)
    for g in groups:
        g["params"] = [(names[id(p)], p) for p in g["params"]]
    base = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    p2 = None if cfg.phase2_epoch is None else cfg.phase2_epoch * steps_per_epoch
    ramp = schedules.linear_mu(p2) if cfg.mu_schedule == "linear" else None  # mu = t / p2, then Phase II
    return QuantOptimizer(
        base,
        method=cfg.method,
        qset=cfg.set,
        axis=cfg.axis,
        lam0=cfg.lam0,
        rho=cfg.rho,
        schedule="epoch",
        phase2_start=p2,
        mu_schedule=ramp,
        diagnostics=cfg.diagnostics,
    )


class _AOC:
    """Per-layer running summary of the diagnostics rows of one epoch."""

    def __init__(self):
        self.layers: dict = {}

    def add(self, diag: dict):
        for name, d in diag.get("layers", {}).items():
            a = self.layers.setdefault(name, {"n": 0, "sum": 0.0, "max": -math.inf, "nonpos": 0, "flips": 0})
            a["flips"] += int(d["flips"])
            a["dist_y"] = d["dist_y"]
            if math.isfinite(d["aoc"]):
                a["n"] += 1
                a["sum"] += d["aoc"]
                a["max"] = max(a["max"], d["aoc"])
                a["nonpos"] += d["aoc"] <= 0

    def summary(self) -> dict:
        per, n, s, mx, nonpos, flips = {}, 0, 0.0, -math.inf, 0, 0
        for name, a in self.layers.items():
            per[name] = {
                "aoc_mean": a["sum"] / a["n"] if a["n"] else None,
                "aoc_max": a["max"] if a["n"] else None,
                "aoc_nonpos_frac": a["nonpos"] / a["n"] if a["n"] else None,
                "flips": a["flips"],
                "dist_y": a.get("dist_y"),
            }
            n, s, mx, nonpos, flips = (
                n + a["n"],
                s + a["sum"],
                max(mx, a["max"]),
                nonpos + a["nonpos"],
                flips + a["flips"],
            )
        return {
            "aoc_mean": s / n if n else None,
            "aoc_max": mx if n else None,
            "aoc_nonpos_frac": nonpos / n if n else None,
            "flips": flips,
            "layers": per,
        }


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


@contextlib.contextmanager
def _holding(slots, values):
    """The quantized parameters hold ``values`` inside the block and their own values again after."""
    with torch.no_grad():
        saved = [s.param.detach().clone() for s in slots]
        for s, v in zip(slots, values, strict=True):
            s.param.copy_(v)
    try:
        yield
    finally:
        with torch.no_grad():
            for s, v in zip(slots, saved, strict=True):
                s.param.copy_(v)


def best_phase2(rows: list) -> dict | None:
    """The Phase II epochs of ``rows`` (metrics.jsonl) with the best test accuracy, by each evaluation point.

    Returns
    -------
    dict or None
        ``{"authors": {...}, "ours": {...}}``, each ``{"epoch", "test_acc", "test_acc_authors"}`` of the
        Phase II epoch with the largest ``test_acc_authors`` (the number the authors report: 89.21% for
        VGG-11 binary) and with the largest ``test_acc`` (at ``P(y)``). None without a Phase II epoch.
    """
    phase2 = [r for r in rows if r.get("phase") == 2]
    out = {}
    for who, key in (("authors", "test_acc_authors"), ("ours", "test_acc")):
        scored = [r for r in phase2 if r.get(key) is not None]
        if scored:
            r = max(scored, key=lambda r, key=key: r[key])
            out[who] = {k: r.get(k) for k in ("epoch", "test_acc", "test_acc_authors")}
    return out or None


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

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingStopped (brelax.errors.Diverged)
        The loss or the weights became NaN or inf; ``OUT/ckpt.pt`` is the last good epoch.
    RunLocked
        Another process is writing the same ``OUT``.
    ResumeMismatch
        ``--resume`` without a checkpoint, with settings that differ from the recorded run
        (without ``override``), or ``epochs`` below the checkpoint's epoch.
    IntegrityError
        ``OUT/ckpt.pt`` (resume) or ``--init`` does not match its recorded sha256.
    ValueError
        A bad config (every error above is one too).

    Examples
    --------
    >>> from brelax.torch.train import recipe_config, train
    >>> cfg = recipe_config(dataset="digits", epochs=1, out="runs/digits")  # doctest: +SKIP
    >>> train(cfg).summary["last"]["epoch"]  # doctest: +SKIP
    1
    """
    cfg.validate()
    if cfg.resume and not os.path.isfile(os.path.join(cfg.out, "ckpt.pt")):  # before anything is created
        raise ResumeMismatch(_no_checkpoint(cfg.out))
    _args.output_dir(cfg.out)  # creates it; before the lock, which lives in it
    with run_lock(cfg.out) if _is_launcher_main() else contextlib.nullcontext():
        check_run_dir(cfg)  # before the process group: no rank has written anything yet
        ctx = ddp.init_from_env(cfg.device)
        try:
            return _train(cfg, ctx, on_loss)
        finally:
            ddp.shutdown(ctx)


def _is_launcher_main() -> bool:
    """Rank 0 of a torchrun launch, or a plain process: the one that holds the run's lock."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class _Data:
    """The loaders of one run (BatchNorm statistics for P(y) are re-estimated on ``bn_images``)."""

    train: CifarLoader
    test: CifarLoader
    train_eval: CifarLoader | None
    bn_images: CifarLoader
    classes: int
    n_train: int


def _set_backends_and_seeds(cfg: TrainConfig, ctx) -> None:
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)  # warn, not fail, on ops without one
    elif ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)


def _make_loaders(cfg: TrainConfig, ctx) -> _Data:
    classes = CLASSES[cfg.dataset]
    (tr_x, tr_y), (te_x, te_y) = _data(cfg, classes)
    if cfg.batch_size % ctx.world_size:
        raise ValueError(f"batch_size={cfg.batch_size} (global) must be divisible by the {ctx.world_size} ranks")
    per_rank = cfg.batch_size // ctx.world_size
    # A last global batch smaller than the world would leave a rank with no samples in training.
    drop_last = ctx.world_size > 1 and 0 < len(tr_y) % cfg.batch_size < ctx.world_size
    kw = dict(
        device=ctx.device,
        seed=cfg.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
        channels_last=cfg.channels_last,
        norm=digits_data()[1] if cfg.dataset == "digits" else None,
    )
    # The digits are not augmented: a 4-pixel crop of an 8x8 image would destroy it.
    augment = cfg.augment and cfg.dataset != "digits"
    eval_bs = max(1, cfg.eval_batch_size // ctx.world_size)
    return _Data(
        train=CifarLoader(
            tr_x,
            tr_y,
            per_rank,
            train=True,
            augment=augment,
            drop_last=drop_last,
            replacement=cfg.sampling == "with_replacement",
            **kw,
        ),
        test=CifarLoader(te_x, te_y, eval_bs, train=False, **kw),
        train_eval=CifarLoader(tr_x, tr_y, eval_bs, train=False, **kw) if cfg.eval_train else None,
        bn_images=CifarLoader(tr_x, tr_y, eval_bs, train=False, **kw),
        classes=classes,
        n_train=len(tr_y),
    )


def _make_model_and_optimizer(cfg: TrainConfig, ctx, data: _Data):
    """``(net, fwd, opt)``: the model (``--init`` loaded and checked), its DDP/compiled forward, the optimizer."""
    net = build_model(cfg.model, data.classes, seed=cfg.seed, **_model_kwargs(cfg))
    if cfg.init and not cfg.resume:  # a resume takes every weight from the checkpoint
        checkpoint.load_matching(net, checkpoint.float_init_state(cfg.init), f"--init {cfg.init}")
    net = net.to(ctx.device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    fwd = ddp.wrap(net, ctx, cfg.sync_bn)
    net = checkpoint.unwrap(fwd)  # SyncBatchNorm conversion may have replaced modules
    opt = build_optimizer(cfg, net, len(data.train))
    if cfg.compile:
        fwd = torch.compile(fwd)
    return net, fwd, opt


#: TrainConfig fields that say how to run, not what: never compared on --resume.
NOT_COMPARED = ("out", "resume", "force", "override", "progress", "quiet", "workers", "data", "device", "epochs")


def config_differences(recorded: dict, cfg: TrainConfig) -> dict:
    """``{field: (recorded, given)}`` for every compared field of ``cfg`` that differs from the recorded run.

    Every :class:`TrainConfig` field is compared except :data:`NOT_COMPARED`; a field the
    recorded config lacks (a checkpoint from before it existed) counts as its default.
    """
    default = TrainConfig()
    out = {}
    for f in dataclasses.fields(TrainConfig):
        if f.name in NOT_COMPARED:
            continue
        old = recorded.get(f.name, getattr(default, f.name))
        new = getattr(cfg, f.name)
        if _jsonish(old) != _jsonish(new):
            out[f.name] = (old, new)
    return out


def _jsonish(v):
    return list(v) if isinstance(v, tuple) else v


def recorded_config(out: str) -> dict:
    """The config recorded in ``OUT/ckpt.pt`` (integrity-checked), for ``brelax train --resume``.

    Raises
    ------
    ResumeMismatch
        No checkpoint in ``out``.
    IntegrityError, CheckpointError
        The checkpoint does not match its sha256, or cannot be read.
    """
    path = os.path.join(out, "ckpt.pt")
    if not os.path.isfile(path):
        raise ResumeMismatch(_no_checkpoint(out))
    return dict(checkpoint.load(path, what="--resume")["config"])


def _no_checkpoint(out: str) -> str:
    return (
        f"--resume: no checkpoint {os.path.join(out, 'ckpt.pt')} to continue from; "
        "drop --resume to start a new run (--force to start over in a folder holding files)"
    )


def _restore(cfg: TrainConfig, net, opt, ckpt_path: str) -> tuple[int, list]:
    """Load the checkpoint for ``--resume``; ``(epoch reached, overrides so far)``.

    Every compared field of ``cfg`` must equal the recorded one; with ``cfg.override`` the
    differing ones apply from here on and are appended to the run's ``overrides`` record.
    """
    ck = checkpoint.load(ckpt_path, what="--resume")  # on the CPU: RNG states must stay there
    start = int(ck["epoch"])
    diffs = config_differences(ck["config"], cfg)
    fixed = [k for k in diffs if k in RUN_KEYS]
    if fixed:
        raise ResumeMismatch(
            f"--resume: {ckpt_path} is another run: "
            + ", ".join(_changed(k, *diffs[k]) for k in fixed)
            + " (these define the model, data or method and cannot change, not even with --override)"
        )
    if diffs and not cfg.override:
        raise ResumeMismatch(
            f"--resume: {ckpt_path} was run with other settings: "
            + ", ".join(_changed(k, old, new) for k, (old, new) in diffs.items())
            + "; give them as recorded (or not at all), or add --override to continue with the new ones"
        )
    if cfg.epochs < start:
        raise ResumeMismatch(f"--resume: --epochs {cfg.epochs} is below epoch {start}, which {ckpt_path} has reached")
    net.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"], strict=not diffs)  # with --override the new values win
    checkpoint.set_rng_state(ck["rng"])
    history = list(ck.get("overrides", []))
    if diffs:
        history.append({"epoch": start, "step": opt.step_count, "changed": {k: list(v) for k, v in diffs.items()}})
    return start, history


def _changed(field_name: str, old, new) -> str:
    """One difference for a message: the flag, the recorded value and the given one."""
    flag = _flag(field_name)
    if flag.startswith("--no-"):  # a switch: name the field, whose values say which way it was set
        return f"{flag} ({field_name} recorded {old!r}, given {new!r})"
    return f"{flag} recorded {old!r}, given {new!r}"


def _steplog_meta(cfg: TrainConfig, opt, data: _Data, ctx, history: list) -> dict:
    """``steps/meta.json``: the run's settings as they are now, and every override with the step it applies from.

    ``plain_sgd`` and ``direction`` hold for the whole run: an earlier segment with momentum
    or weight decay makes the run not plain SGD, whatever the current flags say.
    """
    meta = steplog.run_meta(cfg, opt, len(data.train), data.n_train, ctx.world_size)
    if history:
        meta["overrides"] = history
        earlier = [
            v[0]
            for h in history
            for k, v in h["changed"].items()
            if k in ("momentum", "weight_decay")  # the values before each change
        ]
        if meta.get("plain_sgd") and any(v != 0 for v in earlier):
            meta["plain_sgd"] = False
            meta["direction"] = "anchor step"
    return meta


class _Checkpointer:
    """Writes ``OUT/ckpt.pt`` (and its sha256) after checking every tensor is finite."""

    def __init__(self, cfg, ctx, net, opt, classes, history):
        self.cfg, self.ctx, self.net, self.opt, self.classes = cfg, ctx, net, opt, classes
        self.history = history
        self.path = os.path.join(cfg.out, "ckpt.pt")
        self.bn_at_quantized: dict = {}

    def save(self, epoch: int) -> None:
        net, opt, ctx = self.net, self.opt, self.ctx
        ddp.broadcast_buffers(net, ctx)
        # Never write a checkpoint holding NaN/inf (e.g. BatchNorm running_var after a divergence): stop instead.
        bad = first_nonfinite(net, opt)
        if not ddp.all_true(torch.tensor(bad is None), ctx):
            raise TrainingStopped(
                f"non-finite {bad or 'tensor on another rank'} at epoch {epoch} "
                f"(lr={opt.param_groups[0]['lr']:g}); stopped, {self.path} keeps "
                + (f"epoch {epoch - 1}, the last good one" if epoch else "nothing (check --init)")
            )
        if ctx.is_main:
            checkpoint.save_atomic(
                {
                    "format": checkpoint.FORMAT,
                    "epoch": epoch,
                    "config": self.cfg.to_dict(),
                    "overrides": self.history,
                    "model_name": self.cfg.model,
                    "model_kwargs": _model_kwargs(self.cfg),
                    "num_classes": self.classes,
                    "model": net.state_dict(),
                    # BatchNorm statistics re-estimated at P(y) by the last evaluation ("model" keeps the
                    # training ones, which a resume needs); `brelax export` writes these with P(y)
                    "bn_at_quantized": self.bn_at_quantized,
                    "optimizer": opt.state_dict(),
                    "rng": checkpoint.rng_state(),
                    "loader_epoch": epoch,
                    "world_size": ctx.world_size,
                },
                self.path,
            )
        ddp.barrier(ctx)


def _prepare_metrics(cfg: TrainConfig, ctx, start: int, metrics_path: str) -> list:
    """Remove stale temporary files; keep the metrics rows up to the checkpoint's epoch (rank 0)."""
    rows: list = []
    if ctx.is_main:
        os.makedirs(cfg.out, exist_ok=True)
        for tmp in remove_stale_temp_files(cfg.out):
            print(f"brelax train: removed {tmp}, left by an interrupted write", file=sys.stderr)
        # The metrics row of an epoch is written before its checkpoint, so rows past the checkpoint are
        # dropped here (that epoch runs again); an interruption between the two writes loses nothing.
        if start and os.path.isfile(metrics_path):
            rows = [r for r in _read_rows(metrics_path) if r["epoch"] <= start]
        checkpoint.write_text_atomic(metrics_path, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


@dataclass
class _EpochRun:
    """What one epoch's training loop measured (before evaluation)."""

    lr: float
    lam: float
    mu: float
    phase: int
    t0: float
    train_s: float
    run_loss: float
    run_correct: float
    seen: float
    aoc: dict
    x_last: list | None
    mu_last: float | None
    bn_at_quantized: dict = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def _frozen_state(net):
    """A forward pass that changes nothing: BatchNorm running statistics and the RNG are restored after it."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in bns]
    rng = torch.get_rng_state()
    for m in bns:
        m.momentum = 0.0  # running = 1 * running + 0 * batch: the statistics stay as they are
    try:
        yield
    finally:
        for m, (mom, n) in zip(bns, saved, strict=True):
            m.momentum = mom
            if n is not None:
                m.num_batches_tracked.copy_(n)
        torch.set_rng_state(rng)


def same_batch_check(cfg, ctx, fwd, net, params, xb, yb, m, loss_t, step_norm2) -> dict:
    r"""``f_B(x_{t+1})`` and the secant of ``grad f_B`` on the step's own batch, in the same BatchNorm mode.

    Called right after ``opt.step()``, while ``p.grad`` still holds ``grad f_B(x_t)`` and the parameters
    hold ``x_{t+1}``: one more forward and backward on the same batch (train mode, so BatchNorm
    normalises with the batch's statistics as the step did; running statistics and the RNG are left
    as they were, so the run is bitwise the one without checks). The step log's ``batch_f``,
    ``batch_f_next``, ``batch_L_local`` columns; :class:`theory.BatchDescent` checks Theorem II.4 on them.
    """
    old = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]
    for p in params:
        p.grad = None
    with _frozen_state(net):
        with _autocast(cfg, ctx.device):
            out = fwd(xb)
        ce = F.cross_entropy(out.float(), yb, reduction="sum")
        (ce * (ctx.world_size / m)).backward()
    diff2 = sum(
        float(((torch.zeros_like(o) if p.grad is None else p.grad) - o).double().pow(2).sum())
        for p, o in zip(params, old, strict=True)
    )
    d = math.sqrt(step_norm2) if step_norm2 > 0 else math.nan
    return {
        "batch_f": loss_t,
        "batch_f_next": float(ce.detach()) / max(len(yb), 1),
        "batch_L_local": math.sqrt(diff2) / d if d == d else math.nan,
    }


def _train_epoch(cfg, ctx, epoch, fwd, net, opt, data: _Data, slog, on_loss, ckpt_path) -> _EpochRun:
    """The minibatch steps of one epoch, the step log rows, ``epoch_end``; stops on a non-finite loss or step."""
    loader = data.train
    lr = schedules.multistep(cfg.lr, cfg.milestones, cfg.gamma)(epoch)
    for g in opt.param_groups:
        g["lr"] = lr
    loader.set_epoch(epoch)
    fwd.train()
    aoc, run = _AOC(), torch.zeros(3, dtype=torch.float64, device=ctx.device)
    # lam, mu and phase of the epoch's first forward pass (Phase II may start mid-epoch).
    lam, mu, phase, t0 = opt.lam, opt.mu, opt.phase, time.perf_counter()
    authors = get_method(cfg.method).quantizes and bool(opt.slots)
    x_last, mu_last = None, None
    sizes = loader.global_batch_sizes()
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, (xb, yb) in enumerate(_progress(loader, cfg, ctx, f"epoch {epoch + 1}/{cfg.epochs}")):
        m = sizes[i]  # the global batch this rank's part belongs to
        with _autocast(cfg, ctx.device):
            out = fwd(xb)
        ce = F.cross_entropy(out.float(), yb, reduction="sum")
        if on_loss is not None:
            ce = on_loss(opt.step_count, ce)
        if not ddp.all_true(torch.isfinite(ce.detach()), ctx):
            slog.end_epoch(epoch + 1, partial=True)
            raise TrainingStopped(
                f"non-finite loss at epoch {epoch + 1}, step {opt.step_count + 1} "
                f"(lr={lr:g}); stopped, {ckpt_path} keeps the last good epoch"
            )
        # Sum over the rank's samples, scaled so that DDP's gradient mean is the global-batch mean.
        (ce * (ctx.world_size / m)).backward()
        if i == len(sizes) - 1 and authors:  # the authors' evaluation point: the x of the epoch's last step
            x_last, mu_last = [s.param.detach().clone() for s in opt.slots], opt.mu
        pair = math.nan
        if slog.enabled and slog.noise_due(opt.step_count):  # a second minibatch gradient at the same x
            xb2, yb2 = steplog.independent_batch(loader, len(yb), opt.step_count)
            pair = steplog.noise_pair(net, lambda x2=xb2, y2=yb2: F.cross_entropy(fwd(x2).float(), y2), params)
        step_t = opt.step_count
        try:
            opt.step()
        except FloatingPointError as e:
            slog.end_epoch(epoch + 1, partial=True)
            raise TrainingStopped(f"{e}; stopped at epoch {epoch + 1}, {ckpt_path} keeps the last good epoch") from None
        check = None
        if slog.enabled and cfg.check_every and step_t % cfg.check_every == 0 and ctx.world_size == 1:
            loss_t = float(ce.detach()) / max(len(yb), 1)
            nd = float(opt.last_diagnostics.get("total", {}).get("step_norm2", math.nan))
            check = same_batch_check(cfg, ctx, fwd, net, params, xb, yb, m, loss_t, nd)
        opt.zero_grad(set_to_none=True)
        run += torch.stack(
            [
                ce.detach().double(),
                (out.argmax(1) == yb).sum().double(),
                torch.tensor(float(len(yb)), dtype=torch.float64, device=ctx.device),
            ]
        )
        if cfg.diagnostics:
            aoc.add(opt.last_diagnostics)
            slog.record(step_t, epoch + 1, float(ce.detach()) / max(len(yb), 1), lr, opt.last_diagnostics, pair, check)
    train_s = time.perf_counter() - t0
    opt.epoch_end()
    slog.replace_last(opt.last_diagnostics)  # epoch_end may re-form x with the new mu
    slog.end_epoch(epoch + 1)  # before the metrics row and the checkpoint of the epoch
    ddp.broadcast_buffers(net, ctx)
    run_loss, run_correct, seen = ddp.all_reduce_sum(run, ctx).tolist()
    return _EpochRun(lr, lam, mu, phase, t0, train_s, run_loss, run_correct, seen, aoc.summary(), x_last, mu_last)


def _evaluate_epoch(cfg, ctx, epoch, net, opt, data: _Data, e: _EpochRun, ckpt_path) -> dict:
    """The metrics row of an epoch: P(y) (BN re-estimated) and the authors' point; stops on a non-finite value."""
    quantizes = get_method(cfg.method).quantizes
    quant = opt.quantized() if quantizes else contextlib.nullcontext()
    with quant, bn.recalibrated(net, data.bn_images if quantizes else None, ctx, BN_IMAGES):
        test_loss, test_acc = evaluate(net, data.test, ctx, cfg)
        # the statistics P(y) was evaluated with: the checkpoint keeps them for `brelax export`
        e.bn_at_quantized = bn.statistics(net) if quantizes else {}
        tr_loss, tr_acc = evaluate(net, data.train_eval, ctx, cfg) if data.train_eval else (None, None)
    # f at the training iterate x_{t_{e+1}} (the point SGD moves; epoch_end already re-formed it with the new mu),
    # for Theorem II.10 at epoch ends (theory.EpochBound): eval mode and the loader's fixed order, so no RNG draw
    # and no BatchNorm statistic changes; for a float method train_loss is already at x.
    tr_loss_x = tr_loss
    if quantizes and data.train_eval:
        tr_loss_x = evaluate(net, data.train_eval, ctx, cfg)[0]
    test_loss_authors = test_acc_authors = None
    if e.x_last is not None:
        with _holding(opt.slots, e.x_last):
            test_loss_authors, test_acc_authors = evaluate(net, data.test, ctx, cfg)
    row = {
        "epoch": epoch + 1,
        "step": opt.step_count,
        "lr": e.lr,
        "lam": e.lam,
        "mu": e.mu,
        "phase": e.phase,
        "eval_weights": "quantized" if quantizes else "float",
        "train_loss": tr_loss,
        "train_acc": tr_acc,
        "train_loss_x": tr_loss_x,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "running_loss": e.run_loss / e.seen,
        "running_acc": e.run_correct / e.seen,
        "test_loss_authors": test_loss_authors,
        "test_acc_authors": test_acc_authors,
        "mu_authors": e.mu_last,
        **e.aoc,
        "seconds": time.perf_counter() - e.t0,
        "images_per_s": e.seen / e.train_s,
    }
    losses = {
        "test_loss": test_loss,
        "train_loss": tr_loss,
        "train_loss_x": tr_loss_x,
        "running_loss": e.run_loss / e.seen,
    }
    # Before the row and the checkpoint: every parameter, buffer (BN running_var can be inf while
    # every loss is finite) and latent weight, and the losses; name the tensor where there is one.
    bad = [t for t in (first_nonfinite(net, opt),) if t]
    bad += [f"{k} = {v}" for k, v in losses.items() if v is not None and not math.isfinite(v)]
    if not ddp.all_true(torch.tensor(not bad), ctx):
        raise TrainingStopped(
            f"non-finite {', '.join(bad) or 'tensor on another rank'} at epoch {epoch + 1} "
            f"(lr={e.lr:g}); stopped, {ckpt_path} keeps epoch {epoch}, the last good one"
        )
    return checkpoint.json_safe(row)


def _write_summary(cfg, ctx, net, opt, data: _Data, row, rows, ckpt_path, metrics_path) -> TrainResult:
    if get_method(cfg.method).quantizes:
        opt.finalize()
        bn.recalibrate(net, data.bn_images, ctx, BN_IMAGES)  # the returned model: P(y) with its own statistics
    summary = {
        "out": cfg.out,
        "checkpoint": ckpt_path,
        "epochs": cfg.epochs,
        "world_size": ctx.world_size,
        "device": str(ctx.device),
        "last": row if row is not None else checkpoint.last_jsonl_row(metrics_path),
        "config": cfg.to_dict(),
        "best_phase2": best_phase2(rows) if ctx.is_main else None,
    }
    if ctx.is_main:
        checkpoint.write_text_atomic(os.path.join(cfg.out, "summary.json"), json.dumps(summary, indent=2) + "\n")
    return TrainResult(summary, net, opt)


def _train(cfg, ctx, on_loss):
    """The run, step by step: seeds, data, model and optimizer, resume, then epochs of train/evaluate/save."""
    _set_backends_and_seeds(cfg, ctx)
    data = _make_loaders(cfg, ctx)
    net, fwd, opt = _make_model_and_optimizer(cfg, ctx, data)
    ckpt_path = os.path.join(cfg.out, "ckpt.pt")
    metrics_path = os.path.join(cfg.out, "metrics.jsonl")
    start, history = _restore(cfg, net, opt, ckpt_path) if cfg.resume else (0, [])
    ckpt = _Checkpointer(cfg, ctx, net, opt, data.classes, history)
    rows = _prepare_metrics(cfg, ctx, start, metrics_path)
    if start == 0:
        ckpt.save(0)
    slog = steplog.StepLog(cfg.out, cfg.diagnostics and ctx.is_main, cfg.noise_every)
    slog.start(_steplog_meta(cfg, opt, data, ctx, history), opt.first_diagnostics, start)
    row = None
    for epoch in range(start, cfg.epochs):
        e = _train_epoch(cfg, ctx, epoch, fwd, net, opt, data, slog, on_loss, ckpt_path)
        row = _evaluate_epoch(cfg, ctx, epoch, net, opt, data, e, ckpt_path)
        ckpt.bn_at_quantized = e.bn_at_quantized
        if ctx.is_main:  # the row first, then the checkpoint that it belongs to (see the module docstring)
            rows.append(row)
            checkpoint.write_text_atomic(metrics_path, "".join(json.dumps(r) + "\n" for r in rows))
        ckpt.save(epoch + 1)
        if ctx.is_main and not cfg.quiet:  # --no-progress hides the bars only; --quiet these lines too
            print(
                f"epoch {epoch + 1}/{cfg.epochs}  test_acc {row['test_acc']:.4f}  test_loss {row['test_loss']:.4f}  "
                f"lr {e.lr:g}  lam {e.lam:.4g}  mu {e.mu:.4f}  flips {row['flips']}  "
                f"{row['images_per_s']:.0f} img/s",
                flush=True,
            )
    return _write_summary(cfg, ctx, net, opt, data, row, rows, ckpt_path, metrics_path)
