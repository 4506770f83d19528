"""QuantOptimizer: the same step rules as brelax.optimize, around any torch optimizer."""

import copy
import io
import math

import numpy as np
import pytest
import torch
from torch import nn

import brelax
from brelax import steps
from brelax.torch import QuantOptimizer

pytestmark = pytest.mark.usefixtures("torch_one_thread")


METHOD_PAIRS = [
    ("binaryrelax", "binaryrelax"),
    ("binaryconnect", "binaryconnect"),
    ("pgd", "pgd"),
    ("proxquant", "proxquant"),
    ("gd", "gd"),
]


def _lsq_run(method, prob, y0, steps_, lr, schedule="step", epoch_every=None, qset="binary", **kw):
    """Plain SGD on f(w) = 1/2 ||A w - b||^2, one weight, through QuantOptimizer."""
    A, b = torch.tensor(prob.A), torch.tensor(prob.b)
    w = nn.Parameter(torch.tensor(y0))
    with pytest.warns(UserWarning, match="1-D"):  # one vector, quantized on purpose
        opt = QuantOptimizer(
            torch.optim.SGD([{"params": [w], "qset": qset}], lr=lr),
            method=method,
            schedule=schedule,
            diagnostics=True,
            **kw,
        )
    rows = []
    for t in range(steps_):
        opt.zero_grad()
        (0.5 * ((A @ w - b) ** 2).sum()).backward()
        opt.step()
        if epoch_every and (t + 1) % epoch_every == 0:
            opt.epoch_end()
        rows.append({**opt.last_diagnostics["layers"]["group0.param0"], "mu": opt.last_diagnostics["mu"]})
    return w, opt, rows


@pytest.mark.parametrize("method", [m for _, m in METHOD_PAIRS])
def test_update_is_init_after_the_anchor_step(method):
    """The factorisation the wrapper relies on: update(s, g) == init(anchor(s) - lr g), bitwise."""
    m = steps.METHODS[method]
    rng = np.random.default_rng(0)
    project = lambda w: brelax.ternary().project(w)  # noqa: E731
    s = m.init(rng.standard_normal(20), 0.3, project)
    g = rng.standard_normal(20)
    new = m.update(s, g, 0.07, 0.6, project)
    anchor = (s.y if m.lazy else s.x) - 0.07 * g
    via_init = m.init(anchor, 0.6, project)
    for a, b in zip(new, via_init, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("method,ref", METHOD_PAIRS)
def test_plain_sgd_reproduces_brelax_optimize(method, ref):
    prob = brelax.problems.least_squares(40, 12, "binary", noise=0.1, seed=1)
    y0 = np.random.default_rng(3).standard_normal(12)
    kw = dict(lam0=0.5, rho=1.1, phase2_start=20)
    traj = brelax.optimize(prob, method=ref, qset="binary", steps=30, lr=0.05, y0=y0, **kw)
    w, opt, rows = _lsq_run(method, prob, y0, 30, 0.05, **kw)
    opt.finalize()
    np.testing.assert_allclose(w.detach().numpy(), traj.x, rtol=0, atol=1e-12)
    assert [r["flips"] for r in rows] == traj.flips.tolist()
    for key, arr in (("aoc", traj.aoc), ("step_norm2", traj.step_norm2)):
        np.testing.assert_allclose([r[key] for r in rows], arr, rtol=1e-9, atol=1e-12)
    for key in ("dist_x", "dist_y", "mu"):
        np.testing.assert_allclose([r[key] for r in rows], getattr(traj, key)[1:], rtol=1e-9, atol=1e-12)


def test_epoch_schedule_matches_lam_every_and_phase2():
    prob = brelax.problems.least_squares(30, 10, "ternary", noise=0.05, seed=2)
    y0 = np.random.default_rng(5).standard_normal(10)
    kw = dict(lam0=1.0, rho=1.5, phase2_start=12)
    traj = brelax.optimize(prob, method="binaryrelax", qset="ternary", steps=15, lr=0.05, y0=y0, lam_every=4, **kw)
    w, opt, rows = _lsq_run("binaryrelax", prob, y0, 15, 0.05, schedule="epoch", epoch_every=4, qset="ternary", **kw)
    np.testing.assert_allclose([r["mu"] for r in rows], traj.mu[1:], rtol=1e-15)
    np.testing.assert_allclose([r["aoc"] for r in rows], traj.aoc, rtol=1e-9, atol=1e-12)
    assert opt.phase == 2 and opt.mu == 1.0 and opt.epoch == 3
    # Phase II: x = y - (y - P(y)), which is P(y) up to rounding.
    y = opt.state[w]["latent"]
    assert torch.allclose(w.detach(), brelax.ternary().project(y), rtol=0, atol=1e-14)
    opt.finalize()
    np.testing.assert_allclose(w.detach().numpy(), traj.x, atol=1e-12)


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def _batch(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 3, 4, 4, generator=g, dtype=torch.float64), torch.randint(0, 5, (8,), generator=g)


def _train(model, opt, seeds):
    for s in seeds:
        x, t = _batch(s)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), t).backward()
        opt.step()


