"""``brelax compare``: BinaryRelax against BinaryConnect, ProxQuant, PARQ and float training, tuned alike.

The protocol (one rule for every method):

* **Data.** The digits (scikit-learn's 8x8, offline; the fixed stratified test
  split of :func:`brelax.torch.train.digits_data`) or CIFAR-10 files at
  ``--data``. A validation split (20%, stratified, fixed seed) is carved from
  the *training* images; hyperparameters are chosen on it and never on the test
  images.
* **Budget.** Every method trains ``--epochs`` epochs (SGD, momentum 0.9,
  weight decay 1e-4, batch 64 on the digits and 128 on CIFAR, lr times 0.1 at
  40% and 70% of the epochs), and every method gets a grid of the same size
  (:data:`GRID_SIZE` points; see :func:`method_grid`): the relaxed methods
  ``lr x (rho or ramp length) x Phase II start``, the methods with nothing to
  relax (BinaryConnect, float) ``GRID_SIZE`` learning rates.
* **Choice.** Each grid point trains twice (seeds 1000 and 1001) on the
  training images less the validation split; the point with the best mean
  validation accuracy at ``P(y)`` after the last epoch wins (the first in grid
  order on a tie).
* **Test.** The chosen point trains on all training images with seeds
  ``0 .. seeds-1``; the number reported is the test accuracy at ``P(y)`` after
  the last epoch (never a best epoch): mean, sample std and a 95% Student-t
  interval ``mean +- t_{0.975, n-1} std / sqrt(n)``.
* **Evaluation point.** ``P(y)`` with BatchNorm statistics re-estimated on the
  training images at ``P(y)`` (:mod:`brelax.torch.bn`), for every method. PARQ
  is evaluated at its own quantizer's hard quantization of its latent weights
  (what its parameters hold once the anneal has ended); float training at its
  float weights.

Methods (:data:`METHODS`): ``binaryrelax`` (geometric ``lam = rho**e``, ``mu =
lam/(1 + lam)``, then ``mu = 1``), ``binaryrelax_linear`` (PARQ's linear ``mu``
ramp on brelax's exact projection), ``binaryconnect``, ``proxquant`` and
``parq`` (torchao's ``QuantOptimizer`` with ``ProxBinaryRelax`` and its
quantizers: ``UnifQuantizer`` at 1 and 2 bits, ``TernaryUnifQuantizer``), and
``float``. Sets (:data:`SETS`): ``binary`` ({+-a}), ``ternary`` ({0, +-a}) and
``2bit`` ({+-a, +-3a}); one scale per output channel; the classifier stays float.

Outputs in ``--out``: ``comparison.json`` (one record per (model, set, method)),
``comparison.md``, ``comparison.png`` (test accuracy against epoch, mean and a
band of +-1 std over seeds) and ``runs/`` (one JSON per training run; a rerun
with ``--resume`` reuses them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .._atomic import atomic_write_text
from ..commands import _args
from ..sets import get_set
from . import bn
from .data import CifarLoader, load_cifar
from .models import DIGITS_MODELS, MODEL_NAMES, build_model, param_groups
from .optimizer import QuantOptimizer

#: Points in every method's hyperparameter grid.
GRID_SIZE = 8
#: Seeds of the selection runs, averaged per grid point (the test runs use 0 .. seeds - 1).
SELECTION_SEEDS = (1000, 1001)
#: Fraction of the training images held out for validation.
VAL_FRACTION = 0.2
#: The lr is multiplied by 0.1 at these fractions of the epochs (every method).
LR_DROPS = (0.4, 0.7)


@dataclass(frozen=True)
class QuantSetSpec:
    """A quantization set: brelax's name for it and PARQ's quantizer for the same levels."""

    brelax: str
    parq_quantizer: str  # "unif" (UnifQuantizer) or "ternary" (TernaryUnifQuantizer)
    parq_bits: int
    label: str


SETS = {
    "binary": QuantSetSpec("binary", "unif", 1, "binary {±a}"),
    "ternary": QuantSetSpec("ternary", "ternary", 0, "ternary {0, ±a}"),
    "2bit": QuantSetSpec("levels:1,3", "unif", 2, "2-bit {±a, ±3a}"),
}


@dataclass(frozen=True)
class Method:
    """One training method of the comparison: its label, its grid axes and whether it quantizes."""

    name: str
    label: str
    axes: tuple  # hyperparameter names besides lr (each with 2 values); () means GRID_SIZE lrs
    quantized: bool = True


METHODS = {
    "binaryrelax": Method("binaryrelax", "BinaryRelax (geometric lambda)", ("rho", "phase2")),
    "binaryrelax_linear": Method("binaryrelax_linear", "BinaryRelax (linear mu ramp)", ("ramp", "phase2")),
    "binaryconnect": Method("binaryconnect", "BinaryConnect", ()),
    "proxquant": Method("proxquant", "ProxQuant", ("rho", "phase2")),
    "parq": Method("parq", "PARQ (torchao, ProxBinaryRelax)", ("ramp", "phase2")),
    "float": Method("float", "float (no quantization)", (), quantized=False),
}


@dataclass(frozen=True)
class Study:
    """What one ``brelax compare`` run covers."""

    dataset: str = "digits"
    data: str | None = None
    models: tuple = ("digits_cnn", "digits_mlp")
    sets: tuple = tuple(SETS)
    methods: tuple = tuple(METHODS)
    epochs: int = 30
    seeds: int = 5
    batch_size: int = 64
    lrs: tuple = (0.02, 0.1)
    lrs_wide: tuple = (0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.2, 0.4)
    rhos: tuple = (1.1, 1.3)
    ramps: tuple = (0.25, 0.5)  # ramp length, as a fraction of the epochs
    phase2s: tuple = (0.5, 0.75)  # Phase II start, as a fraction of the epochs
    recipe: str = "default"
    limit_train: int | None = None
    limit_test: int | None = None
    device: str = "cpu"


def method_grid(method: str, study: Study) -> list[dict]:
    """The hyperparameter points of ``method``: ``GRID_SIZE`` dicts, in the order ties are broken.

    Relaxed methods: ``lr`` in ``study.lrs`` (2) times each of their two axes (2 values each):
    ``rho`` (``lam_e = rho**e``), ``ramp`` (the linear ramp's length, a fraction of the epochs)
    and ``phase2`` (Phase II start, a fraction of the epochs; a ramp ends there). BinaryConnect
    and float: ``lr`` in ``study.lrs_wide`` (``GRID_SIZE`` values).

    Raises
    ------
    ValueError
        Unknown method, or a grid whose size is not ``GRID_SIZE``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    axes = METHODS[method].axes
    values = {"rho": study.rhos, "ramp": study.ramps, "phase2": study.phase2s}
    if not axes:
        grid = [{"lr": lr} for lr in study.lrs_wide]
    else:
        grid = [
            {"lr": lr, axes[0]: a, axes[1]: b} for lr in study.lrs for a in values[axes[0]] for b in values[axes[1]]
        ]
    if len(grid) != GRID_SIZE:
        raise ValueError(f"the {method} grid has {len(grid)} points, every method must have {GRID_SIZE}")
    return grid


# ----------------------------------------------------------------------------- statistics

# t_{0.975, df} for df = 1 .. 30 (two-sided 95%); beyond 30 the normal quantile is within 2%.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (``df >= 1``; 1.96 beyond 30)."""
    if isinstance(df, bool) or int(df) < 1:
        raise ValueError(f"df must be an int >= 1, got {df!r}")
    return _T975[int(df) - 1] if df <= len(_T975) else 1.96


def summarize(values) -> dict:
    """Mean, sample std and the 95% Student-t interval of ``values`` (at least 2 numbers).

    ``ci95 = [m - h, m + h]`` with ``h = t_{0.975, n-1} s / sqrt(n)``.

    Examples
    --------
    >>> s = summarize([0.90, 0.92, 0.94])
    >>> round(s["mean"], 6), round(s["std"], 6), [round(v, 4) for v in s["ci95"]]
    (0.92, 0.02, [0.8703, 0.9697])
    """
    v = [float(x) for x in values]
    if len(v) < 2:
        raise ValueError(f"values needs at least 2 numbers for a std and an interval, got {len(v)}")
    m, s = statistics.fmean(v), statistics.stdev(v)
    h = t975(len(v) - 1) * s / math.sqrt(len(v))
    return {"mean": m, "std": s, "ci95": [m - h, m + h], "n_seeds": len(v), "values": v}


# ----------------------------------------------------------------------------- data


def validation_split(labels: torch.Tensor, fraction: float = VAL_FRACTION, seed: int = 0):
    """Stratified ``(train_idx, val_idx)``: ``round(fraction * n_c)`` of each class ``c`` to validation.

    Deterministic in ``seed``; the two index sets are disjoint and cover ``range(len(labels))``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    y = labels.cpu().numpy()
    val = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        val.extend(idx[: max(1, round(fraction * len(idx)))].tolist())
    val_idx = np.sort(np.array(val, dtype=np.int64))
    train_idx = np.setdiff1d(np.arange(len(y)), val_idx)
    return torch.from_numpy(train_idx), torch.from_numpy(val_idx)


def load_data(study: Study):
    """``(train, test, norm)``: image and label tensors of the study's dataset, and its normalisation."""
    if study.dataset == "digits":
        from .train import digits_data

        (train, test), norm = digits_data()
    else:
        try:
            train = load_cifar(study.data, study.dataset, train=True)
            test = load_cifar(study.data, study.dataset, train=False)
        except (FileNotFoundError, ValueError) as e:
            raise _args.UsageError(f"--data {study.data}: {e}") from None
        norm = None
    cut = lambda d, n: d if n is None else (d[0][:n], d[1][:n])  # noqa: E731
    return cut(train, study.limit_train), cut(test, study.limit_test), norm


# ----------------------------------------------------------------------------- one run


def _model(name: str, study: Study, seed: int):
    kwargs = {}
    if name == "vgg11" and study.recipe == "yin2018":
        kwargs = {"bn": True, "conv_bias": True}
    return build_model(name, 10 if study.dataset != "cifar100" else 100, seed=seed, **kwargs)


def _axis(study: Study):
    return None if study.recipe == "yin2018" else 0  # yin2018: one scale per tensor, as the authors


def _mu_ramp(start: int, end: int):
    """PARQ's anneal on brelax: ``mu = 0`` before ``start``, linear to 1 at ``end`` (then Phase II)."""

    def mu(t: int) -> float:
        return min(1.0, max(0.0, (t - start) / max(end - start, 1)))

    return mu


class _Parq:
    """torchao's PARQ optimizer on the same quantized weights, and its quantized point for evaluation."""

    def __init__(self, net, groups, spec: QuantSetSpec, lr, start, end, wd):
        import logging

        noisy = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree")]
        levels = [log.level for log in noisy]
        for log in noisy:  # torchao logs its CUDA-only libraries failing to load on a CPU box
            log.setLevel(logging.ERROR)
        try:
            from torchao.prototype.parq import (  # type: ignore[import-untyped]
                ProxBinaryRelax,
                QuantOptimizer,
                TernaryUnifQuantizer,
                UnifQuantizer,
            )
        finally:
            for log, level in zip(noisy, levels, strict=True):
                log.setLevel(level)
        self.quantizer = TernaryUnifQuantizer() if spec.parq_quantizer == "ternary" else UnifQuantizer()
        self.bits = spec.parq_bits
        pg = [{"params": groups[0]["params"], "quant_bits": self.bits}] + [{"params": g["params"]} for g in groups[1:]]
        base = torch.optim.SGD(pg, lr=lr, momentum=0.9, weight_decay=wd)
        self.opt = QuantOptimizer(
            base, self.quantizer, ProxBinaryRelax(start, max(end, start + 1)), quant_period=1, quant_per_channel=True
        )
        self.params = list(groups[0]["params"])

    @contextlib.contextmanager
    def quantized(self):
        """The quantized parameters hold PARQ's hard quantization of their latent weights inside the block."""
        with torch.no_grad():
            saved = [p.detach().clone() for p in self.params]
            for p in self.params:
                latent = self.opt.state.get(p, {}).get("latent", p.detach())
                flat = latent.reshape(latent.shape[0], -1)
                q, _ = self.quantizer.quantize(flat, self.bits, dim=-1)
                p.copy_(q.reshape(p.shape))
        try:
            yield
        finally:
            with torch.no_grad():
                for p, s in zip(self.params, saved, strict=True):
                    p.copy_(s)


def _optimizer(method: str, hp: dict, net, spec: QuantSetSpec, study: Study, steps_per_epoch: int):
    """``(step_fn, epoch_end_fn, quantized_ctx)`` of one method at one grid point."""
    wd, e = 1e-4, study.epochs
    axis = _axis(study)
    groups = param_groups(net, get_set(spec.brelax), axis=axis)
    p2 = None if "phase2" not in hp else max(1, round(hp["phase2"] * e)) * steps_per_epoch
    if method == "parq":
        assert p2 is not None  # every ramped method has a Phase II start in its grid
        start = max(0, p2 - round(hp["ramp"] * e) * steps_per_epoch)
        parq = _Parq(net, groups, spec, hp["lr"], start, p2, wd)
        return parq.opt, (lambda: None), parq.quantized
    kind = {"binaryrelax_linear": "binaryrelax", "float": "gd"}.get(method, method)
    base = torch.optim.SGD(groups, lr=hp["lr"], momentum=0.9, weight_decay=wd)
    ramp = None
    if method == "binaryrelax_linear":
        assert p2 is not None
        ramp = _mu_ramp(max(0, p2 - round(hp["ramp"] * e) * steps_per_epoch), p2)
    lam0 = 1.04 if study.recipe == "yin2018" else 1.0
    opt = QuantOptimizer(
        base,
        method=kind,
        qset=spec.brelax,
        axis=axis,
        lam0=lam0,
        rho=hp.get("rho", 1.04),
        schedule="epoch",
        phase2_start=p2,
        mu_schedule=ramp,
    )
    quantized = opt.quantized if METHODS[method].quantized else contextlib.nullcontext
    return opt, opt.epoch_end, quantized


@torch.no_grad()
def _accuracy(net, loader) -> float:
    net.eval()
    correct = n = 0
    for xb, yb in loader:
        correct += int((net(xb).argmax(1) == yb).sum())
        n += len(yb)
    return correct / max(n, 1)


def train_one(spec: dict, data) -> dict:
    """Train one (model, set, method, grid point, seed) and return its accuracies at ``P(y)``.

    ``spec`` holds ``model, set, method, hp, seed, split`` (``"selection"``: train on the training
    images less the validation split, score the validation split; ``"test"``: train on all
    training images, score the test split every epoch) and the study fields. Returns ``{"curve":
    [accuracy after each epoch] (test runs) or [the last] (selection), "final": the last,
    "seconds"}``.
    """
    study = Study(**spec["study"])
    (tr_x, tr_y), (te_x, te_y), norm = data
    if spec["split"] == "selection":
        tr_idx, val_idx = validation_split(tr_y)
        (tr_x, tr_y), (te_x, te_y) = (tr_x[tr_idx], tr_y[tr_idx]), (tr_x[val_idx], tr_y[val_idx])
    device = torch.device(study.device)
    kw = dict(device=device, seed=spec["seed"], norm=norm)
    augment = study.dataset != "digits"
    loader = CifarLoader(tr_x, tr_y, study.batch_size, train=True, augment=augment, **kw)
    bn_loader = CifarLoader(tr_x, tr_y, 500, train=False, **kw)
    eval_loader = CifarLoader(te_x, te_y, 500, train=False, **kw)
    torch.manual_seed(spec["seed"])
    net = _model(spec["model"], study, spec["seed"]).to(device)
    opt, epoch_end, quantized = _optimizer(spec["method"], spec["hp"], net, SETS[spec["set"]], study, len(loader))
    drops = [max(1, round(f * study.epochs)) for f in LR_DROPS]
    curve: list[float] = []
    t0 = time.perf_counter()
    every_epoch = spec["split"] == "test"
    for epoch in range(study.epochs):
        lr = spec["hp"]["lr"] * 0.1 ** sum(epoch >= d for d in drops)
        for g in opt.param_groups:
            g["lr"] = lr
        loader.set_epoch(epoch)
        net.train()
        for xb, yb in loader:
            loss = F.cross_entropy(net(xb), yb)
            if not torch.isfinite(loss):
                return {"curve": curve, "final": None, "diverged": True, "seconds": time.perf_counter() - t0}
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        epoch_end()
        if every_epoch or epoch == study.epochs - 1:
            with quantized(), bn.recalibrated(net, bn_loader, max_images=10_000):
                curve.append(_accuracy(net, eval_loader))
    return {"curve": curve, "final": curve[-1], "diverged": False, "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- the study


def _key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _study_dict(study: Study) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in study.__dict__.items()}


_DATA = None


def _worker_init(data, threads: int):
    global _DATA
    _DATA = data
    torch.set_num_threads(threads)


def _worker(spec):
    return spec, train_one(spec, _DATA)


class Runner:
    """Runs training specs (in ``jobs`` processes, one torch thread each) and caches each result in ``runs/``."""

    def __init__(self, out: str, data, jobs: int = 1, log=print):
        self.folder = os.path.join(out, "runs")
        os.makedirs(self.folder, exist_ok=True)
        self.data, self.jobs, self.log = data, jobs, log
        self.done = 0

    def _path(self, spec):
        return os.path.join(self.folder, _key(spec) + ".json")

    def run(self, specs: list) -> list:
        results: dict = {}
        todo = []
        for s in specs:
            p = self._path(s)
            if os.path.isfile(p):
                with open(p) as f:
                    results[_key(s)] = json.load(f)["result"]
            else:
                todo.append(s)

        def keep(spec, res):
            atomic_write_text(self._path(spec), json.dumps({"spec": spec, "result": res}) + "\n")
            results[_key(spec)] = res
            self.done += 1
            self.log(
                f"  {spec['split']:9s} {spec['model']} {spec['set']} {spec['method']} {spec['hp']} "
                f"seed {spec['seed']}: {res['final']} ({res['seconds']:.1f} s)"
            )

        if self.jobs > 1 and len(todo) > 1:
            import multiprocessing as mp

            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            with ctx.Pool(self.jobs, initializer=_worker_init, initargs=(self.data, 1)) as pool:
                for spec, res in pool.imap_unordered(_worker, todo):
                    keep(spec, res)
        else:
            for spec in todo:
                keep(spec, train_one(spec, self.data))
        return [results[_key(s)] for s in specs]


def run_study(study: Study, out: str, jobs: int = 1, log=print) -> list:
    """Select, then test, every (model, set, method) of ``study``; write the outputs to ``out``; return the records."""
    data = load_data(study)
    runner = Runner(out, data, jobs, log)
    sd = _study_dict(study)
    cells = []
    for model in study.models:
        for qset in study.sets:
            for method in study.methods:
                if not METHODS[method].quantized and qset != study.sets[0]:
                    continue  # float training does not depend on the set: one cell per model
                cells.append((model, qset, method))
    # Selection: every grid point of every cell and selection seed, in one batch (parallel).
    sel = {
        c: [
            {"model": c[0], "set": c[1], "method": c[2], "hp": hp, "seed": seed, "split": "selection", "study": sd}
            for hp in method_grid(c[2], study)
            for seed in SELECTION_SEEDS
        ]
        for c in cells
    }
    log(f"selection: {sum(len(v) for v in sel.values())} runs")
    per_cell = GRID_SIZE * len(SELECTION_SEEDS)
    sel_res = dict(zip(sel, _chunks(runner.run([s for v in sel.values() for s in v]), per_cell), strict=True))
    chosen = {}
    for c in cells:
        finals = [-1.0 if r["final"] is None else r["final"] for r in sel_res[c]]  # a diverged run scores -1
        scores = [statistics.fmean(v) for v in _chunks(finals, len(SELECTION_SEEDS))]
        best = int(np.argmax(scores))  # the first maximum: ties go to the earlier grid point
        chosen[c] = (method_grid(c[2], study)[best], scores)
    tests = {
        c: [
            {"model": c[0], "set": c[1], "method": c[2], "hp": chosen[c][0], "seed": s, "split": "test", "study": sd}
            for s in range(study.seeds)
        ]
        for c in cells
    }
    log(f"test: {sum(len(v) for v in tests.values())} runs")
    test_res = dict(zip(tests, _chunks(runner.run([s for v in tests.values() for s in v]), study.seeds), strict=True))
    records = []
    for c in cells:
        res = test_res[c]
        finals = [0.0 if r["final"] is None else r["final"] for r in res]
        grid = method_grid(c[2], study)
        records.append(
            {
                "model": c[0],
                "set": c[1] if METHODS[c[2]].quantized else "float",
                "method": c[2],
                "label": METHODS[c[2]].label,
                **summarize(finals),
                "diverged": sum(bool(r.get("diverged")) for r in res),
                "chosen": chosen[c][0],
                "grid": grid,
                "val_acc": chosen[c][1],
                "curves": [r["curve"] for r in res],
                "seconds": sum(r["seconds"] for r in res) + sum(r["seconds"] for r in sel_res[c]),
            }
        )
    return records


def _chunks(xs, n):
    return [xs[i : i + n] for i in range(0, len(xs), n)]


# ----------------------------------------------------------------------------- outputs


def winners(records: list) -> dict:
    """``{(model, set): method}``: the quantized method with the highest mean test accuracy in each cell."""
    best: dict = {}
    for r in records:
        if r["set"] == "float":
            continue
        k = (r["model"], r["set"])
        if k not in best or r["mean"] > best[k]["mean"]:
            best[k] = r
    return {k: v["method"] for k, v in best.items()}


def _pct(r: dict) -> str:
    lo, hi = r["ci95"]
    return f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def table_lines(records: list, study: Study, model: str) -> list:
    """The Markdown table of ``model``: one row per method, one column per set; the best quantized mean in bold."""
    sets = list(study.sets)
    win = winners(records)
    lines = ["| method | " + " | ".join(SETS[s].label for s in sets) + " |", "|---|" + "---|" * len(sets)]
    for method in study.methods:
        rs = {r["set"]: r for r in records if r["model"] == model and r["method"] == method}
        cells = []
        for s in sets:
            r = rs.get(s if METHODS[method].quantized else "float")
            cell = _pct(r) if r else ""
            cells.append(f"**{cell}**" if r and win.get((model, s)) == method else cell)
        lines.append(f"| {METHODS[method].label} | " + " | ".join(cells) + " |")
    return lines


def versus(records: list, a: str = "binaryrelax", b: str = "binaryconnect") -> list:
    """Per (model, set): ``{"model", "set", "diff"}`` (mean of ``a`` minus mean of ``b``) and ``"disjoint"``.

    ``disjoint``: the two 95% intervals do not overlap (a clear difference); otherwise the
    seeds cannot tell the two methods apart at this budget.
    """
    out = []
    by = {(r["model"], r["set"], r["method"]): r for r in records}
    for (model, qset, method), ra in by.items():
        rb = by.get((model, qset, b))
        if method != a or rb is None:
            continue
        disjoint = ra["ci95"][0] > rb["ci95"][1] or rb["ci95"][0] > ra["ci95"][1]
        out.append({"model": model, "set": qset, "diff": ra["mean"] - rb["mean"], "disjoint": disjoint})
    return out


def train_minutes(records: list) -> float:
    """Minutes of training summed over every run of the records (selection and test), as each run measured it."""
    return sum(r["seconds"] for r in records) / 60


def markdown(records: list, study: Study, minutes: float) -> str:
    """``comparison.md``: one table per model (sets as columns), the chosen points, BinaryRelax vs BinaryConnect."""
    lines = [
        f"# brelax compare: {study.dataset}, {study.epochs} epochs, {study.seeds} seeds",
        "",
        "Test accuracy (%) at P(y) after the last epoch: mean ± std [95% t-interval] over seeds; "
        "hyperparameters chosen on a validation split of the training images "
        f"({GRID_SIZE} grid points per method). Training time summed over the runs: "
        f"{train_minutes(records):.1f} min (one process, one torch thread); wall time of this invocation "
        f"{minutes:.1f} min (runs reused with --resume cost nothing).",
        "",
    ]
    for model in study.models:
        lines += [f"## {model}", "", *table_lines(records, study, model), ""]
        lines.append("Chosen hyperparameters (lr; rho or ramp and Phase II start as fractions of the epochs):")
        lines.append("")
        for r in records:
            if r["model"] == model:
                lines.append(f"- {r['method']}, {r['set']}: {json.dumps(r['chosen'])}")
        lines.append("")
    lines.append("Bold: the best quantized method's mean in each column (overlapping intervals mean no clear winner).")
    vs = versus(records)
    if vs:
        lines += ["", "BinaryRelax (geometric) minus BinaryConnect, test accuracy points:", ""]
        for v in vs:
            verdict = "95% intervals disjoint" if v["disjoint"] else "95% intervals overlap"
            lines.append(f"- {v['model']}, {v['set']}: {100 * v['diff']:+.1f} ({verdict})")
    return "\n".join(lines) + "\n"


def figure(records: list, study: Study, path: str) -> None:
    """Test accuracy against epoch per method, mean and a band of +-1 std over seeds, one panel per (model, set)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(m, s) for m in study.models for s in study.sets]
    cols = len(study.sets)
    fig, axes = plt.subplots(len(study.models), cols, figsize=(4.2 * cols, 3.2 * len(study.models)), squeeze=False)
    for ax, (model, qset) in zip(axes.flat, panels, strict=True):
        for method in study.methods:
            key = qset if METHODS[method].quantized else "float"
            r = next((r for r in records if r["model"] == model and r["set"] == key and r["method"] == method), None)
            if r is None or not r["curves"] or any(len(c) != study.epochs for c in r["curves"]):
                continue
            c = 100 * np.array(r["curves"])
            m, s = c.mean(0), c.std(0, ddof=1) if len(c) > 1 else np.zeros(c.shape[1])
            ep = np.arange(1, study.epochs + 1)
            style = "--" if method == "float" else "-"
            ax.plot(ep, m, style, label=METHODS[method].label, lw=1.3)
            ax.fill_between(ep, m - s, m + s, alpha=0.2)
        ax.set_title(f"{model}, {SETS[qset].label}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy at P(y) (%)")
        ax.set_ylim(max(0, ax.get_ylim()[0]), 100)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    from .._atomic import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def write_outputs(records: list, study: Study, out: str, minutes: float, plot: bool = True) -> dict:
    """Write ``comparison.json``, ``comparison.md`` and (``plot``) ``comparison.png``; return the JSON object."""
    doc = {
        "protocol": {
            "grid_size": GRID_SIZE,
            "selection_seeds": list(SELECTION_SEEDS),
            "val_fraction": VAL_FRACTION,
            "lr_drops": list(LR_DROPS),
            "evaluation": "test accuracy at P(y) after the last epoch, BatchNorm statistics re-estimated at P(y)",
            "ci95": "mean +- t_{0.975,n-1} std/sqrt(n)",
        },
        "study": _study_dict(study),
        "minutes": minutes,
        "train_minutes": train_minutes(records),
        "winners": {f"{m}/{s}": w for (m, s), w in winners(records).items()},
        "binaryrelax_vs_binaryconnect": versus(records),
        "records": records,
    }
    atomic_write_text(os.path.join(out, "comparison.json"), json.dumps(doc, indent=1) + "\n")
    atomic_write_text(os.path.join(out, "comparison.md"), markdown(records, study, minutes))
    if plot:
        figure(records, study, os.path.join(out, "comparison.png"))
    return doc


# ----------------------------------------------------------------------------- command line

CIFAR_RHOS = (1.02, 1.04)


def _floats(text: str, flag: str, size: int) -> tuple:
    """``size`` positive floats from a comma-separated ``text``; UsageError naming ``flag`` otherwise."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise _args.UsageError(f"{flag} {text!r}: not comma-separated numbers") from None
    if len(values) != size or not all(math.isfinite(v) and v > 0 for v in values):
        raise _args.UsageError(f"{flag} {text!r}: needs {size} positive numbers (every grid has {GRID_SIZE} points)")
    return values


QUICK = dict(models=("digits_mlp",), sets=("binary",), epochs=6, seeds=2)


def _csv(valid, flag):
    def parse(s):
        items = tuple(v.strip() for v in s.split(",") if v.strip())
        bad = [v for v in items if v not in valid]
        if bad or not items:
            raise _args.UsageError(f"{flag} {s!r}: valid values are {', '.join(valid)}")
        return items

    return parse


def add_arguments(p) -> None:
    d = Study()
    p.add_argument("--out", default="brelax-out/compare", help="results folder")
    p.add_argument("--dataset", default=d.dataset, choices=("digits", "cifar10", "cifar100"))
    p.add_argument("--data", metavar="DIR", help="CIFAR python archive or folder (CIFAR only)")
    p.add_argument(
        "--models",
        type=str,
        default=None,
        help="comma-separated (default digits_cnn,digits_mlp; CIFAR: vgg11,resnet20)",
    )
    p.add_argument("--sets", type=str, default=",".join(d.sets), help=f"comma-separated from {', '.join(SETS)}")
    p.add_argument("--methods", type=str, default=",".join(d.methods), help=f"from {', '.join(METHODS)}")
    p.add_argument("--epochs", type=int, default=None, help="the epoch budget of every method (default 30)")
    p.add_argument("--seeds", type=int, default=None, help="test seeds per method (default 5)")
    p.add_argument("--batch-size", type=int, default=None, help="default 64 (digits), 128 (CIFAR)")
    p.add_argument(
        "--recipe",
        default="default",
        choices=("default", "yin2018"),
        help="yin2018: VGG-11 with conv biases, one scale per tensor, lam0 1.04 (the authors' code)",
    )
    p.add_argument(
        "--lrs", type=str, help=f"the 2 lrs of the relaxed methods' grids (default {','.join(map(str, d.lrs))})"
    )
    p.add_argument(
        "--lrs-wide",
        type=str,
        help=f"the {GRID_SIZE} lrs of BinaryConnect's and float's grids (default {','.join(map(str, d.lrs_wide))})",
    )
    p.add_argument("--rhos", type=str, help=f"the 2 rho values (default {','.join(map(str, d.rhos))}; CIFAR 1.02,1.04)")
    p.add_argument("--limit-train", type=int, help="first N training images only")
    p.add_argument("--limit-test", type=int, help="first N test images only")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--jobs", type=int, default=1, help="training runs in parallel processes (one thread each)")
    p.add_argument("--quick", action="store_true", help="digits_mlp, binary, 6 epochs, 2 seeds (a few minutes)")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="skip comparison.png (no matplotlib)")
    p.add_argument("--resume", action="store_true", help="reuse the runs already in OUT/runs")
    p.add_argument("--force", action="store_true", help="write into a non-empty OUT, rerunning everything")


