r"""
Verifying your own torch run
============================

``brelax train`` trains a network with :class:`brelax.torch.QuantOptimizer` and, with diagnostics
on (the default), writes a per-step log into ``RUN/steps/`` (:mod:`brelax.torch.steplog`): for every
step the minibatch loss, :math:`\mu_t`, :math:`\|D_t\|^2`, the AOC ratio :math:`\delta_t`, the flips,
:math:`d_Q(x_t)` and the inner products the theory needs, per quantized tensor and in total.
``brelax verify RUN`` reads that log and checks every result whose inputs the run provides.

Here: a small CNN on scikit-learn's 8x8 digits (offline, no download), on a CPU, in seconds. Plain
SGD (``--momentum 0 --wd 0``), so that the step is :math:`y_{t+1} = y_t - g_t G_t` with :math:`G_t`
the minibatch gradient and ``batch_descent`` (Theorem II.4 on the step's own batch) applies. With
momentum or weight decay (``brelax train``'s defaults) the log records the anchor's actual step as
:math:`G_t` and the anchor step against the quantization patterns, and ``heavy_ball`` (Theorem II.12)
checks a Lyapunov descent instead, a guarantee where :math:`g L_B < 2(1 - \beta)`.
"""

# %%
# Train
# -----
# The same command from a shell is in the comment below; ``--noise-every 5`` also records, every 5
# steps, the gradient of a second, independent minibatch at the same point (the minibatch noise).
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from brelax.torch.steplog import load_run

work = Path(tempfile.mkdtemp(prefix="brelax-tutorial-"))
run = work / "digits"
cmd = [
    sys.executable, "-m", "brelax", "train",
    "--dataset", "digits", "--model", "digits_cnn",
    "--epochs", "8", "--batch-size", "64", "--momentum", "0", "--wd", "0",
    "--milestones", "6", "--phase2-epoch", "6", "--noise-every", "5",
    "--no-progress", "--out", str(run),
]  # fmt: skip
# brelax train --dataset digits --model digits_cnn --epochs 8 --batch-size 64 --momentum 0 --wd 0 \
#     --milestones 6 --phase2-epoch 6 --noise-every 5 --out runs/digits
proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
print(proc.stdout[-1500:])
if proc.returncode != 0:
    raise RuntimeError(f"brelax train exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
print(sorted(p.name for p in run.iterdir()), sorted(p.name for p in (run / "steps").iterdir()))

# %%
# What the run wrote
# ------------------
# ``metrics.jsonl`` has one row per epoch (test accuracy of the *quantized* network :math:`P(y)`,
# :math:`\lambda`, :math:`\mu`, flips, ...); ``steps/`` is the per-step log, which
# :func:`brelax.torch.steplog.load_run` reads as a :class:`brelax.Trajectory`.
rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
traj = load_run(run)
aoc, flips, mu = np.asarray(traj.aoc), np.asarray(traj.flips), np.asarray(traj.mu)
print(f"{len(rows)} epochs, {len(aoc)} steps; final test accuracy at P(y): {rows[-1]['test_acc']:.3f}")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
axes[0].plot([r["epoch"] for r in rows], [r["test_acc"] for r in rows], "o-")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("test accuracy at P(y)")
step = np.arange(len(aoc))
axes[1].plot(step, aoc, ".", ms=3)
axes[1].set_yscale("symlog", linthresh=1e-3)
axes[1].set_xlabel("step")
axes[1].set_ylabel("delta_t (all layers)")
axes[2].semilogy(step, np.maximum(flips, 0.5), lw=0.8, label="flips")
axes[2].set_xlabel("step")
axes[2].set_ylabel("weights that changed level")
ax2 = axes[2].twinx()
ax2.plot(np.arange(len(mu)), mu, color="k", lw=0.8)
ax2.set_ylabel("mu")
fig.tight_layout()

# %%
# Verify
# ------
# A torch run does not know the full gradient, :math:`f` or :math:`L`: the results that need them
# are "assumption not met", with the missing input named. What it does record is enough for the
# conformance results that hold for any gradient the step used (projection monotonicity, Theorem
# II.2 of :doc:`../theory`): they check that the record is BinaryRelax's, step by step. The
# guarantees (descent, rates) need f and L, so the coverage table counts no guarantee step for a
# run like this one, and the rows below it say which input each guarantee lacked.
proc = subprocess.run(
    [sys.executable, "-m", "brelax", "verify", str(run), "--out", str(work / "verify")],
    capture_output=True,
    text=True,
    check=False,
)
print(proc.stdout)
if proc.returncode != 0:
    raise RuntimeError(f"brelax verify exited with {proc.returncode}:\n{proc.stderr}")

# %%
# Your own model
# --------------
# ``brelax train --model`` takes the models of :mod:`brelax.torch.models` and ``--dataset`` CIFAR-10,
# CIFAR-100 (``--data DIR``), digits or ``--synthetic`` images. Every flag is in the :doc:`../cli`;
# every file the run writes is listed in :doc:`../getting_started`.