def _make(seed=0, method="binaryrelax", base="sgd", **kw):
    torch.manual_seed(seed)
    model = TinyNet().double()
    params = model.named_parameters()
    inner = (
        torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
        if base == "sgd"
        else torch.optim.Adam(params, lr=1e-2)
    )
    return model, QuantOptimizer(inner, method=method, qset="ternary", **kw)


def test_default_plan_conv_and_linear_weights_per_channel():
    model, opt = _make()
    assert [s.name for s in opt.slots] == ["conv.weight", "fc.weight"]
    assert all(s.axis == 0 for s in opt.slots)
    # x_0 = y_0 - mu_0 (y_0 - P(y_0)) with mu_0 = 1/2, and the float tensors untouched.
    for s in opt.slots:
        y = opt.state[s.param]["latent"]
        p = brelax.ternary().project(y, axis=0)
        assert torch.equal(s.param.detach(), brelax.relax(y, p, 0.5))
    groups = [
        {"params": [model.conv.weight], "qset": "binary", "axis": None},
        {"params": [model.fc.weight, model.conv.bias], "qset": None},
    ]
    opt2 = QuantOptimizer(torch.optim.SGD(groups, lr=0.1), qset="ternary")
    assert [(s.index, s.qset.name, s.axis) for s in opt2.slots] == [(0, "binary", None)]


def test_lazy_step_is_the_base_step_on_y_with_the_gradient_at_x():
    model, opt = _make()
    w = model.conv.weight
    shadow = nn.Parameter(opt.state[w]["latent"].clone())
    ref = torch.optim.SGD([shadow], lr=0.1, momentum=0.9, weight_decay=1e-4)
    for s in range(3):
        x, t = _batch(s)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), t).backward()
        shadow.grad = w.grad.clone()
        ref.step()
        opt.step()
        y = opt.state[w]["latent"]
        assert torch.equal(y, shadow.detach())
        assert torch.equal(w.detach(), brelax.relax(y, brelax.ternary().project(y, axis=0), opt.mu))


@pytest.mark.parametrize("base", ["sgd", "adam"])
@pytest.mark.parametrize("method", ["binaryrelax", "proxquant", "pgd"])
def test_state_dict_round_trip_is_exact(method, base):
    model, opt = _make(method=method, base=base, schedule="epoch", phase2_start=4)
    _train(model, opt, range(3))
    opt.epoch_end()
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    ck = torch.load(buf, weights_only=True)
    model2, opt2 = _make(seed=1, method=method, base=base, schedule="epoch", phase2_start=4)  # other init
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["opt"])
    assert (opt2.lam, opt2.mu, opt2.phase, opt2.step_count, opt2.epoch) == (opt.lam, opt.mu, 1, 3, 1)
    assert opt2.param_groups is opt2.base.param_groups
    _train(model, opt, range(3, 6))
    _train(model2, opt2, range(3, 6))
    assert opt2.phase == 2
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)
    if method != "pgd":
        for s, s2 in zip(opt.slots, opt2.slots, strict=True):
            assert torch.equal(opt.state[s.param]["latent"], opt2.state[s2.param]["latent"])


def test_load_state_dict_refuses_another_plan_or_method():
    _model, opt = _make()
    sd = opt.state_dict()
    _, other = _make(method="binaryconnect")
    with pytest.raises(ValueError, match="method"):
        other.load_state_dict(sd)
    model3 = TinyNet().double()
    opt3 = QuantOptimizer(torch.optim.SGD(model3.parameters(), lr=0.1), qset="binary")
    with pytest.raises(ValueError, match="different tensors"):
        opt3.load_state_dict(sd)


def test_finalize_lands_in_q_and_quantized_context_restores_x():
    model, opt = _make(method="binaryrelax")
    _train(model, opt, range(2))
    x_before = [p.detach().clone() for p in model.parameters()]
    with opt.quantized():
        for s in opt.slots:
            assert brelax.ternary().contains(s.param.detach(), axis=0)
            assert torch.equal(s.param.detach(), brelax.ternary().project(opt.state[s.param]["latent"], axis=0))
    for a, b in zip(x_before, model.parameters(), strict=True):
        assert torch.equal(a, b)
    qt = opt.quantized_tensors()["conv.weight"]
    opt.finalize()
    assert torch.equal(model.conv.weight.detach(), qt.dequantize())


