"""``torchrun --nproc_per_node 2 -m brelax train`` on gloo/CPU equals one process with the same global batch.

The model is VGG-11 without BatchNorm: with BN each rank would normalise with
its own half of the batch (SyncBatchNorm, the cure, runs on GPUs only), which
is a different computation from one process; see brelax/torch/ddp.py.
"""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from brelax.torch import build_model
from brelax.torch.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("torch_one_thread")

ARGS = dict(
    synthetic=True,
    synthetic_n=16,
    model="vgg11",
    bn=False,
    set="binary",
    epochs=1,
    batch_size=8,
    eval_batch_size=8,
    limit_test=8,
    eval_train=False,
    lr=0.01,
    seed=5,
    progress=False,
)


def _cli_args(out):
    return [
        "train",
        "--synthetic",
        "--synthetic-n",
        "16",
        "--model",
        "vgg11",
        "--no-bn",
        "--set",
        "binary",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--eval-batch-size",
        "8",
        "--limit-test",
        "8",
        "--no-eval-train",
        "--lr",
        "0.01",
        "--seed",
        "5",
        "--no-progress",
        "--out",
        str(out),
    ]


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    if os.path.exists("/sys/class/net/lo"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_loopback_port()),
        "-m",
        "brelax",
    ] + _cli_args(tmp_path / "ddp")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = train(TrainConfig(out=str(tmp_path / "one"), **ARGS))
    two = torch.load(tmp_path / "ddp" / "ckpt.pt", weights_only=True)
    ref = torch.load(tmp_path / "one" / "ckpt.pt", weights_only=True)
    assert two["world_size"] == 2 and ref["world_size"] == 1
    assert two["optimizer"]["quant"]["step"] == ref["optimizer"]["quant"]["step"] == 2
    init = build_model("vgg11", 10, seed=5, bn=False).state_dict()
    moved = 0.0
    for k, v in ref["model"].items():
        assert torch.allclose(two["model"][k], v, rtol=0, atol=1e-5), k
        moved = max(moved, (v - init[k]).abs().max().item())
    assert moved > 1e-3  # the runs did train
    lat2, lat1 = two["optimizer"]["quant"]["latent"], ref["optimizer"]["quant"]["latent"]
    assert lat2.keys() == lat1.keys() and len(lat1) == 8
    for k in lat1:
        assert torch.allclose(lat2[k], lat1[k], rtol=0, atol=1e-5)
    row2 = json.loads((tmp_path / "ddp" / "metrics.jsonl").read_text())
    assert row2["flips"] == one.summary["last"]["flips"]
    assert abs(row2["test_loss"] - one.summary["last"]["test_loss"]) < 1e-4
