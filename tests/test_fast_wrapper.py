"""The QuantOptimizer step without copies (issue 19, item 5): the latent and parameter storages are swapped,
and x = y - mu (y - P(y)) is formed in the parameter itself, bit for bit what brelax.relax returns.

A wrong swap leaves the base step applied to x (not y) or y overwritten by x; a wrong in-place relaxation
differs from brelax.relax in the last bits; both fail here. Diagnostics on take the other path, and the
two must train to the same bits.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import brelax
from brelax.torch.optimizer import QuantOptimizer


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5)).double()


def _batch(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 3, 4, 4, generator=g, dtype=torch.float64), torch.randint(0, 5, (8,), generator=g)


def _opt(model, method, diagnostics, **kw):
    base = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return QuantOptimizer(base, method=method, qset="ternary", diagnostics=diagnostics, **kw)


def _step(model, opt, seed):
    x, t = _batch(seed)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), t).backward()
    opt.step()


@pytest.mark.parametrize("method", ["binaryrelax", "binaryconnect"])
def test_lazy_step_swaps_storage_and_relaxes_in_place(method):
    model = _net()
    opt = _opt(model, method, diagnostics=False, schedule="step", phase2_start=3)
    w = model[0].weight
    shadow = nn.Parameter(opt.state[w]["latent"].clone())
    ref = torch.optim.SGD([shadow], lr=0.1, momentum=0.9)
    ptrs = set()
    for s in range(5):
        _, t = _batch(s)
        opt.zero_grad()
        nn.functional.cross_entropy(model(_batch(s)[0]), t).backward()
        shadow.grad = w.grad.clone()
        ref.step()
        opt.step()
        y = opt.state[w]["latent"]
        assert torch.equal(y, shadow.detach())  # the base step ran on y, and y kept its value
        p = brelax.ternary().project(y, axis=0)
        assert torch.equal(w.detach(), brelax.relax(y, p, opt.mu))  # bit for bit
        if opt.mu == 1:
            assert torch.equal(w.detach(), p)  # Phase II (and BinaryConnect): exactly in Q
        assert y.data_ptr() != w.data_ptr()
        ptrs |= {y.data_ptr(), w.data_ptr()}
    assert len(ptrs) == 2  # two buffers, swapped between y and x at every step


class _FullSize(TorchDispatchMode):
    """Records the aten ops that copy into, or allocate, a tensor of ``numel`` entries."""

    COPY_OR_NEW = {"copy_", "clone", "sub", "mul", "add", "rsub", "lerp", "where"}

    def __init__(self, numel):
        super().__init__()
        self.numel, self.seen = numel, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        full = isinstance(out, torch.Tensor) and out.numel() == self.numel
        if full and name in self.COPY_OR_NEW and func._overloadname in ("default", "Tensor", "Scalar"):
            self.seen.append(name)
        return out


def test_lazy_step_without_diagnostics_copies_nothing_full_size():
    """Only the projection's output is new; no copy of y or x, no temporaries of the relaxation."""
    model = _net()
    opt = _opt(model, "binaryrelax", diagnostics=False)
    w = model[0].weight
    _step(model, opt, 0)
    x, t = _batch(1)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), t).backward()
    with _FullSize(w.numel()) as mode:
        opt.step()
    assert mode.seen == [], mode.seen


@pytest.mark.parametrize("method", ["binaryrelax", "binaryconnect", "pgd", "proxquant"])
def test_diagnostics_on_and_off_train_to_the_same_bits(method):
    a, b = _net(), _net()
    oa, ob = _opt(a, method, diagnostics=False), _opt(b, method, diagnostics=True)
    for s in range(4):
        _step(a, oa, s)
        _step(b, ob, s)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    for sa, sb in zip(oa.slots, ob.slots, strict=True):
        if "latent" in oa.state[sa.param]:
            assert torch.equal(oa.state[sa.param]["latent"], ob.state[sb.param]["latent"])