def study_from_args(args) -> Study:
    """The :class:`Study` of the command line (``--quick`` first, explicit flags on top)."""
    cifar = args.dataset != "digits"
    values: dict = dict(QUICK) if args.quick else {}
    values["dataset"] = args.dataset
    values["data"] = args.data
    if args.models:
        values["models"] = _csv(MODEL_NAMES, "--models")(args.models)
    elif cifar:
        values["models"] = ("vgg11", "resnet20")
    for name in ("sets", "methods"):
        if args.quick and getattr(args, name) == ",".join(getattr(Study(), name)):
            continue  # --quick's own default
        values[name] = _csv(tuple(SETS) if name == "sets" else tuple(METHODS), "--" + name)(getattr(args, name))
    for name in ("epochs", "seeds", "batch_size"):
        v = getattr(args, name)
        if v is not None:
            values[name] = _args.int_at_least(v, "--" + name.replace("_", "-"), 2 if name == "seeds" else 1)
    if cifar and args.batch_size is None:
        values["batch_size"] = 128
    if cifar and args.epochs is None:
        values["epochs"] = 200 if args.recipe == "yin2018" else 30
    for name in ("limit_train", "limit_test"):
        v = getattr(args, name)
        if v is not None:
            values[name] = _args.int_at_least(v, "--" + name.replace("_", "-"), 1)
    if cifar:
        values["rhos"] = CIFAR_RHOS  # lam = rho**e over 200 epochs: the authors' 1.04 and a slower one
    for name, size in (("lrs", 2), ("lrs_wide", GRID_SIZE), ("rhos", 2)):
        v = getattr(args, name, None)
        if v is not None:
            values[name] = _floats(v, "--" + name.replace("_", "-"), size)
    values["recipe"] = args.recipe
    values["device"] = args.device
    study = Study(**values)
    for m in study.models:
        if (m in DIGITS_MODELS) != (study.dataset == "digits"):
            raise _args.UsageError(f"--models {m}: does not fit --dataset {study.dataset}")
    if cifar and not study.data:
        raise _args.UsageError("--data DIR is needed for --dataset " + study.dataset)
    if str(study.device).startswith("cuda") and not torch.cuda.is_available():
        raise _args.UsageError(f"--device {study.device}: CUDA is not available on this machine")
    return study


def main(args) -> int:
    study = study_from_args(args)
    jobs = _args.int_at_least(args.jobs, "--jobs", 1)
    if jobs > 1 and study.device != "cpu":
        raise _args.UsageError(f"--jobs {jobs}: parallel processes are for --device cpu; a GPU runs one at a time")
    out = _args.output_dir(args.out)
    held = [f for f in os.listdir(out) if not f.startswith(".")]
    if held and not (args.resume or args.force):
        raise _args.UsageError(f"--out {out!r} is not empty; give --resume to reuse its runs or --force to redo them")
    if args.force and not args.resume:
        runs = os.path.join(out, "runs")
        for f in os.listdir(runs) if os.path.isdir(runs) else ():
            if f.endswith(".json"):
                os.unlink(os.path.join(runs, f))
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    records = run_study(study, out, jobs)
    minutes = (time.perf_counter() - t0) / 60
    write_outputs(records, study, out, minutes, plot=args.plot)
    with open(os.path.join(out, "comparison.md")) as md:
        print(md.read())
    return 0
