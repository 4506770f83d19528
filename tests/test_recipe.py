"""``--recipe yin2018`` against an independent transcription of the authors' update.

The transcription below is written from the recipe's description (lam times
1.04 at the start of every epoch, the first included; one scale per whole conv
tensor; weight decay on every parameter; SGD with momentum; MultiStep lr;
Phase II x = P(y)) in plain torch, without the brelax optimizer, projections or
schedules. Their ``sign`` maps 0 to 0 (``torch.sign``); ours maps it to +a. The
float64 random weights here have no exact zeros, so the iterates must agree.
"""

import argparse
import json

import pytest
import torch
import torch.nn.functional as F

from brelax import schedules
from brelax.torch import train_cli
from brelax.torch.models import VGG
from brelax.torch.train import RECIPES, TrainConfig, best_phase2, build_optimizer, recipe_config

# A two-conv VGG for 4x4 inputs: conv(+bias)-BN-ReLU-pool twice, then Linear 6 -> 3.
TINY = (4, "M", 6, "M")
EPOCHS, STEPS, BATCH = 5, 3, 8
# The recipe with its epoch marks moved so that 15 steps cross both lr drops and the start of Phase II.
SHORT = {"epochs": EPOCHS, "milestones": [2, 3], "phase2_epoch": 4, "synthetic": True, "diagnostics": False}


def _net():
    torch.manual_seed(0)
    return VGG(TINY, num_classes=3, bn=True, conv_bias=True).double()


def _batches():
    g = torch.Generator().manual_seed(1)
    return [
        [
            (torch.randn(BATCH, 3, 4, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (BATCH,), generator=g))
            for _ in range(STEPS)
        ]
        for _ in range(EPOCHS)
    ]


def _snapshot(net):
    return {n: p.detach().clone() for n, p in net.named_parameters()}


def _run_recipe(cfg, batches):
    """The recipe through brelax, as ``brelax train`` runs an epoch; the parameters at every gradient, y after."""
    net = _net()
    opt = build_optimizer(cfg, net, STEPS)
    lr_of = schedules.multistep(cfg.lr, cfg.milestones, cfg.gamma)
    xs, ys = [], []
    for epoch, epoch_batches in enumerate(batches):
        for g in opt.param_groups:
            g["lr"] = lr_of(epoch)
        net.train()
        for xb, yb in epoch_batches:
            xs.append(_snapshot(net))
            (F.cross_entropy(net(xb), yb, reduction="sum") * (1 / len(yb))).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            ys.append({s.name: opt.state[s.param]["latent"].clone() for s in opt.slots})
        opt.epoch_end()
    return xs, ys, opt


def _transcription(batches, milestones, phase2_epoch):
    """Their update, from the description only: plain torch, nothing from brelax."""
    net = _net()
    params = dict(net.named_parameters())
    conv = [f"{n}.weight" for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]  # first conv included
    y = {n: params[n].detach().clone() for n in conv}
    buf, lam, xs, ys = {}, 1.0, [], []
    for epoch, epoch_batches in enumerate(batches):
        lam *= 1.04  # at the start of every epoch, the first included
        lr = 0.1 * 0.1 ** sum(epoch >= m for m in milestones)
        net.train()
        for xb, yb in epoch_batches:
            with torch.no_grad():
                for n in conv:
                    p = y[n].abs().mean() * torch.sign(y[n])  # one scale for the whole tensor
                    params[n].copy_(p if epoch >= phase2_epoch else (y[n] + lam * p) / (1 + lam))
            xs.append(_snapshot(net))
            net.zero_grad()
            F.cross_entropy(net(xb), yb).backward()
            with torch.no_grad():
                for n, w in params.items():
                    v = y.get(n, w)  # the float weights y for conv weights, the parameter otherwise
                    d = w.grad + 1e-4 * v  # weight decay on every parameter, BN and biases included
                    buf[n] = d.clone() if n not in buf else 0.9 * buf[n] + d
                    v -= lr * buf[n]
            ys.append({n: t.clone() for n, t in y.items()})
    return xs, ys


