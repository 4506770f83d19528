"""The ``brelax train`` command line: flags mapped one to one onto :class:`~brelax.torch.train.TrainConfig`.

Exit codes: 0 done, 2 bad input (a missing archive, a bad flag value), 3 stopped
on a NaN or inf (the last good checkpoint is kept).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from .models import MODEL_NAMES
from .optimizer import METHOD_NAMES
from .train import CLASSES, TrainConfig, TrainingStopped, train

def add_arguments(p) -> None:
    d = TrainConfig()
    g = p.add_argument_group("data and model")
    g.add_argument("--dataset", default=d.dataset, choices=tuple(CLASSES))
    g.add_argument("--data", metavar="DIR", help="CIFAR python archive (.tar.gz), its folder, or the folder holding it")
    g.add_argument("--synthetic", action="store_true", help="random CIFAR-shaped data (smoke runs); no --data needed")
    g.add_argument("--synthetic-n", type=int, default=d.synthetic_n, help="synthetic training images (test: n/5)")
    g.add_argument("--limit-train", type=int, help="use only the first N training images")
    g.add_argument("--limit-test", type=int, help="use only the first N test images")
    g.add_argument("--no-augment", dest="augment", action="store_false", help="no random crop/flip")
    g.add_argument("--model", default=d.model, choices=MODEL_NAMES)
    g.add_argument("--no-bn", dest="bn", action="store_false", help="VGG-11 without BatchNorm")
    g.add_argument("--shortcut", default=d.shortcut, choices=("A", "B"), help="ResNet shortcut option")
    g.add_argument("--init", metavar="CKPT", help="start from this float model (state_dict or brelax checkpoint)")
    g = p.add_argument_group("quantization")
    g.add_argument("--set", default=d.set, help="binary, ternary, uniform:B, levels:L0,L1,... (optionally @SCALE)")
    g.add_argument("--method", default=d.method, choices=METHOD_NAMES)
    g.add_argument("--axis", type=_axis, default=d.axis, help="0: a scale per output channel; none: per tensor")
    g.add_argument("--include-last-fc", action="store_true", help="quantize the classifier too")
    g.add_argument("--lam0", type=float, default=d.lam0)
    g.add_argument("--rho", type=float, default=d.rho, help="lam is multiplied by rho every epoch")
    g.add_argument("--phase2-epoch", type=_opt_int, default=d.phase2_epoch,
                   help="Phase II (mu = 1) from this epoch; 'none': never")
    g.add_argument("--no-diagnostics", dest="diagnostics", action="store_false", help="skip the AOC/flip statistics")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=d.epochs)
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="global batch (split over DDP ranks)")
    g.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size)
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--momentum", type=float, default=d.momentum)
    g.add_argument("--wd", dest="weight_decay", type=float, default=d.weight_decay)
    g.add_argument("--milestones", type=_int_list, default=d.milestones, help="lr drop epochs, e.g. 80,140")
    g.add_argument("--gamma", type=float, default=d.gamma, help="lr factor at each milestone")
    g.add_argument("--seed", type=int, default=d.seed)
    g = p.add_argument_group("run")
    g.add_argument("--out", default=d.out, metavar="RUN", help="folder for metrics.jsonl, ckpt.pt, summary.json")
    g.add_argument("--resume", action="store_true", help="continue from RUN/ckpt.pt")
    g.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu, cuda, cuda:N")
    g.add_argument("--amp", default=d.amp, choices=("none", "bf16"), help="bf16 autocast")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--channels-last", action="store_true")
    g.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm under DDP (GPUs only)")
    g.add_argument("--deterministic", action="store_true", help="deterministic GPU kernels (slower)")
    g.add_argument("--workers", type=int, default=d.workers,
                   help="accepted for compatibility; the data are tensors in memory, there are no workers")
    g.add_argument("--no-eval-train", dest="eval_train", action="store_false",
                   help="skip the quantized evaluation on the training set")
    g.add_argument("--no-progress", dest="progress", action="store_false")


def _axis(s):
    return None if s.lower() in ("none", "tensor") else int(s)


def _opt_int(s):
    return None if s.lower() == "none" else int(s)


def _int_list(s):
    return [int(v) for v in s.split(",") if v.strip()]


def config_from_args(args) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def main(args) -> int:
    cfg = config_from_args(args)
    try:
        result = train(cfg)
    except TrainingStopped as e:
        print(f"brelax train: {e}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as e:
        print(f"brelax train: {e}", file=sys.stderr)
        return 2
    last = result.summary["last"] or {}
    if result.summary["device"] and (int(os.environ.get("RANK", "0")) == 0):
        print(json.dumps({k: last.get(k) for k in ("epoch", "test_acc", "test_loss", "train_acc", "flips")}))
    return 0
