"""epoch_bound: Theorem II.10 summed over each epoch, decided by a high-probability form."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest
import torch

import brelax
from brelax import problems as P
from theory import RESULTS, EpochBound
from theory.epochbound import EPOCH_DELTA, VAR_MARGIN, epoch_bounds

SPE = 2  # lsq(m=100) with batches of 64: ceil(100 / 64) batches per epoch


@pytest.fixture(scope="module")
def lsq():
    return P.least_squares(100, 50, "binary", seed=0)


def _run(prob, method="binaryrelax", sampling="with_replacement", steps=200, lr_scale=1.0, **kw):
    kw = {"lam0": 1.0, "rho": 1.0, "phase2_start": None, **kw} if method == "binaryrelax" else kw
    return brelax.optimize(
        prob,
        qset="binary",
        steps=steps,
        lr=lr_scale / prob.L,
        method=method,
        batch_size=64,
        sampling=sampling,
        seed=0,
        **kw,
    )


@pytest.fixture(scope="module")
def wr_run(lsq):
    """BinaryRelax with mu = 1/2 fixed, batches drawn with replacement: every hypothesis can hold."""
    return _run(lsq)


def _copy(traj, meta=None, **fields):
    """A trajectory-like copy of ``traj`` with some fields replaced (``None`` removes one)."""
    d = dict(traj.arrays)
    d.update(fields)
    ns = types.SimpleNamespace(**{k: v for k, v in d.items() if v is not None})
    ns.meta = {**dict(traj.meta), **(meta or {})}
    return ns


def test_registered_as_a_guarantee_of_theorem_ii10():
    assert RESULTS["epoch_bound"] is EpochBound
    assert EpochBound.kind == "guarantee" and EpochBound.label == "Theorem II.10"
    assert EPOCH_DELTA == 1e-3 and VAR_MARGIN == 2.0  # fixed in advance, not per run


@pytest.mark.parametrize("method", ["binaryrelax", "binaryconnect", "gd"])
def test_correct_with_replacement_runs_give_guarantee_epochs_and_nothing_violated(lsq, wr_run, method):
    tr = wr_run if method == "binaryrelax" else _run(lsq, method)
    r = EpochBound().check(tr, steps_per_epoch=SPE)
    assert r.status == "holds", (r.failed_assumptions, r.details["failing_epochs"])
    d = r.details
    assert d["n_epochs"] == 100 and d["failing_epochs"] == []
    assert d["guarantee_epochs"] >= 95  # epoch 0 only estimates sigma^2
    assert d["epochs"][0]["hypotheses_hold"] is False
    assert d["guarantee_steps"] == 2 * d["guarantee_epochs"] and r.covered[0][0] == 2
    for ep in d["epochs"]:
        if ep["hypotheses_hold"]:
            # the measured change, the expectation bound, and the two inequalities of the verdict
            assert ep["Y"] <= ep["pathwise_bound"] + 1e-9 and ep["Y"] < ep["threshold"]
            assert np.isfinite(ep["measured_df"]) and ep["expected_bound"] > 0


def test_sigma2_reads_only_the_earlier_epochs(wr_run):
    """Raising the noise records of one epoch changes sigma_e^2 of the later epochs only (predictable)."""
    a = EpochBound().check(wr_run, steps_per_epoch=SPE).details["epochs"]
    nz = wr_run.noise_norm2.copy()
    nz[60:62] = 1e4  # epoch 30: far above every earlier record
    b = EpochBound().check(_copy(wr_run, noise_norm2=nz), steps_per_epoch=SPE).details["epochs"]
    assert [e["sigma2"] for e in a[:31]] == [e["sigma2"] for e in b[:31]]
    assert b[31]["sigma2"] == pytest.approx(VAR_MARGIN * b[30]["noise_mean"])
    assert b[31]["sigma2"] > 100 * a[31]["sigma2"]
    assert b[30]["hypotheses_hold"] is False  # its own records exceed the estimate: no guarantee, not a violation


def test_an_inflated_epoch_end_loss_is_a_violation(wr_run):
    f = wr_run.f.copy()
    f[150] += 1e-3  # the loss recorded at the end of epoch 74
    r = EpochBound().check(_copy(wr_run, f=f), steps_per_epoch=SPE)
    assert r.status == "violated"
    assert r.details["failing_epochs"] == [74] and r.details["first_failing_t"] == 148
    assert r.details["failed_per_step"]["the epoch inequality held"]["steps"] == [[148, 150]]


def test_noise_records_a_hundred_times_too_small_are_a_violation(wr_run):
    r = EpochBound().check(_copy(wr_run, noise_norm2=wr_run.noise_norm2 / 100), steps_per_epoch=SPE)
    assert r.status == "violated" and len(r.details["failing_epochs"]) >= 10


def _torch_like(traj, every=3):
    """What a ``brelax train`` step log holds: the epoch column and noise pairs every few steps, no ||xi_t||^2."""
    T = len(traj.step_norm2)
    pair = np.full(T, np.nan)
    pair[::every] = 2.0 * traj.noise_norm2[::every]  # E ||G - G'||^2 = 2 sigma^2
    return _copy(traj, noise_norm2=None, noise_pair_norm2=pair, epoch=np.repeat(np.arange(1, T // SPE + 1), SPE))


def test_epoch_column_and_noise_pairs_alone_decide_by_the_markov_form(wr_run):
    tr = _torch_like(wr_run)
    r = EpochBound().check(tr)
    assert r.status == "holds" and r.details["epoch_source"] == "the step log's epoch column"
    assert r.details["noise_source"].startswith("noise_pair_norm2 / 2")
    eps = r.details["epochs"]
    assert all(np.isnan(e["pathwise_bound"]) for e in eps)
    # an epoch without a noise record cannot test the variance hypothesis: no guarantee there
    assert not eps[74]["hypotheses_hold"] and eps[75]["hypotheses_hold"]
    f = wr_run.f.copy()
    f[152] += 2 * eps[75]["threshold"]  # above sigma_e^2 sum kappa / delta: a delta-event or a bug
    bad = EpochBound().check(types.SimpleNamespace(**{**vars(tr), "f": f}))
    assert bad.status == "violated" and bad.details["failing_epochs"] == [75]
    f[152] = wr_run.f[152] + 0.5 * eps[75]["threshold"]  # within the Markov slack: not a contradiction
    assert EpochBound().check(types.SimpleNamespace(**{**vars(tr), "f": f})).status == "holds"


def test_reshuffled_momentum_and_large_step_runs_get_no_guarantee_never_violated(lsq, wr_run):
    shuffled = EpochBound().check(_run(lsq, sampling="shuffle"), steps_per_epoch=SPE)
    assert shuffled.status == "assumption-not-met" and shuffled.covered == []
    assert shuffled.failed_assumptions == ["with-replacement sampling"]

    momentum = EpochBound().check(_copy(wr_run, meta={"plain_sgd": False, "momentum": 0.9}), steps_per_epoch=SPE)
    assert momentum.status == "assumption-not-met"
    assert "G_t = grad f(x_t) + xi_t (plain SGD: no momentum, no weight decay)" in momentum.failed_assumptions

    big = EpochBound().check(_run(lsq, "gd", steps=20, lr_scale=3.0), steps_per_epoch=SPE)
    assert big.status == "assumption-not-met" and big.details["guarantee_epochs"] == 0
    assert big.details["failed_per_step"]["step size g*L < 2 on the epoch"]["steps"] == [[0, 20]]

    bn = EpochBound().check(_copy(wr_run, meta={"batchnorm": True}), steps_per_epoch=SPE)
    assert bn.status == "assumption-not-met"
    assert "f at epoch ends is the function SGD descends (no BatchNorm)" in bn.failed_assumptions


def test_continuation_epochs_are_named_not_checked(lsq):
    tr = _run(lsq, lam0=0.2, rho=1.03, phase2_start=160)  # mu grows every step, then Phase II from step 160
    r = EpochBound().check(tr, steps_per_epoch=SPE)
    assert r.status == "holds"
    fails = r.details["failed_per_step"]["mu fixed in [0, 1] on the epoch (continuation adds K_t)"]
    assert fails["steps"][0][0] == 0 and fails["steps"][-1][1] <= 162
    assert r.covered and r.covered[0][0] >= 160


def test_full_batch_and_unknown_epochs_are_out_of_scope(lsq, wr_run):
    full = brelax.optimize(lsq, qset="binary", steps=20, lr=1 / lsq.L, method="gd", seed=0)
    r = EpochBound().check(full)
    assert r.status == "assumption-not-met" and r.assumptions["minibatch run with epoch boundaries"]["scope"]
    # optimize records its sampler's epoch (meta steps_per_epoch); a record without it has no epochs
    assert EpochBound().check(wr_run).details["epoch_source"] == "meta steps_per_epoch"
    spe = wr_run.meta.pop("steps_per_epoch")
    try:
        assert EpochBound().check(wr_run).assumptions["minibatch run with epoch boundaries"]["ok"] is False
    finally:
        wr_run.meta["steps_per_epoch"] = spe


def test_given_sigma2_replaces_the_estimate_and_a_partial_last_epoch_counts(wr_run):
    r = EpochBound().check(wr_run, steps_per_epoch=3, sigma2=100.0)
    eps = r.details["epochs"]
    assert len(eps) == 67 and eps[-1]["steps"] == [198, 200]
    assert all(e["sigma2"] == 100.0 for e in eps) and eps[0]["hypotheses_hold"]


@pytest.mark.parametrize(
    "kw, exc, word",
    [
        ({"delta": 0.0}, ValueError, "delta"),
        ({"delta": 1.5}, ValueError, "delta"),
        ({"sigma2": -1.0}, ValueError, "sigma2"),
        ({"sigma2": float("nan")}, ValueError, "sigma2"),
        ({"steps_per_epoch": 0}, ValueError, "steps_per_epoch"),
        ({"steps_per_epoch": 2.5}, TypeError, "steps_per_epoch"),
        ({"steps_per_epoch": True}, TypeError, "steps_per_epoch"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(wr_run, kw, exc, word):
    with pytest.raises(exc, match=word):
        EpochBound().check(wr_run, **kw)


def test_epoch_bounds_from_meta_and_given():
    tr = types.SimpleNamespace()
    b, src = epoch_bounds(tr, 7, {"steps_per_epoch": 3})
    assert b.tolist() == [0, 3, 6, 7] and src == "meta steps_per_epoch"
    b, src = epoch_bounds(tr, 6, {}, steps_per_epoch=2)
    assert b.tolist() == [0, 2, 4, 6] and src == "given"
    assert epoch_bounds(tr, 6, {})[0] is None


# --- torch: the loss at the training iterate at epoch ends, and with-replacement batches -------------------------


def _tensors(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    if isinstance(obj, dict):
        return {k2: v2 for k, v in obj.items() for k2, v2 in _tensors(v, f"{prefix}/{k}").items()}
    if isinstance(obj, (list, tuple)):
        return {k2: v2 for i, v in enumerate(obj) for k2, v2 in _tensors(v, f"{prefix}/{i}").items()}
    return {}


@pytest.mark.usefixtures("torch_one_thread")
def test_train_loss_at_x_is_recorded_and_changes_nothing_in_the_run(tmp_path):
    from brelax.torch import write_tiny_cifar
    from brelax.torch.train import TrainConfig, train

    write_tiny_cifar(tmp_path / "data", "cifar10", n_train=32, n_test=16, seed=0, archive=True)
    base = dict(data=str(tmp_path / "data"), model="resnet20", set="ternary", epochs=2, batch_size=16)
    base.update(eval_batch_size=32, milestones=[2], progress=False, seed=3)
    train(TrainConfig(out=str(tmp_path / "on"), eval_train=True, **base))
    train(TrainConfig(out=str(tmp_path / "off"), eval_train=False, **base))
    rows = [json.loads(line) for line in (tmp_path / "on" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["train_loss_x"]) and r["train_loss_x"] != r["train_loss"] for r in rows)
    assert all(json.loads(line)["train_loss_x"] is None for line in (tmp_path / "off" / "metrics.jsonl").open())
    # the extra evaluations (eval mode, fixed order) leave the run bit for bit as it was
    a = _tensors(torch.load(tmp_path / "on" / "ckpt.pt", weights_only=True))
    b = _tensors(torch.load(tmp_path / "off" / "ckpt.pt", weights_only=True))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    off_rows = [json.loads(line) for line in (tmp_path / "off" / "metrics.jsonl").read_text().splitlines()]
    assert [r["running_loss"] for r in rows] == [r["running_loss"] for r in off_rows]


def test_loader_with_replacement_draws_iid_positions_and_leaves_the_shuffle_alone():
    from brelax.torch.data import CifarLoader, epoch_generator

    x = torch.arange(40, dtype=torch.uint8).reshape(40, 1, 1, 1).expand(40, 3, 2, 2).contiguous()
    y = torch.arange(40) % 10
    kw = dict(batch_size=8, train=True, augment=False, seed=5, norm=((0.0,) * 3, (1.0,) * 3))
    wr, sh = CifarLoader(x, y, replacement=True, **kw), CifarLoader(x, y, **kw)
    o1 = wr.order()
    assert o1.shape == (40,) and len(set(o1.tolist())) < 40  # repeats: drawn with replacement
    assert torch.equal(o1, wr.order())  # the same (seed, epoch), the same draws
    wr.set_epoch(1)
    assert not torch.equal(o1, wr.order())
    assert torch.equal(sh.order(), torch.randperm(40, generator=epoch_generator(5, 0, 0)))  # unchanged default
    assert len(wr) == len(sh) == 5 and sum(len(b[1]) for b in wr) == 40
    with pytest.raises(TypeError, match="replacement"):
        CifarLoader(x, y, replacement=1, **kw)


@pytest.mark.usefixtures("torch_one_thread")
def test_a_torch_run_with_iid_batches_gets_guarantee_epochs_from_brelax_verify(tmp_path):
    """``brelax train --sampling with_replacement``: the step log says so, ``load_run`` puts ``train_loss_x`` at the
    epoch ends into ``f``, and ``verify RUN`` (L estimated on the burn-in's same-batch secants) checks the epochs.
    ``gd`` (mu = 0, no flip cost) on the digits MLP, plain SGD."""
    import brelax.torch.train as T
    from brelax.torch import steplog
    from proofs_checks.run_file import verify_run

    cfg = T.TrainConfig(dataset="digits", model="digits_mlp", method="gd", epochs=6, batch_size=64, lr=0.1)
    cfg.out, cfg.milestones, cfg.progress, cfg.seed = str(tmp_path / "run"), [100], False, 0
    cfg.momentum, cfg.weight_decay, cfg.noise_every, cfg.check_every, cfg.eval_batch_size = 0.0, 0.0, 1, 1, 512
    cfg.sampling = "with_replacement"
    T.train(cfg)
    tr = steplog.load_run(tmp_path / "run")
    assert tr.meta["sampling"] == "with_replacement"
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    f = np.asarray(tr.f, dtype=np.float64)
    assert [float(f[r["step"]]) for r in rows] == [r["train_loss_x"] for r in rows]
    assert np.isfinite(f).sum() == len(rows)  # f is known at the epoch ends only
    [r] = [x for x in verify_run(str(tmp_path / "run")) if x.name == "epoch_bound"]
    assert r.status == "holds" and r.details["guarantee_epochs"] >= 4, r.details
    assert r.details["noise_source"].startswith("noise_pair_norm2")
    assert all(np.isnan(e["pathwise_bound"]) for e in r.details["epochs"])  # no ||xi_t||^2 in a torch record
    # the same run as if reshuffled: no guarantee, and it says why
    L = 1.25 * float(np.nanmax(np.asarray(tr.batch_L_local)[:20]))
    shuffled = _copy(tr, meta={"sampling": "shuffled epochs (without replacement)"})
    assert EpochBound().check(shuffled, L=L).failed_assumptions == ["with-replacement sampling"]
