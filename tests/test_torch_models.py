"""CIFAR models: shapes, parameter counts against He et al. 2016, shortcut options, quantized groups."""

import pytest
import torch
from torch import nn

import brelax
from brelax.torch import models
from brelax.torch.models import (
    DIGITS_MODELS,
    MODEL_NAMES,
    build_model,
    default_quantized_names,
    default_quantized_params,
    param_groups,
    resnet20,
    resnet56,
    vgg11,
)

# Exact counts with 10 classes; He et al. 2016 table 6 reports 0.27M / 0.46M / 0.85M.
EXPECTED_PARAMS = {"resnet20": 269_722, "resnet32": 464_154, "resnet56": 853_018, "vgg11": 9_231_114}
CIFAR_MODELS = [n for n in MODEL_NAMES if n not in DIGITS_MODELS]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", CIFAR_MODELS)
@pytest.mark.parametrize("num_classes", [10, 100])
def test_forward_shape(name, num_classes):
    model = build_model(name, num_classes, seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_param_counts(name):
    assert n_params(build_model(name, 10)) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize(
    "name,quantized,n_quant",
    [
        ("digits_cnn", ["convs.0.weight", "convs.1.weight", "convs.2.weight"], 5832),
        ("digits_mlp", ["fc1.weight"], 64 * 128),
    ],
)
def test_digits_models_take_8x8_images_and_quantize_all_but_the_classifier(name, quantized, n_quant):
    model = build_model(name, 10, seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 1, 8, 8))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert default_quantized_names(model) == quantized
    assert sum(p.numel() for p in default_quantized_params(model)) == n_quant


def test_param_counts_match_the_paper_rounded():
    assert round(n_params(resnet20()) / 1e6, 2) == 0.27
    assert round(n_params(resnet56()) / 1e6, 2) == 0.85
    assert n_params(vgg11()) > 9.2e6


@pytest.mark.parametrize("depth", [20, 32, 56])
def test_resnet_has_3n_basic_blocks(depth):
    model = build_model(f"resnet{depth}")
    blocks = [m for m in model.modules() if isinstance(m, models.BasicBlock)]
    assert len(blocks) == 3 * (depth - 2) // 6
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == depth  # depth counts the convs of the blocks, the stem and the FC


def test_shortcut_A_has_no_parameters_and_pads_zero_channels():
    model = resnet20(shortcut="A")
    assert not [n for n, _ in model.named_parameters() if "shortcut" in n]
    block = model.layer2[0]
    x = torch.randn(2, 16, 32, 32)
    out = block.shortcut(x)
    assert out.shape == (2, 32, 16, 16)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 16:]) == 0


def test_shortcut_B_is_a_1x1_projection_only_where_the_shape_changes():
    model = resnet20(shortcut="B")
    proj = {n: p.shape for n, p in model.named_parameters() if "shortcut" in n and n.endswith("0.weight")}
    assert proj == {"layer2.0.shortcut.0.weight": (32, 16, 1, 1), "layer3.0.shortcut.0.weight": (64, 32, 1, 1)}
    assert n_params(model) - EXPECTED_PARAMS["resnet20"] == 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64
    assert isinstance(model.layer1[0].shortcut, nn.Identity)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="vgg11, resnet20, resnet32, resnet56"):
        build_model("resnet18")
    with pytest.raises(ValueError, match="num_classes"):
        build_model("resnet20", 0)
    with pytest.raises(ValueError, match="shortcut"):
        resnet20(shortcut="C")
    with pytest.raises(ValueError, match="depth"):
        models.CifarResNet(21)


def test_seed_reproduces_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_model("resnet20", seed=5).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    b = build_model("resnet20", seed=5).state_dict()
    c = build_model("resnet20", seed=6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_resnet_kaiming_init_scale():
    w = build_model("resnet56", seed=0).layer3[5].conv1.weight
    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
    assert abs(w.std().item() / (2.0 / fan_out) ** 0.5 - 1) < 0.05


def conv_linear_weight_names(model):
    return [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_vgg_default_quantized_are_the_8_convs():
    model = vgg11()
    names = default_quantized_names(model)
    assert len(names) == 8 and all(n.startswith("features.") for n in names)
    assert names == conv_linear_weight_names(model)[:-1]
    assert default_quantized_names(model, include_last_fc=True) == names + ["classifier.weight"]
    assert default_quantized_names(model, include_first_conv=False) == names[1:]
    params = default_quantized_params(model)
    assert [p.shape for p in params] == [dict(model.named_parameters())[n].shape for n in names]


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_resnet_default_quantized_includes_first_conv_and_projections(shortcut):
    model = resnet20(shortcut=shortcut)
    names = default_quantized_names(model)
    assert names[0] == "conv1.weight" and "fc.weight" not in names
    assert names == [n for n in conv_linear_weight_names(model) if n != "fc.weight"]
    assert len(names) == 19 + (2 if shortcut == "B" else 0)


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_param_groups_split_exactly(name):
    model = build_model(name)
    q = brelax.binary()
    groups = param_groups(model, q, axis=0)
    assert [g["qset"] for g in groups] == [q, None] and groups[0]["axis"] == 0
    quant_ids = {id(p) for p in groups[0]["params"]}
    rest_ids = {id(p) for p in groups[1]["params"]}
    assert quant_ids == {id(p) for p in default_quantized_params(model)}
    assert not quant_ids & rest_ids
    assert quant_ids | rest_ids == {id(p) for p in model.parameters()}
    # Everything left in float: BN parameters, biases and the classifier weight.
    last_linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    for n, p in model.named_parameters():
        if id(p) in rest_ids:
            owner = model.get_submodule(n.rsplit(".", 1)[0])
            assert isinstance(owner, nn.BatchNorm2d) or n.endswith(".bias") or p is last_linear.weight, n
    opt = torch.optim.SGD(groups, lr=0.1)  # torch accepts the extra keys
    assert opt.param_groups[0]["qset"] == q


def test_param_groups_parses_names_and_checks_arguments():
    model = resnet20()
    assert param_groups(model, "ternary", axis=None)[0]["qset"] == brelax.ternary()
    with pytest.raises(ValueError, match="unknown set"):
        param_groups(model, "quaternary")
    with pytest.raises(TypeError, match="axis"):
        param_groups(model, "binary", axis=1.5)
    for p in model.fc.parameters():
        p.requires_grad_(False)
    groups = param_groups(model, "binary")
    assert all(p.requires_grad for g in groups for p in g["params"])