def test_recipe_matches_the_transcription_of_the_authors_update_to_1e12(torch_one_thread):
    cfg = recipe_config("yin2018", **SHORT)
    batches = _batches()
    xs, ys, opt = _run_recipe(cfg, batches)
    xs_t, ys_t = _transcription(batches, SHORT["milestones"], SHORT["phase2_epoch"])
    assert len(xs) == len(xs_t) == EPOCHS * STEPS
    assert [s.name for s in opt.slots] == sorted(ys_t[0], key=list(xs[0]).index)  # the convs, the classifier float
    for t, (a, b) in enumerate(zip(xs, xs_t, strict=True)):  # the point of every gradient, every parameter
        for n in a:
            torch.testing.assert_close(a[n], b[n], rtol=0, atol=1e-12, msg=lambda m, t=t, n=n: f"x_{t} {n}: {m}")
    for t, (a, b) in enumerate(zip(ys, ys_t, strict=True)):
        for n in a:
            torch.testing.assert_close(a[n], b[n], rtol=0, atol=1e-12, msg=lambda m, t=t, n=n: f"y_{t} {n}: {m}")
    # The run really crossed Phase II, both lr drops, and moved far from the start.
    w = "features.0.weight"
    x_p2 = xs[4 * STEPS][w]
    assert torch.unique(x_p2.abs()).numel() == 1  # one scale per tensor: x = P(y) = a sign(y)
    assert torch.unique(xs[0][w].abs()).numel() > 1  # Phase I: relaxed
    assert (xs[-1][w] - xs[0][w]).abs().max() > 1e-3


def test_the_transcription_catches_a_per_channel_scale_and_lam_from_1(torch_one_thread):
    """The comparison can fail: our default's two differences each move the iterates by far more than 1e-12."""
    batches = _batches()
    xs_t, _ = _transcription(batches, SHORT["milestones"], SHORT["phase2_epoch"])
    for wrong in ({"axis": 0}, {"lam0": 1.0}):
        xs, _, _ = _run_recipe(recipe_config("yin2018", **SHORT, **wrong), batches)
        gap = max((a[n] - b[n]).abs().max().item() for a, b in zip(xs, xs_t, strict=True) for n in a)
        assert gap > 1e-6, wrong


def test_recipe_values_and_overrides():
    cfg = recipe_config("yin2018")
    assert (cfg.model, cfg.axis, cfg.lam0, cfg.rho, cfg.conv_bias, cfg.include_last_fc) == (
        "vgg11",
        None,
        1.04,
        1.04,
        True,
        False,
    )
    assert (cfg.epochs, cfg.phase2_epoch, cfg.milestones, cfg.batch_size, cfg.momentum, cfg.weight_decay) == (
        200,
        150,
        [80, 140],
        128,
        0.9,
        1e-4,
    )
    cfg.milestones.append(1)
    assert RECIPES["yin2018"]["milestones"] == [80, 140]  # a config owns its list
    assert recipe_config("default") == TrainConfig()
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        recipe_config("nope")
    with pytest.raises(TypeError, match="not TrainConfig fields: lambda0"):
        recipe_config("yin2018", lambda0=1.0)


def _parse(argv):
    p = argparse.ArgumentParser()
    train_cli.add_arguments(p)
    return train_cli.config_from_args(p.parse_args(argv))


def test_flags_given_explicitly_override_the_recipe_even_at_their_default_value():
    cfg = _parse(["--recipe", "yin2018", "--synthetic", "--axis", "0", "--lam0", "1.0", "--epochs", "3"])
    assert (cfg.recipe, cfg.model, cfg.axis, cfg.lam0, cfg.epochs, cfg.rho) == ("yin2018", "vgg11", 0, 1.0, 3, 1.04)
    cfg = _parse(["--recipe", "yin2018", "--synthetic", "--model", "resnet20", "--no-conv-bias"])
    assert (cfg.model, cfg.conv_bias, cfg.axis) == ("resnet20", False, None)
    assert _parse(["--synthetic"]) == TrainConfig(synthetic=True)


def test_best_phase2_picks_each_evaluation_points_best_phase2_epoch():
    rows = [
        {"epoch": 1, "phase": 1, "test_acc": 0.9, "test_acc_authors": 0.95},
        {"epoch": 2, "phase": 2, "test_acc": 0.6, "test_acc_authors": 0.7},
        {"epoch": 3, "phase": 2, "test_acc": 0.65, "test_acc_authors": 0.5},
    ]
    best = best_phase2(rows)
    assert best["authors"] == {"epoch": 2, "test_acc": 0.6, "test_acc_authors": 0.7}
    assert best["ours"]["epoch"] == 3
    assert best_phase2(rows[:1]) is None


