"""``brelax export``: codes + scales + float tensors in safetensors; the rebuilt model equals P(y)'s."""

import json

import pytest
import torch

import brelax
from brelax import cli
from brelax.torch.export import load_exported, pack_codes, unpack_codes
from brelax.torch.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module", params=["binary", "ternary"])
def run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"run-{request.param}")
    cfg = TrainConfig(
        synthetic=True,
        synthetic_n=32,
        model="resnet20",
        set=request.param,
        epochs=1,
        batch_size=16,
        eval_batch_size=32,
        eval_train=False,
        progress=False,
        out=str(out),
        seed=1,
    )
    return request.param, out, train(cfg)


@pytest.mark.parametrize("pack", [False, True])
def test_round_trip_outputs_equal_the_quantized_model(run, pack, capsys):
    qset, out, result = run
    path = out / f"model-{pack}.safetensors"
    argv = ["export", str(out / "ckpt.pt"), "--out", str(path)] + (["--pack"] if pack else [])
    assert cli.main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["quantized_tensors"] == 19
    bits = {"binary": 1, "ternary": 2}[qset] if pack else 8
    assert info["code_bytes"] <= info["float_bytes_of_those"] * bits / 32 + 8 * 19  # 32-bit floats -> bits each
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["brelax"])
    assert (meta["model"], meta["num_classes"], meta["qset"], meta["axis"]) == ("resnet20", 10, qset, 0)
    rebuilt = load_exported(path)
    model = result.model.eval()  # finalized: it holds P(y)
    for k, v in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[k], v), k
    Q = brelax.get_set(qset)
    for s in result.optimizer.slots:
        assert Q.contains(rebuilt.get_parameter(s.name).detach(), axis=0)
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_pack_unpack_round_trip(bits):
    codes = torch.randint(0, 2**bits, (1001,), generator=torch.Generator().manual_seed(bits))
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-1001 * bits // 8)
    assert torch.equal(unpack_codes(packed, bits, 1001), codes)
    with pytest.raises(ValueError, match="codes must lie"):
        pack_codes(torch.tensor([2**bits]), bits)


def test_refuses_files_it_did_not_write(tmp_path, capsys):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not written by brelax export"):
        load_exported(tmp_path / "other.safetensors")
    assert cli.main(["export", str(tmp_path / "missing.pt")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
