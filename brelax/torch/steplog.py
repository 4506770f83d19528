r"""The per-step log of a ``brelax train`` run, and :func:`load_run`, which reads it as a Trajectory.

With diagnostics on (the default; ``--no-diagnostics`` turns both off), ``brelax train``
writes into ``RUN/steps/``:

``meta.json``
    The run: method, set, lr schedule (``lr``, ``milestones``, ``gamma``, per epoch),
    mu schedule (``lam0``, ``rho``, ``phase2_epoch``, ``steps_per_epoch``, per epoch),
    batch (``batch_size``, ``n_train``, ``world_size``, ``sampling``), the base optimizer's
    ``momentum`` and ``weight_decay`` (``plain_sgd``: both 0, so that ``y_{t+1} = y_t - lr_t g_t``),
    ``direction`` (what ``g_t`` is: ``"gradient"`` for plain SGD, else ``"anchor step"``
    ``(y_t - y_{t+1})/lr_t``, see :attr:`brelax.torch.QuantOptimizer.direction`),
    ``row_min``, ``levels``, ``n_quantized``,
    the quantized ``layers``, ``noise_every``, ``stochastic: true``, ``format``.
``start.npz``
    The point fields of ``x_0`` (one row; written when the run starts from epoch 0).
``epoch_EEEE.npz``
    One file per epoch ``EEEE`` (1-based, as in ``metrics.jsonl``), written atomically
    once the epoch's steps are done, before its metrics row and checkpoint. A run
    stopped on a NaN/inf writes the steps it did (``partial`` = 1). ``--resume``
    deletes the files of epochs after the checkpoint (they run again, like metrics rows).

Every ``.npz`` holds float64 columns of equal length, one row per step ``t`` (the
step ``x_t -> x_{t+1}``), no pickles:

``step`` (t, from 0), ``epoch`` (from 1), ``partial``, ``loss`` (the minibatch loss at
``x_t``: mean cross-entropy of this rank's part of the batch), ``lr`` (``lr_t``), ``mu``
(``mu_{t+1}``, the mu ``x_{t+1}`` was formed with), ``noise_pair_norm2`` (every
``--noise-every k`` steps :math:`\|g_t - g'_t\|^2` with ``g'_t`` the gradient at the
same ``x_t`` of a second, independently drawn minibatch of the same size; NaN on the
other steps), ``batch_f``, ``batch_f_next``, ``batch_L_local`` (every ``--check-every K`` steps: the loss
at ``x_t`` and at ``x_{t+1}`` on the step's own batch, and the secant of its gradient; NaN on the other
steps), with a base optimizer other than plain SGD (momentum, weight decay) the totals of
:data:`brelax.diagnostics.MOMENTUM_SUMS` (the anchor step against the old and new patterns and the raw
gradient, for Theorem II.12), the totals over all parameters of every field of
:data:`brelax.diagnostics.STEP_OUT` (step ``t``) and :data:`~brelax.diagnostics.POINT_OUT`
(at ``x_{t+1}``), and the same per quantized tensor in columns ``layer::NAME::FIELD``.
``sgrad_norm2`` is :math:`\|g_t\|^2` (the minibatch gradient, or the anchor step); what needs the full
gradient (``grad_norm2``, ``g_dot_D``, ``noise_norm2``, ``stable_g_dot_D``) is NaN.

:func:`load_run` turns a run directory into a :class:`brelax.Trajectory` (fields
as in :mod:`brelax.trajectory`, NaN where unknown, plus ``loss`` and
``noise_pair_norm2`` step arrays).
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from typing import Any

import numpy as np
import torch

from .. import diagnostics as dg
from .._atomic import atomic_write, atomic_write_text
from ..trajectory import LAYER_POINT_FIELDS, Trajectory, fill_missing

FORMAT = 1
#: The same-batch columns (``--check-every K``): f_B(x_t), f_B(x_(t+1)) on the step's batch, the secant of grad f_B.
SAME_BATCH = ("batch_f", "batch_f_next", "batch_L_local")
FOLDER = "steps"
_EPOCH = re.compile(r"epoch_(\d{4,})\.npz$")
_BASE = ("step", "epoch", "partial", "loss", "lr", "mu", "noise_pair_norm2")


def epoch_path(out: str, epoch: int) -> str:
    return os.path.join(out, FOLDER, f"epoch_{epoch:04d}.npz")


class StepLog:
    """Collects the rows of one epoch and writes them atomically (see the module docstring).

    Parameters
    ----------
    out : str
        The run directory.
    enabled : bool
        False: every method is a no-op (``--no-diagnostics``, and ranks other than 0).
    noise_every : int >= 0
        Every so many steps a second minibatch gradient (0: never).
    """

    def __init__(self, out: str, enabled: bool, noise_every: int = 0):
        if isinstance(noise_every, bool) or not isinstance(noise_every, int) or noise_every < 0:
            raise ValueError(f"noise_every must be an int >= 0, got {noise_every!r}")
        self.out, self.enabled, self.noise_every = out, bool(enabled), noise_every
        self.rows: list = []

    def noise_due(self, step: int) -> bool:
        """Whether step ``step`` (from 0) gets a second minibatch gradient."""
        return self.noise_every > 0 and step % self.noise_every == 0

    def start(self, meta: dict, first: dict | None, resume_epoch: int) -> None:
        """Write ``meta.json``; from epoch 0 also ``start.npz``; drop epoch files after ``resume_epoch``
        and the temporary files of an interrupted write."""
        if not self.enabled:
            return
        folder = glob.escape(os.path.join(self.out, FOLDER))
        for path in glob.glob(os.path.join(folder, "epoch_*.npz")):
            m = _EPOCH.search(path)
            if m and int(m.group(1)) > resume_epoch:
                os.unlink(path)
        for tmp in glob.glob(os.path.join(folder, ".*.tmp")):  # left by an interrupted atomic write
            os.unlink(tmp)
        atomic_write_text(
            os.path.join(self.out, FOLDER, "meta.json"),
            json.dumps({**meta, "format": FORMAT, "stochastic": True}, indent=1) + "\n",
        )
        if resume_epoch == 0 and first:
            self._write(
                os.path.join(self.out, FOLDER, "start.npz"), [self._row(first, math.nan, 0, 0, math.nan, math.nan)]
            )

    @staticmethod
    def _row(diag: dict, step, epoch, loss, lr, pair) -> dict:
        row = {
            "step": step,
            "epoch": epoch,
            "partial": 0,
            "loss": loss,
            "lr": lr,
            "mu": diag.get("mu", math.nan),
            "noise_pair_norm2": pair,
        }
        row.update(diag.get("total", {}))
        for name, d in diag.get("layers", {}).items():
            for k, v in d.items():
                row[f"layer::{name}::{k}"] = v
        return row

    def record(
        self, step: int, epoch: int, loss: float, lr: float, diag: dict, pair: float = math.nan, check=None
    ) -> None:
        """One step's row: ``diag`` is :attr:`QuantOptimizer.last_diagnostics` after the step; ``check`` the
        same-batch record of :func:`brelax.torch.train.same_batch_check` on the steps that have one."""
        if self.enabled:
            row = self._row(diag, step, epoch, loss, lr, pair)
            row.update(check or {})
            self.rows.append(row)

    def replace_last(self, diag: dict) -> None:
        """After :meth:`QuantOptimizer.epoch_end` re-formed ``x``: its diagnostics replace the last row's."""
        if self.enabled and self.rows:
            last = self.rows[-1]
            check = {k: last[k] for k in SAME_BATCH if k in last}
            if diag.get("mu", math.nan) != last["mu"] and check:
                # f_B(x_{t+1}) was taken at the x of the old mu: it no longer describes the recorded x_{t+1}
                check = {k: math.nan for k in check}
            self.rows[-1] = self._row(
                diag, last["step"], last["epoch"], last["loss"], last["lr"], last["noise_pair_norm2"]
            )
            self.rows[-1].update(check)

    def end_epoch(self, epoch: int, partial: bool = False) -> None:
        """Write ``epoch_EEEE.npz`` (atomically) and start the next epoch's rows."""
        if self.enabled and self.rows:
            for r in self.rows:
                r["partial"] = int(partial)
            self._write(epoch_path(self.out, epoch), self.rows)
        self.rows = []

    @staticmethod
    def _write(path, rows):
        keys = list(dict.fromkeys(k for r in rows for k in r))
        cols: dict[str, Any] = {k: np.array([r.get(k, math.nan) for r in rows], dtype=np.float64) for k in keys}
        atomic_write(path, lambda fh: np.savez(fh, **cols))


