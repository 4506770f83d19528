r"""
Comparing with BinaryConnect and PARQ
=====================================

Three ways to train the same network with binary weights, one scale per output row:

* **BinaryConnect** :cite:`courbariaux2015binaryconnect`: the gradient is taken at the quantized
  point :math:`x_t = P(y_t)` (``method="binaryconnect"``, :math:`\mu = 1` throughout);
* **BinaryRelax** :cite:`yin2018binaryrelax`: at the relaxed point
  :math:`x_t = y_t - \mu_t (y_t - P(y_t))`, with :math:`\mu_t` rising to 1 (``method="binaryrelax"``);
* **PARQ** :cite:`jin2025parq`, torchao's ``QuantOptimizer`` with its ``ProxBinaryRelax`` prox map,
  which anneals linearly from the float weights to their quantization.

Each is a wrapper around the same plain ``torch.optim.SGD``, in an ordinary training loop: this is
also how :class:`brelax.torch.QuantOptimizer` goes into a loop of your own. The data are
scikit-learn's 8x8 digits; everything runs on a CPU in a few seconds, so the numbers say how to
use the three, not which is better (for that, see the README's digits table and figure 9 of the
:doc:`../gallery`).
"""

# %%
# The data and the model
# ----------------------
import logging

import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import brelax
import brelax.torch as bt

torch.manual_seed(0)
torch.set_num_threads(1)
digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)
Xtr, Xte, ytr, yte = (torch.as_tensor(a) for a in train_test_split(X, y, test_size=0.25, random_state=0))


def mlp():
    torch.manual_seed(0)  # the same starting point for every method
    return torch.nn.Sequential(
        torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
    )


def train(model, opt, epochs=30, batch=64, on_epoch=None):
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(Xtr), generator=g).split(batch):
            opt.zero_grad()
            loss_fn(model(Xtr[idx]), ytr[idx]).backward()
            opt.step()
        if on_epoch is not None:
            on_epoch()
    return model


def accuracy(model):
    with torch.no_grad():
        return float((model(Xte).argmax(1) == yte).float().mean())


# %%
# brelax: BinaryConnect and BinaryRelax
# -------------------------------------
# :func:`brelax.torch.param_groups` puts the weights to quantize (every Linear but the classifier) in
# the first group. ``epoch_end()`` advances the lam schedule once per epoch, and ``finalize()``
# writes :math:`P(y)` into the model: the binary network that is evaluated and exported.
steps_per_epoch = (len(Xtr) + 63) // 64
results = {}
for method in ("binaryconnect", "binaryrelax"):
    model = mlp()
    base = torch.optim.SGD(bt.param_groups(model, "binary", axis=0), lr=0.1)
    opt = bt.QuantOptimizer(
        base, method=method, qset="binary", axis=0, lam0=1.0, rho=1.2, phase2_start=24 * steps_per_epoch
    )
    train(model, opt, on_epoch=opt.epoch_end)
    opt.finalize()
    results[method] = accuracy(model)

# %%
# PARQ (torchao)
# --------------
# torchao's wrapper takes a quantizer (``UnifQuantizer``, 1 bit: two levels :math:`\pm a` per row)
# and a prox map; ``ProxBinaryRelax(anneal_start, anneal_end)`` moves the weights linearly from the
# float value to the quantized one between those steps, and quantizes them hard after.
for name in ("torchao", "torch.utils._pytree"):  # torchao's import logs CPU-only noise
    logging.getLogger(name).setLevel(logging.ERROR)
from torchao.prototype.parq import ProxBinaryRelax, QuantOptimizer, UnifQuantizer  # noqa: E402

model = mlp()
groups = bt.param_groups(model, "binary", axis=0)
base = torch.optim.SGD(
    [{"params": groups[0]["params"], "quant_bits": 1}] + [{"params": g["params"]} for g in groups[1:]], lr=0.1
)
parq = QuantOptimizer(
    base,
    UnifQuantizer(),
    ProxBinaryRelax(anneal_start=0, anneal_end=24 * steps_per_epoch),
    quant_period=1,
    quant_per_channel=True,
)
train(model, parq)
results["PARQ (ProxBinaryRelax)"] = accuracy(model)
# After anneal_end the weights themselves are binary: two values per row.
w = groups[0]["params"][0].detach()
print("distinct values per row of the first layer:", sorted({len(torch.unique(row)) for row in w}))

# %%
# A float network, quantized once at the end, for scale: exact projection, same granularity.
model = mlp()
train(model, torch.optim.SGD(model.parameters(), lr=0.1))
results["float"] = accuracy(model)
with torch.no_grad():
    for p in bt.param_groups(model, "binary", axis=0)[0]["params"]:
        p.copy_(brelax.binary().project(p, axis=0))
results["float, quantized after training"] = accuracy(model)

for name, acc in results.items():
    print(f"{name:34s} test accuracy {acc:.3f}")

fig, ax = plt.subplots(figsize=(7, 3))
ax.barh(list(results), list(results.values()))
ax.set_xlim(0, 1)
ax.set_xlabel("test accuracy (450 digits)")
ax.invert_yaxis()
fig.tight_layout()
