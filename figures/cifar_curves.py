"""Figure 10: CIFAR training curves read from ``brelax train``'s ``RUN/metrics.jsonl``.

One JSON row per epoch (:mod:`brelax.torch.train`): ``epoch``, ``lr``, ``lam``,
``mu``, ``phase``, ``train_loss``/``train_acc`` (may be null), ``test_loss``,
``test_acc`` (of the quantized model), ``running_loss``/``running_acc`` (at x on
the augmented batches), ``aoc_mean``/``aoc_max``/``aoc_nonpos_frac``, ``flips``,
``layers`` (per layer: ``aoc_mean``, ``aoc_max``, ``aoc_nonpos_frac``, ``flips``,
``dist_y``), ``seconds``, ``images_per_s``. Missing keys are drawn as gaps.

Panels: (a) accuracy, (b) loss, (c) lam (log) and mu, (d) the AOC ratio per
layer (epoch mean of delta_t, symlog) with the epoch's max over all layers.

The bottom row reads the run's **step log** (``RUN/steps/``, beside ``metrics.jsonl``;
:func:`brelax.torch.steplog.load_run`): (e) delta_t per quantized layer at every step
(resolved steps only, :func:`theory.resolution.resolved`), (f) flips per epoch and layer,
(g) this project's every-step inequality **[R]** (THEORY.md, Theorem II.2, projection
monotonicity) summed over the run: measured ``-sum_t <G_t, D_t + (mu_(t+1) - mu_t) r_t>``
against the bound ``sum_t (1 - mu_(t+1)) g_t ||G_t||^2`` (the measured sum must stay above),
with the fraction of steps ``brelax verify`` covers per epoch (:func:`proofs_checks.verify_run`).
Without ``--metrics`` the bottom row shows a real NumPy run with the same fields
(BinaryRelax on the digits MLP, :mod:`figures._digits`, 10 steps to an "epoch"), labelled so.

Without ``--metrics`` the script writes a small **synthetic example** log
(``cifar_curves_example_metrics.jsonl``, seeded, in the same format) into
``--out`` and plots that, with "SYNTHETIC EXAMPLE" in the title, so the
figure always exists; it is not a training result.

Run: ``python -m figures.cifar_curves --metrics RUN/metrics.jsonl --out DIR``.
Data: ``cifar_curves.json`` (the source, and every series drawn).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from .style import CYCLE, atomic_write, new_figure, save_figure, save_json, script_main, symlog_y

#: Steps per "epoch" of the NumPy example run drawn when there is no step log.
EXAMPLE_STEPS_PER_EPOCH = 10

NAME = "cifar_curves"
EXAMPLE_LOG = "cifar_curves_example_metrics.jsonl"
SERIES = (
    "epoch",
    "lr",
    "lam",
    "mu",
    "phase",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "running_loss",
    "running_acc",
    "aoc_mean",
    "aoc_max",
    "aoc_nonpos_frac",
    "flips",
    "seconds",
    "images_per_s",
)


def read_metrics(path) -> list:
    """The rows of a metrics.jsonl (blank lines skipped).

    Raises
    ------
    ValueError
        A line that is not a JSON object, or a row without an integer ``epoch``;
        the message names the file and the line.
    """
    rows = []
    with open(path) as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
                raise ValueError(f"{path}:{i}: expected a JSON object with an integer 'epoch', got {line[:80]!r}")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no metrics rows")
    return rows


def series(rows) -> dict:
    """Columns of the rows (None -> NaN), plus ``layers``: ``{name: {key: [...]}}``."""

    def num(v):
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan

    out = {k: [num(r.get(k)) for r in rows] for k in SERIES if k != "phase"}
    out["phase"] = [r.get("phase") for r in rows]
    names = []
    for r in rows:
        for n in r.get("layers") or {}:
            if n not in names:
                names.append(n)
    out["layers"] = {
        n: {
            k: [num(((r.get("layers") or {}).get(n) or {}).get(k)) for r in rows]
            for k in ("aoc_mean", "aoc_max", "aoc_nonpos_frac", "flips", "dist_y")
        }
        for n in names
    }
    return out


def example_rows(epochs: int, seed: int) -> list:
    """A synthetic log in the train format (seeded): plausible shapes, not a training result."""
    rng = np.random.default_rng([seed, 10])
    layers = ("features.0", "features.4", "features.8", "features.11")
    p2 = int(0.75 * epochs)
    rows = []
    for e in range(epochs):
        lr = 0.1 * 0.1 ** ((e >= int(0.4 * epochs)) + (e >= int(0.7 * epochs)))
        lam = 1.04**e
        mu = 1.0 if e >= p2 else lam / (1 + lam)
        prog = 1 - math.exp(-e / (0.15 * epochs))
        acc = 0.5 + 0.38 * prog + 0.02 * (lr < 0.1) + 0.01 * (lr < 0.01) + rng.normal(0, 0.006)
        per = {}
        for j, n in enumerate(layers):
            scale = (0.2 + 0.15 * j) * (1 - mu if e < p2 else 0.05)
            per[n] = {
                "aoc_mean": float(-0.3 + scale + rng.normal(0, 0.02)),
                "aoc_max": float(0.5 + 2 * scale + abs(rng.normal(0, 0.1))),
                "aoc_nonpos_frac": float(min(1.0, 0.6 + 0.4 * mu)),
                "flips": int(5000 * (1 - prog) * (0.2 if e >= p2 else 1.0) * (j + 1)),
                "dist_y": None,
            }
        rows.append(
            {
                "epoch": e + 1,
                "step": (e + 1) * 391,
                "lr": lr,
                "lam": lam,
                "mu": mu,
                "phase": "II" if e >= p2 else "I",
                "eval_weights": "quantized",
                "train_loss": None,
                "train_acc": None,
                "test_loss": float(1.6 * (1 - acc) + 0.1),
                "test_acc": float(acc),
                "running_loss": float(1.5 * (1 - acc) + 0.05),
                "running_acc": float(acc + 0.03),
                "aoc_mean": float(np.mean([v["aoc_mean"] for v in per.values()])),
                "aoc_max": float(max(v["aoc_max"] for v in per.values())),
                "aoc_nonpos_frac": float(min(1.0, 0.6 + 0.4 * mu)),
                "flips": int(sum(v["flips"] for v in per.values())),
                "layers": per,
                "seconds": 20.0,
                "images_per_s": 2500.0,
            }
        )
    return rows


def write_example(out: str, epochs: int, seed: int) -> str:
    data = "".join(json.dumps(r) + "\n" for r in example_rows(epochs, seed)).encode()
    return atomic_write(os.path.join(out, EXAMPLE_LOG), lambda fh: fh.write(data))


def steplog_series(traj, source: str, steps_per_epoch=None) -> dict:
    """What the bottom row draws, from a trajectory with the step-log fields (a torch run or a NumPy run).

    ``steps_per_epoch`` None: the trajectory's ``epoch`` column (1-based, a step log).
    """
    from proofs_checks import coverage as cov
    from proofs_checks import verify_run
    from theory import ProjectionMonotonicity
    from theory.resolution import resolved

    T = len(traj.step_norm2)
    if steps_per_epoch is None and getattr(traj, "arrays", {}).get("epoch") is not None:
        epoch = np.asarray(traj.epoch, dtype=int)
    else:
        epoch = np.arange(T) // int(steps_per_epoch or 1) + 1
    epochs = sorted(set(epoch.tolist()))
    layers = {}
    blocks = getattr(traj, "layers", {}) or {"total": traj.arrays}
    for name, lay in blocks.items():
        d2 = np.asarray(lay["step_norm2"], dtype=float)
        r = lay.get("dist_y")
        aoc = np.where(resolved(d2, r), np.asarray(lay["aoc"], dtype=float), np.nan)
        fl = np.asarray(lay["flips"], dtype=float)
        layers[name] = {"aoc": aoc.tolist(), "flips_per_epoch": [float(fl[epoch == e].sum()) for e in epochs]}
    mu, lr = np.asarray(traj.mu, dtype=float), np.asarray(traj.lr, dtype=float)
    measured = -(np.asarray(traj.sg_dot_D, dtype=float) + (mu[1:] - mu[:-1]) * np.asarray(traj.sg_dot_r, dtype=float))
    bound = -ProjectionMonotonicity().bound(lr=lr[:-1], mu_next=mu[1:], sgrad_norm2=np.asarray(traj.sgrad_norm2))
    results = verify_run(traj, key="run")
    mask = cov.conformance_mask(results, T)  # a torch run's record conforms; its guarantees need same-batch checks
    mono = next(r for r in results if r.name == "projection_monotonicity")
    return {
        "source": source,
        "steps": T,
        "epochs": epochs,
        "step_epoch": epoch.tolist(),
        "layers": layers,
        "cum_measured": np.cumsum(measured).tolist(),
        "cum_bound": np.cumsum(bound).tolist(),
        "monotonicity_status": mono.status,
        "conformance_steps": int(mask.sum()),
        "conformance_per_epoch": [float(mask[epoch == e].mean()) for e in epochs],
        "violated": [r.name for r in results if r.status == "violated"],
    }


def read_steplog(metrics_path):
    """The step log beside ``metrics_path`` (``RUN/steps/``) as :func:`steplog_series`, or None if there is none."""
    run = os.path.dirname(os.path.abspath(metrics_path))
    if not os.path.isdir(os.path.join(run, "steps")):
        return None
    from brelax.torch.steplog import load_run

    return steplog_series(load_run(run), os.path.join(run, "steps"))


def example_steplog(quick: bool, seed: int) -> dict:
    """The bottom row without a step log: BinaryRelax on the digits MLP (NumPy, real), as if logged."""
    from . import _digits

    traj = _digits.run("binaryrelax", "binary", quick, seed)
    return steplog_series(
        traj, "NumPy example: BinaryRelax on the digits MLP (brelax.optimize), not a torch run", EXAMPLE_STEPS_PER_EPOCH
    )


def _plot_steplog(axes, st):
    ax_e, ax_f, ax_g, ax_h = axes
    t = np.arange(st["steps"])
    for i, (name, lay) in enumerate(st["layers"].items()):
        c = CYCLE[i % len(CYCLE)]
        ax_e.plot(t, lay["aoc"], color=c, lw=0.7, label=name)
        ax_f.plot(st["epochs"], lay["flips_per_epoch"], color=c, marker="o", ms=2.5, lw=1.0, label=name)
    vals = np.abs(np.concatenate([np.asarray(v["aoc"], dtype=float) for v in st["layers"].values()]))
    vals = vals[np.isfinite(vals)]
    wide = vals.size and vals.max() > 10
    if wide:
        symlog_y(ax_e, 1e-2, every=1)
    ax_e.set_ylabel(r"$\delta_t$ per layer" + (" (symlog)" if wide else ""))
    ax_e.set_xlabel("step t")
    ax_e.legend(loc="upper right", fontsize=6.5)
    ax_f.set_ylabel("flips per epoch")
    ax_f.set_xlabel("epoch")
    ax_g.plot(t, st["cum_measured"], color="k", label="measured")
    ax_g.plot(t, st["cum_bound"], color="#d62728", ls="--", label="bound [R]")
    ax_g.set_xlabel("step t")
    ax_g.set_ylabel("cumulative (log)")
    pos = [v for v in st["cum_measured"] + st["cum_bound"] if v > 0]
    if pos:
        ax_g.set_yscale("log")
    ax_g.legend(loc="lower right", fontsize=7)
    ax_h.bar(st["epochs"], st["conformance_per_epoch"], color="#2ca02c", width=0.8)
    ax_h.axhline(0.95, color="k", ls="--", lw=1)
    ax_h.set_ylim(0, 1.05)
    ax_h.set_xlabel("epoch")
    ax_h.set_ylabel("conforming fraction")
    ax_e.set_title("(e) AOC ratio per layer, every step", fontsize=9)
    ax_f.set_title("(f) flips per epoch", fontsize=9)
    ax_g.set_title(f"(g) every-step inequality, Thm II.2 [R]: {st['monotonicity_status']}", fontsize=9)
    ax_h.set_title(
        f"(h) steps whose record conforms (brelax verify): {st['conformance_steps']}/{st['steps']}", fontsize=9
    )


def plot(data: dict):
    s = data["series"]
    ep = np.asarray(s["epoch"])
    fig, axes = new_figure(4, 2, figsize=(7.6, 10.4))
    (ax_a, ax_l), (ax_m, ax_d) = axes[0], axes[1]
    for key, lab, ls in (
        ("test", "test (quantized)", "-"),
        ("train", "train (quantized)", "--"),
        ("running", "running, at x (augmented)", ":"),
    ):
        ax_a.plot(ep, s[f"{key}_acc"], ls=ls, color="k" if key == "test" else "#1f77b4", label=lab)
        ax_l.plot(ep, s[f"{key}_loss"], ls=ls, color="k" if key == "test" else "#1f77b4", label=lab)
    ax_a.set_ylabel("accuracy")
    ax_a.legend(loc="lower right", fontsize=7)
    ax_l.set_ylabel("cross-entropy")
    ax_l.set_yscale("log")
    ax_m.plot(ep, s["lam"], color="#d62728", label="lam (log, left)")
    ax_m.set_yscale("log")
    ax_m.set_ylabel("lam")
    tw = ax_m.twinx()
    tw.plot(ep, s["mu"], color="#2ca02c", label="mu (right)")
    tw.set_ylim(-0.02, 1.05)
    tw.set_ylabel("mu")
    tw.grid(False)
    tw.spines["right"].set_visible(True)
    h1, l1 = ax_m.get_legend_handles_labels()
    h2, l2 = tw.get_legend_handles_labels()
    ax_m.legend(h1 + h2, l1 + l2, loc="center right", fontsize=7)
    for i, (name, lay) in enumerate(s["layers"].items()):
        ax_d.plot(ep, lay["aoc_mean"], color=CYCLE[i % len(CYCLE)], lw=1.0, label=name)
    ax_d.plot(ep, s["aoc_max"], color="k", ls="--", lw=0.9, label="max over layers")
    symlog_y(ax_d, 1e-2, every=1)
    ax_d.set_ylabel(r"AOC $\delta_t$ (epoch mean, symlog)")
    ax_d.legend(loc="upper right", fontsize=6.5, ncol=2)
    phase2 = [e for e, ph in zip(ep, s["phase"], strict=True) if ph in ("II", 2, "2")]
    for ax in (ax_a, ax_l, ax_m, ax_d):
        if phase2:
            ax.axvspan(min(phase2) - 0.5, max(phase2) + 0.5, color="k", alpha=0.06, lw=0)
    for ax in (ax_m, ax_d):
        ax.set_xlabel("epoch (shaded: Phase II)")
    ax_a.set_title("(a) accuracy", fontsize=9)
    ax_l.set_title("(b) loss", fontsize=9)
    ax_m.set_title("(c) relaxation schedule", fontsize=9)
    ax_d.set_title("(d) AOC ratio per quantized layer", fontsize=9)
    st = data.get("steplog")
    if st is not None:
        _plot_steplog(list(axes[2]) + list(axes[3]), st)
    else:
        for ax in list(axes[2]) + list(axes[3]):
            ax.text(
                0.5,
                0.5,
                "no step log (RUN/steps/) beside the metrics",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
            )
            ax.set_axis_off()
    title = "CIFAR training curves from " + os.path.basename(str(data["source"]))
    if data["synthetic"]:
        title = "SYNTHETIC EXAMPLE (not a training result): " + title
    if st is not None:
        where = st["source"] if data["synthetic"] else os.path.basename(os.path.dirname(str(st["source"]))) + "/steps"
        title += f"\n[R]: this project's results; bottom rows: step log ({where})"
    fig.suptitle(title, fontsize=9.5, color="#b00000" if data["synthetic"] else "k")
    return fig


def make(out: str, quick: bool = False, seed: int = 0, metrics=None) -> list:
    paths = []
    synthetic = metrics is None
    if synthetic:
        metrics = write_example(out, 20 if quick else 60, seed)
        paths.append(metrics)
    data = {
        "source": os.path.abspath(metrics),
        "synthetic": synthetic,
        "series": series(read_metrics(metrics)),
        "steplog": example_steplog(quick, seed) if synthetic else read_steplog(metrics),
    }
    return paths + save_figure(plot(data), out, NAME) + [save_json(out, NAME, data)]


def _extra(parser):
    parser.add_argument(
        "--metrics",
        default=None,
        metavar="RUN/metrics.jsonl",
        help="the training log to plot (default: write and plot a synthetic example)",
    )


def main(argv=None) -> int:
    return script_main(make, __doc__.splitlines()[0], argv, extra=_extra)


if __name__ == "__main__":
    raise SystemExit(main())
