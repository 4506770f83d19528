"""The ``brelax train`` command line: flags mapped one to one onto :class:`~brelax.torch.train.TrainConfig`.

Exit codes (:data:`brelax.errors.EXIT_CODES`, mapped by :func:`brelax.cli.main`): 0 done,
2 bad input (a missing archive, a bad flag value, an ``--out`` holding or locked by
another run, a checkpoint whose sha256 does not match, flags that differ from the
run being resumed; one line), 3 stopped on a NaN or inf (the last good checkpoint is
kept), 130 Ctrl-C and 143 SIGTERM (the last checkpoint is intact; continue with ``--resume``).
"""

from __future__ import annotations

import dataclasses
import json
import os

from ..steps import methods_help
from .models import MODEL_NAMES
from .optimizer import METHOD_NAMES
from .train import (
    CLASSES,
    DATASET_DEFAULTS,
    DATASET_MODELS,
    RECIPES,
    TrainConfig,
    recipe_config,
    recorded_config,
    train,
)


def add_arguments(p) -> None:
    d = TrainConfig()
    p.add_argument(
        "--recipe",
        default=d.recipe,
        choices=tuple(RECIPES),
        help="a named bundle of defaults (yin2018: the authors' VGG-11 run, see the README; parq: a "
        "linear mu ramp, per channel); "
        "every flag given explicitly overrides it; the defaults shown below are recipe default's",
    )
    g = p.add_argument_group("data and model")
    g.add_argument(
        "--dataset",
        default=d.dataset,
        choices=tuple(CLASSES),
        help=f"(default: {d.dataset}) digits: its own defaults where no flag is given: "
        + ", ".join(f"{k} {v}" for k, v in DATASET_DEFAULTS["digits"].items()),
    )
    g.add_argument("--data", metavar="DIR", help="CIFAR python archive (.tar.gz), its folder, or the folder holding it")
    g.add_argument("--synthetic", action="store_true", help="random CIFAR-shaped data (smoke runs); no --data needed")
    g.add_argument("--synthetic-n", type=int, default=d.synthetic_n, help="synthetic training images (test: n/5)")
    g.add_argument("--limit-train", type=int, help="use only the first N training images")
    g.add_argument("--limit-test", type=int, help="use only the first N test images")
    g.add_argument("--no-augment", dest="augment", action="store_false", help="no random crop/flip")
    g.add_argument(
        "--model",
        default=d.model,
        choices=MODEL_NAMES,
        help=f"(default: {d.model}; with --dataset digits: {DATASET_MODELS['digits']})",
    )
    g.add_argument("--no-bn", dest="bn", action="store_false", help="VGG-11 without BatchNorm")
    g.add_argument("--no-conv-bias", dest="conv_bias", action="store_false", help="VGG-11 convs without biases")
    g.add_argument("--shortcut", default=d.shortcut, choices=("A", "B"), help="ResNet shortcut option")
    g.add_argument("--init", metavar="CKPT", help="start from this float model (state_dict or brelax checkpoint)")
    g = p.add_argument_group("quantization")
    g.add_argument("--set", default=d.set, help="binary, ternary, uniform:B, levels:L0,L1,... (optionally @SCALE)")
    g.add_argument("--method", default=d.method, choices=METHOD_NAMES, help=methods_help())
    g.add_argument("--axis", type=_axis, default=d.axis, help="0: a scale per output channel; none: per tensor")
    g.add_argument("--include-last-fc", action="store_true", help="quantize the classifier too")
    g.add_argument("--lam0", type=float, default=d.lam0)
    g.add_argument("--rho", type=float, default=d.rho, help="lam is multiplied by rho every epoch")
    g.add_argument(
        "--mu-schedule",
        default=d.mu_schedule,
        choices=("geometric", "linear"),
        help="geometric: mu = lam/(1 + lam) with lam0, rho; linear: mu = t/T up to Phase II (T its step)",
    )
    g.add_argument(
        "--phase2-epoch", type=_opt_int, default=d.phase2_epoch, help="Phase II (mu = 1) from this epoch; 'none': never"
    )
    g.add_argument(
        "--no-diagnostics",
        dest="diagnostics",
        action="store_false",
        help="skip the per-step diagnostics and the step log RUN/steps/ (see brelax.torch.steplog)",
    )
    g.add_argument(
        "--noise-every",
        type=int,
        default=d.noise_every,
        metavar="K",
        help="every K steps a second minibatch gradient at the same x, for ||g - g'||^2 (0: never)",
    )
    g.add_argument(
        "--check-every",
        type=int,
        default=d.check_every,
        metavar="K",
        help="every K steps f_B(x_(t+1)) and its gradient on the step's own batch, for the descent guarantee "
        "of brelax verify (about 4%% more time at K = 25; 0: never)",
    )
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
    g.add_argument(
        "--sampling",
        default=d.sampling,
        help="training batches: shuffle (a permutation per epoch) or with_replacement (i.i.d. positions, the "
        "sampling of Theorems II.10-II.11 and verify's epoch_bound)",
    )
    g = p.add_argument_group("run")
    g.add_argument("--out", default=d.out, metavar="RUN", help="folder for metrics.jsonl, ckpt.pt, summary.json")
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue from RUN/ckpt.pt (required); flags not given take the recorded values, a given flag "
        "that differs from the recorded run is refused unless --override",
    )
    g.add_argument(
        "--override",
        action="store_true",
        help="with --resume: continue with the flags given even where they differ from the recorded run "
        "(momentum, lr, lam0, rho, phase 2, ...); each change is recorded in the checkpoint and steps/meta.json",
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="start over in a RUN folder holding an earlier run: its checkpoint, metrics, summary and steps/ are "
        "removed first (regular files only; a symlink, FIFO or device there is refused)",
    )
    g.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu, cuda, cuda:N")
    g.add_argument("--amp", default=d.amp, choices=("none", "bf16"), help="bf16 autocast")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--channels-last", action="store_true")
    g.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm under DDP (GPUs only)")
    g.add_argument("--deterministic", action="store_true", help="deterministic GPU kernels (slower)")
    g.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        help="accepted for compatibility; the data are tensors in memory, there are no workers",
    )
    g.add_argument(
        "--no-eval-train",
        dest="eval_train",
        action="store_false",
        help="skip the quantized evaluation on the training set",
    )
    g.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bars (the one-line summary of each epoch stays)",
    )
    g.add_argument("--quiet", action="store_true", help="no per-epoch summary lines either")
    _note_given(p)  # last: it marks every option added above


