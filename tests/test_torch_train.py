"""``brelax train`` on a tiny CIFAR-format archive: weights in Q, exact resume, NaN stop, safe checkpoints."""

import json
import math
import os
import pickle
import shutil

import pytest
import torch

import brelax
from brelax import cli
from brelax.torch import write_tiny_cifar
from brelax.torch.checkpoint import check_plain, save_atomic
from brelax.torch.train import TrainConfig, TrainingStopped, train

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_tiny_cifar(root, "cifar10", n_train=32, n_test=16, seed=0, archive=True)
    return root


def _cfg(tiny, out, **kw):
    base = dict(
        data=str(tiny),
        out=str(out),
        model="resnet20",
        set="ternary",
        epochs=1,
        batch_size=16,
        eval_batch_size=32,
        milestones=[1],
        progress=False,
        seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


def _load(path):
    return torch.load(path, weights_only=True)


def _same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory):
    """Two epochs straight; one epoch, then a resume for the second."""
    d = tmp_path_factory.mktemp("runs")
    straight = train(_cfg(tiny, d / "straight", epochs=2))
    train(_cfg(tiny, d / "resumed", epochs=1))
    shutil.copy(d / "resumed" / "ckpt.pt", d / "epoch1.pt")
    resumed = train(_cfg(tiny, d / "resumed", epochs=2, resume=True))
    return d, straight, resumed


