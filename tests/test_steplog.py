"""The torch step log (RUN/steps/) of brelax train on the digits: contents, resume, NaN stop, load_run."""

import math
import os
import shutil

import numpy as np
import pytest
import torch

from brelax.torch import steplog
from brelax.torch.train import TrainConfig, TrainingStopped, train

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _cfg(out, **kw):
    base = dict(
        dataset="digits",
        model="digits_cnn",
        out=str(out),
        epochs=2,
        batch_size=64,
        limit_train=256,
        limit_test=100,
        milestones=[1],
        phase2_epoch=1,
        eval_train=False,
        progress=False,
        quiet=True,
        noise_every=3,
    )
    base.update(kw)
    return TrainConfig(**base)


def _cols(out, epoch):
    with np.load(steplog.epoch_path(str(out), epoch)) as z:
        return {k: z[k] for k in z.files}


def test_a_digits_run_writes_a_step_log_that_loads_as_a_trajectory(tmp_path):
    res = train(_cfg(tmp_path / "r"))
    traj = steplog.load_run(tmp_path / "r")
    assert traj.steps == 8 and traj.meta["steps_per_epoch"] == 4 and traj.meta["stochastic"] is True
    assert traj.meta["method"] == "binaryrelax" and traj.meta["layers"] == [s.name for s in res.optimizer.slots]
    assert traj.meta["row_min"] == 9 and traj.meta["levels"] == [1.0] and traj.meta["n_quantized"] == 5832
    for k in (
        "step_norm2",
        "inner",
        "cross",
        "aoc",
        "sgrad_norm2",
        "sg_dot_D",
        "sg_dot_r",
        "stable_norm2",
        "pattern_gap",
        "loss",
    ):
        assert np.all(np.isfinite(traj.arrays[k])), k
    for k in ("dist_y", "dist_x", "mu", "scale_min", "scale_max"):
        assert traj.arrays[k].shape == (9,) and np.all(np.isfinite(traj.arrays[k])), k
    for k in ("f", "grad_norm2", "g_dot_D", "noise_norm2", "f_stable", "stable_g_dot_D"):
        assert np.all(np.isnan(traj.arrays[k])), k  # the full gradient and f are unknown in SGD training
    pair = traj.noise_pair_norm2
    assert np.all(np.isfinite(pair[::3])) and np.all(pair[::3] > 0) and np.all(np.isnan(pair[1::3]))
    # lr per epoch (milestone 1), mu per epoch, Phase II from epoch 1: mu of x_{t+1} is 1 from the 4th step on
    np.testing.assert_array_equal(traj.lr[:-1], [0.1] * 4 + [0.1 * 0.1] * 4)
    assert traj.mu[0] == 0.5 and np.all(traj.mu[4:] == 1.0) and np.all(traj.dist_x[4:] == 0)
    # per-layer columns add up (with the float parameters) to the totals
    lay = sum(d["step_norm2"] for d in traj.layers.values())
    assert np.all(lay <= traj.step_norm2 * (1 + 1e-12)) and np.all(lay > 0)
    assert sum(d["flips"] for d in traj.layers.values()).tolist() == traj.flips.tolist()
    # the last step of epoch 1: the row recorded after epoch_end re-formed x (Phase II: x = P(y))
    assert traj.dist_x[4] == 0.0
    assert not [f for f in os.listdir(tmp_path / "r" / "steps") if f.endswith(".tmp")]


def test_noise_pairs_leave_the_run_unchanged_bit_for_bit(tmp_path):
    a = train(_cfg(tmp_path / "a", epochs=1))
    b = train(_cfg(tmp_path / "b", epochs=1, noise_every=0))
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)
    ca, cb = _cols(tmp_path / "a", 1), _cols(tmp_path / "b", 1)
    assert np.array_equal(ca["loss"], cb["loss"]) and np.all(np.isnan(cb["noise_pair_norm2"]))


