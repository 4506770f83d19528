"""BatchNorm statistics at the evaluated weights (brelax.torch.bn) and their use in ``brelax train``'s evaluation."""

import json

import pytest
import torch

from brelax.sets import get_set
from brelax.torch import bn
from brelax.torch.data import normalize
from brelax.torch.train import TrainConfig, digits_data, train

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU())


def _by_hand(net, batches):
    """Per-channel mean of the batch means and of the unbiased batch variances of the conv output."""
    outs = [net[0](x) for x in batches]
    means = torch.stack([o.mean((0, 2, 3)) for o in outs]).mean(0)
    var = torch.stack([o.transpose(0, 1).reshape(3, -1).var(1, unbiased=True) for o in outs]).mean(0)
    return means, var


@torch.no_grad()
def test_recalibrate_is_the_average_of_the_batch_statistics_and_keeps_mode_and_momentum():
    net = _net().eval()
    net[1].running_mean.fill_(5.0)  # stale statistics of some other weights
    net[1].running_var.fill_(9.0)
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(n, 1, 6, 6, generator=g) * 2 + 1 for n in (8, 5, 8)]
    seen = bn.recalibrate(net, [(x, None) for x in batches])
    mean, var = _by_hand(net, batches)
    assert seen == 21
    torch.testing.assert_close(net[1].running_mean, mean)
    torch.testing.assert_close(net[1].running_var, var)
    assert not net.training and net[1].momentum == 0.1
    # max_images stops after the batch that reaches it
    assert bn.recalibrate(net, [(x, None) for x in batches], max_images=9) == 13
    torch.testing.assert_close(net[1].running_mean, _by_hand(net, batches[:2])[0])
    with pytest.raises(ValueError, match="max_images"):
        bn.recalibrate(net, [], max_images=0)


@torch.no_grad()
def test_recalibrated_restores_the_training_statistics_exactly():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with bn.recalibrated(net, [(torch.randn(4, 1, 6, 6), None)]):
        assert not torch.equal(net[1].running_mean, before["1.running_mean"])
        assert int(net[1].num_batches_tracked) == 1
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    with bn.recalibrated(net, None):  # no loader: nothing changes
        assert torch.equal(net[1].running_var, before["1.running_var"])


def test_train_evaluates_p_of_y_with_statistics_re_estimated_on_the_training_images(tmp_path):
    """The metrics row's test_acc is P(y) with BN statistics of P(y) on the training images.

    The old evaluation used the running statistics gathered while training (at ``x``, and at
    earlier weights): on this Phase II run it scored far below both the running training
    accuracy and the authors' evaluation point. The checkpoint keeps the training statistics.
    """
    cfg = TrainConfig(
        dataset="digits",
        model="digits_cnn",
        epochs=6,
        batch_size=64,
        momentum=0.0,
        weight_decay=0.0,
        milestones=[4],
        phase2_epoch=4,
        out=str(tmp_path / "run"),
        progress=False,
        quiet=True,
        diagnostics=False,
        eval_train=False,
    )
    res = train(cfg)
    with torch.no_grad():
        _check_row_is_p_of_y_with_fresh_statistics(res, tmp_path / "run")


def _check_row_is_p_of_y_with_fresh_statistics(res, run):
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    (tr, te), norm = digits_data()
    ck = torch.load(run / "ckpt.pt", weights_only=True)
    net = res.model
    net.load_state_dict(ck["model"])  # x (= P(y) in Phase II) and the training BN statistics
    for slot in res.optimizer.slots:  # P(y) from the latent weights, by the set's own projection
        slot.param.copy_(get_set("binary").project(res.optimizer.state[slot.param]["latent"], axis=0))

    def acc():
        net.eval()
        return float((net(normalize(te[0], *norm)).argmax(1) == te[1]).double().mean())

    stale = acc()
    batches = [normalize(tr[0][i : i + 500], *norm) for i in range(0, len(tr[1]), 500)]
    for layer in bn.bn_layers(net):
        layer.reset_running_stats()
        layer.momentum = None
    net.train()
    for x in batches:
        net(x)
    fresh = acc()
    assert row["test_acc"] == pytest.approx(fresh, abs=1e-12)
    assert row["test_acc"] != pytest.approx(stale, abs=1e-12)  # the old evaluation point
    print("fresh", fresh, "stale", stale)
    assert row["test_acc"] > stale + 0.1  # the stale statistics made P(y) look far worse than it is