def independent_batch(loader, n: int, step: int):
    """A second minibatch of ``n`` samples for step ``step``, drawn independently of the loader's own.

    Indices uniform without replacement from a generator seeded by ``(seed, step, 2)``,
    augmentation (when the loader augments) from ``(seed, step, 3)``: the training
    batches and every random state of the run are untouched.
    """
    from .data import apply_augmentation, draw_augmentation, epoch_generator, normalize

    idx = torch.randperm(loader.num_samples, generator=epoch_generator(loader.seed, step, 2))[:n].to(loader.device)
    x = loader.images[idx]
    if loader.train and loader.augment:
        x = apply_augmentation(x, *draw_augmentation(len(idx), epoch_generator(loader.seed, step, 3)))
    x = normalize(x, *getattr(loader, "norm", ()))
    if loader.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, loader.labels[idx]


def noise_pair(net, forward_loss, params) -> float:
    """``||g - g'||^2``: ``g`` the ``.grad`` now held, ``g'`` from ``forward_loss()`` at the same weights.

    The ``.grad`` tensors and every buffer of ``net`` (BatchNorm statistics) are restored
    afterwards, so the run goes on bit for bit as without the measurement.
    """
    grads = [None if p.grad is None else p.grad.detach().clone() for p in params]
    buffers = [b.detach().clone() for b in net.buffers()]
    for p in params:
        p.grad = None
    forward_loss().backward()
    total = torch.zeros((), dtype=torch.float64, device=params[0].device if params else "cpu")
    for p, g in zip(params, grads, strict=True):
        if p.grad is not None and g is not None:
            total += ((g - p.grad) ** 2).sum(dtype=torch.float64)
        p.grad = g
    with torch.no_grad():
        for b, v in zip(net.buffers(), buffers, strict=True):
            b.copy_(v)
    return float(total)