def test_resume_drops_epochs_past_the_checkpoint_and_reproduces_the_uninterrupted_log(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    train(_cfg(full, epochs=3))
    train(_cfg(part, epochs=2))
    # a crash after epoch 3's log was written but before its checkpoint: a stale (here: wrong) epoch 3 file
    shutil.copy(steplog.epoch_path(str(part), 1), steplog.epoch_path(str(part), 3))
    shutil.copy(steplog.epoch_path(str(part), 1), steplog.epoch_path(str(part), 7))
    (part / "steps" / ".epoch_0003.npz.x1y2.tmp").write_bytes(b"torn")  # an interrupted atomic write
    train(_cfg(part, epochs=3, resume=True))
    assert sorted(os.listdir(part / "steps")) == [
        "epoch_0001.npz",
        "epoch_0002.npz",
        "epoch_0003.npz",
        "meta.json",
        "start.npz",
    ]
    a, b = steplog.load_run(full), steplog.load_run(part)
    assert b.steps == 12
    for k, v in a.arrays.items():
        np.testing.assert_array_equal(v, b.arrays[k], err_msg=k)
    for name, d in a.layers.items():
        for k, v in d.items():
            np.testing.assert_array_equal(v, b.layers[name][k], err_msg=f"{name}.{k}")


def test_a_nan_stop_keeps_the_steps_of_the_broken_epoch(tmp_path):
    def poison(step, loss):
        return loss * math.nan if step == 6 else loss

    with pytest.raises(TrainingStopped):
        train(_cfg(tmp_path / "r"), on_loss=poison)
    t = steplog.load_run(tmp_path / "r")
    assert t.steps == 6 and t.meta["partial"] is True
    assert _cols(tmp_path / "r", 2)["partial"].tolist() == [1.0, 1.0]


def test_load_run_refuses_what_is_not_a_step_log(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"steps/meta\.json"):
        steplog.load_run(tmp_path)
    train(_cfg(tmp_path / "r", epochs=3, noise_every=0))
    os.unlink(steplog.epoch_path(str(tmp_path / "r"), 2))
    with pytest.raises(ValueError, match="gaps"):
        steplog.load_run(tmp_path / "r")
    with pytest.raises(ValueError, match="noise_every"):
        steplog.StepLog(str(tmp_path), True, noise_every=-1)


def test_no_diagnostics_no_step_log(tmp_path):
    train(_cfg(tmp_path / "r", epochs=1, diagnostics=False))
    assert not os.path.exists(tmp_path / "r" / "steps")


def test_digits_and_cifar_models_do_not_mix_and_float_is_no_method():
    with pytest.raises(ValueError, match="do not fit"):
        TrainConfig(dataset="digits", model="resnet20").validate()
    with pytest.raises(ValueError, match="do not fit"):
        TrainConfig(dataset="cifar10", model="digits_mlp", synthetic=True).validate()
    with pytest.raises(ValueError, match="method"):
        TrainConfig(dataset="digits", model="digits_mlp", method="float").validate()
    TrainConfig(dataset="digits", model="digits_mlp", method="gd").validate()  # no --data needed


def test_epoch_end_losses_come_from_the_metrics_rows_and_a_damaged_row_is_named(tmp_path):
    import json

    out = tmp_path / "r"
    train(_cfg(out, epochs=2, noise_every=0, eval_train=True, sampling="with_replacement"))
    tr = steplog.load_run(out)
    assert tr.meta["sampling"] == "with_replacement"  # theory's word for Theorems II.10-II.11
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [tr.f[r["step"]] for r in rows] == [r["train_loss_x"] for r in rows]
    assert np.isfinite(tr.f).sum() == 2
    with open(out / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"step": 3, "train_loss_x": \n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl, line 3: not a JSON row"):
        steplog.load_run(out)
    with pytest.raises(ValueError, match="unknown sampling 'bogus'"):
        _cfg(tmp_path / "s", sampling="bogus").validate()