def test_resume_is_bit_identical(runs):
    d, straight, resumed = runs
    a, b = _load(d / "straight" / "ckpt.pt"), _load(d / "resumed" / "ckpt.pt")
    assert a["epoch"] == b["epoch"] == 2
    _same_state(a["model"], b["model"])
    _same_state(a["optimizer"]["quant"]["latent"], b["optimizer"]["quant"]["latent"])
    _same_state(a["optimizer"]["state"][0], b["optimizer"]["state"][0])
    assert a["optimizer"]["quant"]["step"] == b["optimizer"]["quant"]["step"] == 4
    _same_state(straight.model.state_dict(), resumed.model.state_dict())
    rows = [json.loads(line) for line in (d / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    straight_rows = [json.loads(line) for line in (d / "straight" / "metrics.jsonl").read_text().splitlines()]
    for key in ("test_loss", "test_acc", "train_loss", "lam", "mu", "flips", "aoc_mean"):
        assert rows[1][key] == straight_rows[1][key], key


def test_quantized_weights_are_in_q_per_channel_and_the_metrics_row(runs):
    d, straight, _ = runs
    Q = brelax.ternary()
    slots = straight.optimizer.slots
    assert [s.name for s in slots][:2] == ["conv1.weight", "layer1.0.conv1.weight"]
    assert "fc.weight" not in {s.name for s in slots}  # the classifier stays float
    for s in slots:
        w = s.param.detach()
        assert Q.contains(w, axis=0), s.name
        assert torch.equal(w, Q.project(straight.optimizer.state[s.param]["latent"], axis=0))
    # Phase I in the checkpoint: x = y - mu (y - P(y)), mu = lam / (1 + lam), lam = 1.04**2 after two epochs.
    ck = _load(d / "straight" / "ckpt.pt")
    quant, lam = ck["optimizer"]["quant"], 1.04**2
    for rec in quant["plan"]:
        y = quant["latent"][rec["index"]]
        x = brelax.relax(y, Q.project(y, axis=0), lam / (1 + lam))
        assert torch.allclose(ck["model"][rec["name"]], x, rtol=0, atol=1e-6), rec["name"]
    row = straight.summary["last"]
    assert row["epoch"] == 2 and row["eval_weights"] == "quantized" and row["lr"] == pytest.approx(0.01)
    assert row["lam"] == pytest.approx(1.04) and row["mu"] == pytest.approx(1.04 / 2.04)
    assert 0 <= row["test_acc"] <= 1 and math.isfinite(row["test_loss"]) and row["images_per_s"] > 0
    assert set(row["layers"]) == {s.name for s in slots} and row["flips"] >= 0


def test_checkpoint_holds_only_tensors_and_primitives(runs):
    d, _, _ = runs
    ck = _load(d / "straight" / "ckpt.pt")  # weights_only=True: no code runs on load
    check_plain(ck)
    assert {"model", "optimizer", "rng", "config", "epoch"} <= set(ck)
    with pytest.raises(TypeError, match="set"):
        save_atomic({"x": {1, 2}}, d / "bad.pt")
    assert not (d / "bad.pt").exists()
    with open(d / "evil.pt", "wb") as f:
        pickle.dump({"format": "brelax-train-1", "x": os.system}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        _load(d / "evil.pt")


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(runs, tiny):
    d, _, _ = runs
    out = d / "nan"

    def poison(step, loss):
        return loss * math.nan if step == 2 else loss  # the first step of epoch 2

    with pytest.raises(TrainingStopped, match="non-finite loss at epoch 2"):
        train(_cfg(tiny, out, epochs=2), on_loss=poison)
    ck, good = _load(out / "ckpt.pt"), _load(d / "epoch1.pt")
    assert ck["epoch"] == 1
    _same_state(ck["model"], good["model"])
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_cli_exits_nonzero_on_divergence(tiny, tmp_path, capsys):
    rc = cli.main(
        [
            "train",
            "--data",
            str(tiny),
            "--model",
            "resnet20",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--lr",
            "1e30",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--no-eval-train",
        ]
    )
    assert rc == 3
    assert "stopped" in capsys.readouterr().err
    ck = _load(tmp_path / "ckpt.pt")
    assert ck["epoch"] in (0, 1)
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_vgg11_binary_one_epoch_through_the_cli(tiny, tmp_path):
    rc = cli.main(
        [
            "train",
            "--data",
            str(tiny),
            "--model",
            "vgg11",
            "--set",
            "binary",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--limit-train",
            "16",
            "--phase2-epoch",
            "1",
        ]
    )
    assert rc == 0
    ck = _load(tmp_path / "ckpt.pt")
    quant = ck["optimizer"]["quant"]
    assert len(quant["plan"]) == 8  # the 8 convs; the classifier stays float
    Q = brelax.binary()
    for rec in quant["plan"]:
        p = Q.project(quant["latent"][rec["index"]], axis=0)
        assert Q.contains(p, axis=0) and rec["axis"] == 0
        # Phase II from epoch 1 (step 1): x = relax(y, P(y), 1) = y - (y - P(y)), P(y) up to rounding.
        assert Q.contains(ck["model"][rec["name"]], axis=0)
        assert torch.allclose(ck["model"][rec["name"]], p, rtol=0, atol=1e-7)
    assert quant["phase"] == 2 and quant["mu"] == 1.0
    row = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert row["epoch"] == 1 and len(row["layers"]) == 8 and row["phase"] == 1 and row["mu"] == 0.5


def test_resume_refuses_a_different_run(runs, tiny):
    d, _, _ = runs
    with pytest.raises(ValueError, match=r"another run.*--set"):
        train(_cfg(tiny, d / "straight", epochs=3, set="binary", resume=True))


def test_bad_config():
    with pytest.raises(ValueError, match="--data"):
        TrainConfig().validate()
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(synthetic=True, model="resnet18").validate()
    with pytest.raises(ValueError, match="unknown set"):
        TrainConfig(synthetic=True, set="quaternary").validate()
    with pytest.raises(ValueError, match="no-bn"):
        TrainConfig(synthetic=True, bn=False).validate()


def test_init_takes_the_latent_weights_of_a_checkpoint_and_plain_state_dicts(runs, tmp_path):
    from brelax.torch.checkpoint import float_init_state

    d, _, _ = runs
    ck = _load(d / "straight" / "ckpt.pt")
    sd = float_init_state(d / "straight" / "ckpt.pt")
    quant = ck["optimizer"]["quant"]
    for rec in quant["plan"]:
        assert torch.equal(sd[rec["name"]], quant["latent"][rec["index"]])  # y, not x
    assert torch.equal(sd["fc.weight"], ck["model"]["fc.weight"])
    torch.save({"net": {"module." + k: v for k, v in ck["model"].items()}, "acc": 91.0}, tmp_path / "pc.pt")
    _same_state(float_init_state(tmp_path / "pc.pt"), ck["model"])
    torch.save([1, 2], tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="state_dict"):
        float_init_state(tmp_path / "bad.pt")
