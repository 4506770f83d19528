"""brelax train --check-every: same-batch records, bitwise the run without them, and the descent guarantee."""

from __future__ import annotations

import json

import pytest
import torch

from brelax import cli


def _train(out, *extra):
    argv = ["train", "--dataset", "digits", "--epochs", "1", "--no-progress", "--quiet", "--out", str(out), *extra]
    assert cli.main(argv) == 0


def _tensors(d, prefix=""):
    items = d.items() if isinstance(d, dict) else enumerate(d)
    out = {}
    for k, v in items:
        if isinstance(v, (dict, list, tuple)):
            out.update(_tensors(v, f"{prefix}{k}."))
        elif torch.is_tensor(v):
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.slow
def test_checks_leave_the_run_bitwise_unchanged_and_give_guarantees_for_plain_sgd(tmp_path, capsys):
    plain = ("--momentum", "0", "--wd", "0")
    _train(tmp_path / "checked", *plain, "--check-every", "1")
    _train(tmp_path / "unchecked", *plain, "--check-every", "0")
    a = _tensors(torch.load(tmp_path / "checked" / "ckpt.pt", weights_only=True)["model"])
    b = _tensors(torch.load(tmp_path / "unchecked" / "ckpt.pt", weights_only=True)["model"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # BN statistics included
    capsys.readouterr()
    assert cli.main(["verify", str(tmp_path / "checked"), "--out", str(tmp_path / "rep")]) == 0
    data = json.loads((tmp_path / "rep" / "verify-report.json").read_text())
    [cov] = data["coverage"]
    [bd] = [r for r in data["results"] if r["name"] == "batch_descent"]
    # the last step of the epoch is not checked: epoch_end re-formed its x_(t+1) with the next mu
    assert cov["checked_steps"] == cov["steps"] - 1 > 10
    assert bd["status"] == "holds" and bd["details"]["guarantee_fraction_after_burn_in"] >= 0.9
    assert cov["guarantee_steps"] >= 0.9 * (cov["checked_steps"] - bd["details"]["burn_in_steps"])


@pytest.mark.slow
def test_momentum_steps_get_the_heavy_ball_guarantee_where_kappa_is_positive(tmp_path, capsys):
    _train(tmp_path / "run", "--check-every", "1")  # the defaults: momentum 0.9, weight decay 1e-4
    capsys.readouterr()
    assert cli.main(["verify", str(tmp_path / "run"), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "rep" / "verify-report.json").read_text())
    [cov] = data["coverage"]
    [hb] = [r for r in data["results"] if r["name"] == "heavy_ball"]
    assert hb["status"] == "holds" and hb["details"]["failing_steps"] == 0
    assert hb["details"]["momentum"] == 0.9 and hb["details"]["weight_decay"] == 1e-4
    assert 0 < cov["guarantee_steps"] == hb["details"]["guarantee_steps"] <= cov["checked_steps"]
    assert "heavy-ball SGD steps are heavy_ball's (Theorem II.12)" in out  # batch_descent says why it is not its