@pytest.mark.slow
def test_brelax_train_recipe_yin2018_synthetic(tmp_path, torch_one_thread):
    """The real VGG-11: lam 1.04, 1.0816 from epoch 0, one scale per tensor, both accuracies, the Phase II best."""
    from brelax.cli import main

    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--recipe",
            "yin2018",
            "--synthetic",
            "--synthetic-n",
            "10",
            "--batch-size",
            "10",
            "--eval-batch-size",
            "10",
            "--epochs",
            "2",
            "--phase2-epoch",
            "1",
            "--no-eval-train",
            "--no-diagnostics",
            "--no-progress",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lam"] for r in rows] == pytest.approx([1.04, 1.04**2], rel=1e-15)
    assert [r["phase"] for r in rows] == [1, 2]
    assert rows[0]["mu_authors"] == pytest.approx(1.04 / 2.04) and rows[1]["mu_authors"] == 1.0
    assert all(0 <= r["test_acc_authors"] <= 1 and 0 <= r["test_acc"] <= 1 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["axis"] is None and summary["config"]["recipe"] == "yin2018"
    assert summary["best_phase2"]["authors"]["epoch"] == 2
    ck = torch.load(out / "ckpt.pt", weights_only=True)
    plan = ck["optimizer"]["quant"]["plan"]
    assert len(plan) == 8 and {p["axis"] for p in plan} == {None}  # all 8 convs, first included, one scale each
    assert all(n in ck["model"] for n in ("features.0.bias", "classifier.weight"))


def test_train_evaluates_the_authors_point_the_x_of_each_epochs_last_step(tmp_path, monkeypatch, torch_one_thread):
    """Through ``train()``: every epoch's second evaluation sees exactly the weights of its last gradient."""
    from brelax.torch import train as T

    nets, xs, seen = [], [], []

    def tiny(name, classes, seed=None, **kw):  # a VGG for 32x32 inputs with 4 channels everywhere
        torch.manual_seed(seed)
        nets.append(VGG((4, "M") * 5, classes, bn=True, conv_bias=kw["conv_bias"]))
        return nets[-1]

    def convs(net):
        return [m.weight.detach().clone() for m in net.modules() if isinstance(m, torch.nn.Conv2d)]

    def on_loss(step, loss):
        xs.append(convs(nets[0]))  # the weights this step's gradient is taken at
        return loss

    evaluate = T.evaluate

    def spy(net, loader, ctx, cfg):
        out = evaluate(net, loader, ctx, cfg)
        seen.append((convs(net), out))
        return out

    monkeypatch.setattr(T, "build_model", tiny)
    monkeypatch.setattr(T, "evaluate", spy)
    cfg = recipe_config(
        "yin2018",
        synthetic=True,
        synthetic_n=30,
        batch_size=10,
        eval_batch_size=10,
        epochs=2,
        phase2_epoch=1,
        eval_train=False,
        progress=False,
        quiet=True,
        out=str(tmp_path / "run"),
    )
    result = T.train(cfg, on_loss=on_loss)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(xs) == 6 and len(seen) == 4  # 3 steps and 2 evaluations (ours, theirs) per epoch
    for e, row in enumerate(rows):
        (ours_w, ours), (theirs_w, theirs) = seen[2 * e], seen[2 * e + 1]
        assert all(torch.equal(a, b) for a, b in zip(theirs_w, xs[3 * e + 2], strict=True))
        assert (row["test_loss_authors"], row["test_acc_authors"]) == theirs
        assert (row["test_loss"], row["test_acc"]) == ours
        assert all(torch.unique(w.abs()).numel() == 1 for w in ours_w)  # ours: P(y) after the epoch
        assert not any(torch.equal(a, b) for a, b in zip(ours_w, theirs_w, strict=True))
    assert all(torch.unique(w.abs()).numel() > 1 for w in xs[2])  # epoch 0 (Phase I): the relaxed x
    assert all(torch.unique(w.abs()).numel() == 1 for w in xs[5])  # epoch 1 (Phase II): P(y) before the last update
    assert [r["mu_authors"] for r in rows] == [pytest.approx(1.04 / 2.04), 1.0]
    assert result.summary["best_phase2"]["authors"]["epoch"] == 2


def test_parq_recipe_ramps_mu_linearly_in_the_step_up_to_phase2():
    cfg = recipe_config("parq", synthetic=True, phase2_epoch=2)
    assert (cfg.axis, cfg.mu_schedule, cfg.model) == (0, "linear", TrainConfig().model)
    opt = build_optimizer(cfg, _net(), steps_per_epoch=3)  # Phase II from step 6
    mus = [opt.mu]
    for _epoch in range(3):
        for _ in range(3):
            opt.step()  # no gradients: only the schedule moves
            mus.append(opt.mu)
        opt.epoch_end()
    assert mus == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1, 1, 1, 1], abs=1e-15)
    with pytest.raises(ValueError, match="--phase2-epoch, which must be >= 1"):
        recipe_config("parq", synthetic=True, phase2_epoch=None).validate()