def run_meta(cfg, opt, steps_per_epoch: int, n_train: int, world_size: int) -> dict:
    """The ``meta.json`` of a run (see the module docstring)."""
    from ..sets import get_set

    return {
        "source": "brelax train",
        "method": cfg.method,
        "qset": cfg.set,
        "dataset": cfg.dataset,
        "model": cfg.model,
        "seed": cfg.seed,
        "lr": cfg.lr,
        "milestones": list(cfg.milestones),
        "gamma": cfg.gamma,
        "lr_schedule": "multistep per epoch",
        "lam0": cfg.lam0,
        "rho": cfg.rho,
        "phase2_epoch": cfg.phase2_epoch,
        "mu_schedule": "per epoch",
        "steps_per_epoch": steps_per_epoch,
        "batch_size": cfg.batch_size,
        "n_train": n_train,
        "world_size": world_size,
        "momentum": cfg.momentum,
        "weight_decay": cfg.weight_decay,
        "plain_sgd": cfg.momentum == 0 and cfg.weight_decay == 0,
        # Theorem II.12 holds for torch's SGD recursion m = beta m + g + wd y, y -= lr m: say which base ran
        "base_optimizer": type(opt.base).__name__,
        "nesterov": bool(opt.base.param_groups[0].get("nesterov", False)),
        "dampening": float(opt.base.param_groups[0].get("dampening", 0.0)),
        "direction": opt.direction,
        # the same words as brelax.optimize's meta (theory reads "with_replacement")
        "sampling": "with_replacement"
        if getattr(cfg, "sampling", "shuffle") == "with_replacement"
        else "shuffled epochs (without replacement)",
        "axis": cfg.axis,
        "noise_every": getattr(cfg, "noise_every", 0),
        "check_every": getattr(cfg, "check_every", 0),
        "layers": [s.name for s in opt.slots],
        **dg.quant_meta(get_set(cfg.set), [(tuple(s.param.shape), s.axis) for s in opt.slots]),
    }