class _Given:
    """Mixin for argparse actions: an option given on the command line adds its dest to ``namespace.given_flags``."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.given_flags = set(getattr(namespace, "given_flags", ())) | {self.dest}
        super().__call__(parser, namespace, values, option_string)


def _note_given(p) -> None:
    """Make every option of ``p`` record itself in ``args.given_flags`` when the user gives it.

    This is how a flag beats ``--recipe`` even when its value equals the built-in
    default (``--recipe yin2018 --axis 0``): a recipe fills only the fields whose
    flags were not given.
    """
    p.set_defaults(given_flags=frozenset())
    for action in p._actions:
        if action.option_strings and not isinstance(action, _Given):
            action.__class__ = type(action.__class__.__name__, (_Given, action.__class__), {})


def _axis(s):
    return None if s.lower() in ("none", "tensor") else int(s)


_axis.__name__ = "axis"  # argparse names the type in "invalid axis value"


def _opt_int(s):
    return None if s.lower() == "none" else int(s)


def _int_list(s):
    return [int(v) for v in s.split(",") if v.strip()]


def config_from_args(args) -> TrainConfig:
    """The TrainConfig of ``--recipe`` (default: ``"default"``) with the flags given explicitly on top.

    Without ``args.given_flags`` (a Namespace built by hand) every field in ``args`` counts as given.
    """
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"recipe"}
    given = getattr(args, "given_flags", None)
    values = {k: v for k, v in vars(args).items() if k in names and (given is None or k in given)}
    if getattr(args, "resume", False) and given is not None:
        # A resume continues the recorded run: every flag not given takes its recorded value, so only
        # what the user typed can differ (and is refused unless --override, by brelax.torch.train).
        recorded = recorded_config(args.out)
        # --data, --device, --epochs too (not compared, but the run's own unless given); never the run control.
        keep = {k: v for k, v in recorded.items() if k in names and k not in ("out", "resume", "force", "override")}
        values = {**keep, **values}
        return recipe_config(recorded.get("recipe", "default") if "recipe" not in given else args.recipe, **values)
    return recipe_config(getattr(args, "recipe", "default"), **values)


def main(args) -> int:
    """Train; every error propagates to :func:`brelax.cli.main`, which maps it to the exit code."""
    cfg = config_from_args(args)
    # Bad input, a divergence (TrainingStopped), Ctrl-C and SIGTERM propagate: brelax.cli.main maps them
    # to the exit codes 2, 3, 130 and 143.
    result = train(cfg)
    last = result.summary["last"] or {}
    if result.summary["device"] and (int(os.environ.get("RANK", "0")) == 0):
        keys = ("epoch", "test_acc", "test_loss", "train_acc", "test_acc_authors", "flips")
        print(json.dumps({**{k: last.get(k) for k in keys}, "best_phase2": result.summary.get("best_phase2")}))
    return 0