def test_works_with_an_lr_scheduler_and_the_diagnostics_are_finite():
    model, opt = _make(diagnostics=True)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[1], gamma=0.1)
    _train(model, opt, range(1))
    sched.step()
    assert math.isclose(opt.base.param_groups[0]["lr"], 0.01)
    _train(model, opt, range(1, 2))
    d = opt.last_diagnostics
    assert set(d["layers"]) == {"conv.weight", "fc.weight"}
    for row in d["layers"].values():
        assert row["flips"] >= 0 and math.isfinite(row["aoc"]) and row["step_norm2"] > 0
        assert math.isclose(row["dist_x"], (1 - d["mu"]) * row["dist_y"])
    # the totals run over every parameter, the float ones (conv.bias, BN, fc.bias) included
    assert d["total"]["step_norm2"] > sum(r["step_norm2"] for r in d["layers"].values())


def test_non_finite_anchor_raises_naming_the_tensor():
    model, opt = _make()
    x, t = _batch(0)
    nn.functional.cross_entropy(model(x), t).backward()
    model.fc.weight.grad[0, 0] = math.inf
    with pytest.raises(FloatingPointError, match=r"fc\.weight"):
        opt.step()


def test_bad_arguments():
    model = TinyNet()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="base_optimizer"):
        QuantOptimizer(model.parameters())
    with pytest.raises(ValueError, match="method"):
        QuantOptimizer(sgd, method="ste")
    with pytest.raises(ValueError, match="rho"):
        QuantOptimizer(sgd, rho=0.5)
    with pytest.raises(ValueError, match="schedule"):
        QuantOptimizer(sgd, schedule="batch")
    with pytest.raises(ValueError, match="phase2_start"):
        QuantOptimizer(sgd, phase2_start=-1)
    with pytest.raises(ValueError, match="unknown set"):
        QuantOptimizer(sgd, qset="quaternary")
    with pytest.raises(TypeError, match="axis"):
        QuantOptimizer(sgd, axis=0.5)


def test_mu_schedule_ramp_matches_brelax_optimize():
    prob = brelax.problems.least_squares(30, 8, "binary", noise=0.1, seed=4)
    y0 = np.random.default_rng(1).standard_normal(8)
    ramp = brelax.schedules.linear_mu(10)
    traj = brelax.optimize(
        prob, method="binaryrelax", qset="binary", steps=14, lr=0.05, y0=y0, mu_schedule=ramp, phase2_start=12
    )
    w, opt, rows = _lsq_run("binaryrelax", prob, y0, 14, 0.05, mu_schedule=ramp, phase2_start=12)
    np.testing.assert_allclose([r["mu"] for r in rows], traj.mu[1:], rtol=1e-15)
    opt.finalize()
    np.testing.assert_allclose(w.detach().numpy(), traj.x, atol=1e-12)


# ------------------------------------------------- torch's and PARQ's conventions (issue 21)


def test_state_dict_has_torchs_layout_and_a_base_state_dict_loads():
    model, opt = _make(schedule="epoch", phase2_start=4)
    _train(model, opt, range(2))
    sd = opt.state_dict()
    assert {"state", "param_groups", "quant"} == set(sd)
    assert sd["state"].keys() == opt.base.state_dict()["state"].keys()
    # a plain SGD state dict (no brelax entries) loads: momentum buffers come back, counts stay
    _, opt2 = _make(seed=1, schedule="epoch", phase2_start=4)
    opt2.load_state_dict(opt.base.state_dict())
    for k, v in opt.base.state_dict()["state"].items():
        assert torch.equal(opt2.base.state_dict()["state"][k]["momentum_buffer"], v["momentum_buffer"])
    assert opt2.step_count == 0