def load_run(path) -> Trajectory:
    """Read ``RUN/steps`` of a ``brelax train`` run as a :class:`~brelax.Trajectory`.

    Point fields (length T + 1) come from ``start.npz`` (index 0; NaN when the run was
    resumed from a checkpoint without it) and the rows' ``x_{t+1}`` fields; ``lr[t]`` is
    the step's lr (``lr[T]`` NaN); ``f`` is the full train loss at the training iterate at
    epoch ends (``train_loss_x`` of ``metrics.jsonl``) and NaN elsewhere; ``f_quant``,
    ``grad_norm2``, ``L_local``, ``descent``, ``f_stable`` and the full-gradient fields are NaN
    (unknown in SGD training).
    Extra step arrays: ``loss``, ``noise_pair_norm2``, ``epoch``. ``x`` and ``y`` are
    empty (the weights are in the checkpoint). ``meta`` is ``meta.json`` plus
    ``steps_done``, ``epochs_done`` and ``partial``.

    Parameters
    ----------
    path : str or PathLike
        The run directory (holding ``steps/``) or the ``steps`` folder itself.

    Raises
    ------
    FileNotFoundError
        No ``steps/meta.json`` (a run without diagnostics, or not a run directory).
    ValueError
        Missing epochs between the files, or a file of another format.
    """
    folder = os.fspath(path)
    if os.path.basename(os.path.normpath(folder)) != FOLDER:
        folder = os.path.join(folder, FOLDER)
    meta_path = os.path.join(folder, "meta.json")
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(
            f"path {os.fspath(path)!r} has no {FOLDER}/meta.json: not a brelax train run with diagnostics on"
        )
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: step log format {meta.get('format')!r}, this brelax reads {FORMAT}")
    files = sorted(
        (int(m.group(1)), p)
        for p in glob.glob(os.path.join(glob.escape(folder), "epoch_*.npz"))
        if (m := _EPOCH.search(p))
    )
    epochs = [e for e, _ in files]
    if epochs and epochs != list(range(epochs[0], epochs[0] + len(epochs))):
        raise ValueError(f"{folder}: epochs {epochs} have gaps")
    cols: dict = {}
    for _, p in files:
        with np.load(p, allow_pickle=False) as z:
            n, before = len(z["step"]), len(cols.get("step", ()))
            for k in sorted(set(cols) | set(z.files)):
                prev = cols.get(k, np.full(before, np.nan))
                cols[k] = np.concatenate([prev, z[k] if k in z.files else np.full(n, np.nan)])
    T = len(cols.get("step", ()))
    if T and not np.array_equal(cols["step"], cols["step"][0] + np.arange(T)):
        raise ValueError(f"{folder}: the steps are not consecutive")
    start = {}
    start_path = os.path.join(folder, "start.npz")
    if os.path.isfile(start_path) and T and cols["step"][0] == 0:
        with np.load(start_path, allow_pickle=False) as z:
            start = {k: float(z[k][0]) for k in z.files}
    arrays: dict = {}
    layers: dict = {}

    def point(key):
        return np.concatenate([[start.get(key, np.nan)], cols.get(key, np.full(T, np.nan))])

    for k in dg.POINT_OUT:
        arrays[k] = point(k)
    arrays["r_norm"] = arrays["dist_y"].copy()
    arrays["mu"] = point("mu")
    arrays["lr"] = np.concatenate([cols.get("lr", np.zeros(0)), [np.nan]])
    for k in dg.STEP_OUT:
        arrays[k] = cols.get(k, np.full(T, np.nan))
    arrays["flips"] = np.nan_to_num(arrays["flips"]).astype(np.int64)
    for k in ("loss", "noise_pair_norm2", "epoch", *SAME_BATCH, *dg.MOMENTUM_SUMS):
        arrays[k] = cols.get(k, np.full(T, np.nan))
    for name in meta.get("layers", []):
        d = layers[name] = {}
        for k in dg.POINT_OUT + dg.STEP_OUT:
            key = f"layer::{name}::{k}"
            if k in LAYER_POINT_FIELDS:
                d[k] = point(key)
            elif k in dg.STEP_OUT:
                d[k] = cols.get(key, np.full(T, np.nan))
        d["flips"] = np.nan_to_num(d["flips"]).astype(np.int64)
    fill_missing(arrays, layers)
    first = int(cols["step"][0]) if T else 0
    _epoch_end_losses(os.path.dirname(os.path.normpath(folder)), arrays["f"], first)
    meta.update(
        steps_done=T,
        epochs_done=epochs[-1] if epochs else 0,
        partial=bool(T and np.any(cols.get("partial", np.zeros(T)) > 0)),
        first_step=first,
    )
    return Trajectory(arrays, np.zeros(0), np.zeros(0), meta, layers)


def _epoch_end_losses(run_dir: str, f: np.ndarray, first: int) -> None:
    """``f[t] = train_loss_x`` of ``RUN/metrics.jsonl`` at each epoch end ``t`` (its row's ``step``), in place.

    The full train loss at the training iterate (eval mode), the only values of f a torch run knows; the
    epoch check of Theorem II.10 (``theory.EpochBound``) reads them. Rows without it (older runs, a float
    method without ``--eval-train``) leave NaN. Raises ValueError naming the file and line of a damaged row.
    """
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise ValueError(f"{path}, line {n}: not a JSON row") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {n}: a JSON {type(row).__name__}, expected an object")
            step, loss = row.get("step"), row.get("train_loss_x")
            if isinstance(step, int) and not isinstance(step, bool) and isinstance(loss, (int, float)):
                t = step - first
                if 0 <= t < len(f):
                    f[t] = float(loss)