def test_distributed_checkpoint_round_trips_the_whole_optimizer():
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    model, opt = _make(schedule="epoch")
    _train(model, opt, range(2))
    osd = copy.deepcopy(get_optimizer_state_dict(model, opt))  # keeps only "state" and "param_groups"
    assert set(osd) == {"state", "param_groups"}
    assert torch.equal(
        osd["state"]["conv.weight"]["momentum_buffer"], opt.base.state[model.conv.weight]["momentum_buffer"]
    )
    model2, opt2 = _make(seed=1, schedule="epoch")
    model2.load_state_dict(model.state_dict())
    set_optimizer_state_dict(model2, opt2, osd)
    assert opt2.step_count == 2 and torch.equal(
        opt2.state[model2.conv.weight]["latent"], opt.state[model.conv.weight]["latent"]
    )
    _train(model, opt, range(2, 4))
    _train(model2, opt2, range(2, 4))
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"lam0": 2.0}, "lam0"),
        ({"rho": 1.1}, "rho"),
        ({"phase2_start": 9}, "phase2_start"),
        ({"mu_schedule": brelax.schedules.linear_mu(7)}, "mu_schedule"),
        ({"schedule": "step"}, "schedule"),
    ],
)
def test_load_refuses_another_schedule_unless_strict_false(kw, field):
    model, opt = _make(schedule="epoch", phase2_start=4, mu_schedule=brelax.schedules.linear_mu(5))
    _train(model, opt, range(2))
    sd = opt.state_dict()
    base = {"schedule": "epoch", "phase2_start": 4, "mu_schedule": brelax.schedules.linear_mu(5)}
    _, other = _make(seed=1, **{**base, **kw})
    with pytest.raises(ValueError, match=field):
        other.load_state_dict(sd)
    kept = other.load_state_dict(sd, strict=False)
    assert any(d.startswith(field) for d in kept), kept
    assert getattr(other, field if field != "mu_schedule" else "mu_schedule") == {**base, **kw}[field]
    assert other.step_count == 2


def test_load_refuses_other_base_hyperparameters_and_keeps_its_own_when_not_strict():
    model, opt = _make()
    _train(model, opt, range(1))
    sd = opt.state_dict()
    torch.manual_seed(0)
    model2 = TinyNet().double()
    opt2 = QuantOptimizer(
        torch.optim.SGD(model2.named_parameters(), lr=0.1, momentum=0.0, weight_decay=0.0), qset="ternary"
    )
    with pytest.raises(ValueError, match=r"momentum saved 0\.9, here 0\.0"):
        opt2.load_state_dict(sd)
    opt2.load_state_dict(sd, strict=False)
    assert opt2.param_groups[0]["momentum"] == 0.0 and opt2.param_groups[0]["weight_decay"] == 0.0


def test_load_restores_x_in_the_parameters_and_restore_latent_params():
    model, opt = _make(schedule="epoch")
    _train(model, opt, range(2))
    sd = copy.deepcopy(opt.state_dict())  # torch's load keeps the tensors it is given (momentum shared)
    x_saved = model.conv.weight.detach().clone()
    model2, opt2 = _make(seed=1, schedule="epoch")  # the model is NOT loaded: x comes from y alone
    opt2.load_state_dict(sd)
    assert torch.equal(model2.conv.weight.detach(), x_saved)
    opt2.restore_latent_params()
    assert torch.equal(model2.conv.weight.detach(), opt.state[model.conv.weight]["latent"])
    with pytest.raises(RuntimeError, match="restore_x"):  # a gradient taken at y fits no step rule
        _train(model2, opt2, range(2, 3))
    # restore_x() writes x back bit for bit; training continues exactly as if y had never been restored
    model2.load_state_dict(model.state_dict())
    opt2.restore_latent_params()
    opt2.restore_x()
    assert torch.equal(model2.conv.weight.detach(), x_saved)
    _train(model, opt, range(2, 3))
    _train(model2, opt2, range(2, 3))
    assert torch.equal(model.conv.weight, model2.conv.weight)


def test_attribute_delegation_and_base_validation():
    _, opt = _make()
    opt.base.warmup_note = "from the base"  # an attribute only the base optimizer has
    assert opt.warmup_note == "from the base" and opt.defaults["momentum"] == 0.9
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = opt.no_such_thing
    with pytest.raises(TypeError, match="closure"):
        QuantOptimizer(torch.optim.LBFGS(TinyNet().parameters()))


def test_non_finite_float_parameter_raises_naming_it():
    model, opt = _make()
    x, t = _batch(0)
    nn.functional.cross_entropy(model(x), t).backward()
    model.fc.bias.grad[0] = math.nan  # a float (unquantized) parameter
    with pytest.raises(FloatingPointError, match=r"fc\.bias"):
        opt.step()


def test_diagnostics_before_a_step_is_a_dataclass():
    import dataclasses

    model, opt = _make(diagnostics=True)
    _train(model, opt, range(1))
    assert dataclasses.is_dataclass(opt._pending)
    assert opt._pending.anchors is not None  # momentum: the anchor step's direction is measured
