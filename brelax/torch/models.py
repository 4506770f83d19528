"""CIFAR networks (VGG-11 with BN, ResNet-20/32/56) and which of their weights get quantized.

The models take 32x32 RGB images (N x 3 x 32 x 32, normalised) and return
logits N x num_classes.

* :func:`vgg11` follows the authors' BinaryRelax code (itself the common
  "pytorch-cifar" VGG): 3x3 convolutions with padding 1, each followed by
  BatchNorm and ReLU, five 2x2 max-pools, then a single Linear 512 -> classes.
* :func:`resnet20`, :func:`resnet32`, :func:`resnet56` are the CIFAR ResNets of
  He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition"
  (CVPR 2016), section 4.2: a 3x3 conv with 16 filters, then three stages of
  n = (depth - 2) / 6 basic blocks with 16, 32 and 64 channels (the first block
  of stages 2 and 3 halves the resolution with stride 2), global average
  pooling and a Linear 64 -> classes. Depth = 6n + 2.

:func:`default_quantized_params` and :func:`param_groups` pick the tensors the
quantizer acts on: by default every Conv2d and Linear weight except the final
classifier, as in the authors' VGG code (penhunt/binaryrelax).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MODEL_NAMES",
    "VGG",
    "CifarResNet",
    "build_model",
    "default_quantized_names",
    "default_quantized_params",
    "param_groups",
    "resnet20",
    "resnet32",
    "resnet56",
    "vgg11",
]

# "M" is a 2x2 max-pool; numbers are output channels of a 3x3 conv (+BN+ReLU).
VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(nn.Module):
    """A VGG feature stack for 32x32 inputs followed by one Linear classifier.

    Parameters
    ----------
    cfg : sequence of int or "M"
        Channel counts of the 3x3 convs (padding 1), "M" for a 2x2 max-pool.
        After the five pools of VGG-11 the map is 512 x 1 x 1.
    num_classes : int
        Output size of the classifier.
    bn : bool
        Put a BatchNorm2d between each conv and its ReLU (the authors' setting).
    conv_bias : bool
        Give every conv a bias (the authors' code does, the default). Biases
        stay float and, with SGD's ``weight_decay``, are decayed like every parameter.

    Notes
    -----
    PyTorch's default initialisation is used (the authors start from a
    pretrained float model).
    """

    def __init__(self, cfg=VGG11_CFG, num_classes: int = 10, bn: bool = True, conv_bias: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for item in cfg:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers.append(nn.Conv2d(c_in, int(item), kernel_size=3, padding=1, bias=bool(conv_bias)))
            if bn:
                layers.append(nn.BatchNorm2d(int(item)))
            layers.append(nn.ReLU(inplace=True))
            c_in = int(item)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class _ShortcutA(nn.Module):
    """Parameter-free shortcut: take every ``stride``-th pixel, append zero channels."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.extra, self.stride = c_out - c_in, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads the last dims first: (W left, W right, H left, H right, C left, C right).
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU (He et al. 2016, fig. 2)."""

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride == 1 and c_in == c_out:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = _ShortcutA(c_in, c_out, stride)
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The CIFAR ResNet of He et al. 2016 (section 4.2), depth 6n + 2.

    Parameters
    ----------
    depth : int
        6n + 2 with n >= 1 (20, 32, 44, 56, 110, ...).
    num_classes : int
        Output size of the final Linear 64 -> classes.
    shortcut : {"A", "B"}
        What the shortcut does where a block changes the shape (the first block
        of stages 2 and 3: stride 2, channels doubled). Identity elsewhere.

        * ``"A"`` (default, the paper's CIFAR choice): parameter-free. The input
          is subsampled with stride 2 (``x[:, :, ::2, ::2]``) and the new
          channels are zeros appended after the old ones. The model then has no
          shortcut parameters: ResNet-20 has 0.27M parameters, ResNet-56 0.85M,
          as in the paper's table 6.
        * ``"B"``: a projection, 1x1 conv with stride 2 (no bias) followed by
          BatchNorm. Its conv weight counts as a conv weight, so it is
          quantized by :func:`default_quantized_params`.

    Notes
    -----
    Initialisation: conv weights Kaiming-normal (fan_out, ReLU gain, as in He
    et al. 2015), BatchNorm weight 1 and bias 0, the Linear layer PyTorch's
    default. Seed ``torch`` (or pass ``seed`` to :func:`build_model`) for a
    reproducible model.
    """

    def __init__(self, depth: int, num_classes: int = 10, shortcut: str = "A"):
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 32, 56, ...), got {depth!r}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")
        n = (depth - 2) // 6
        self.depth, self.shortcut_option = depth, shortcut
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, c_in = [], 16
        for c_out, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(c_in, c_out, stride if i == 0 else 1, shortcut))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1)
        return self.fc(torch.flatten(out, 1))


def _check_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes


def vgg11(num_classes: int = 10, bn: bool = True, conv_bias: bool = True) -> VGG:
    """VGG-11 for CIFAR, as in the authors' code: 8 convs (+BN) and one Linear 512 -> classes.

    About 9.23M parameters with 10 classes (9.22M of them conv weights). ``bn``
    and ``conv_bias`` (both True in the authors' code): see :class:`VGG`.
    """
    return VGG(VGG11_CFG, _check_classes(num_classes), bn=bool(bn), conv_bias=bool(conv_bias))


def resnet20(num_classes: int = 10, shortcut: str = "A") -> CifarResNet:
    """ResNet-20 (n = 3) of He et al. 2016; 0.27M parameters with option A. See :class:`CifarResNet`."""
    return CifarResNet(20, _check_classes(num_classes), shortcut)


def resnet32(num_classes: int = 10, shortcut: str = "A") -> CifarResNet:
    """ResNet-32 (n = 5) of He et al. 2016; 0.46M parameters with option A. See :class:`CifarResNet`."""
    return CifarResNet(32, _check_classes(num_classes), shortcut)


def resnet56(num_classes: int = 10, shortcut: str = "A") -> CifarResNet:
    """ResNet-56 (n = 9) of He et al. 2016; 0.85M parameters with option A. See :class:`CifarResNet`."""
    return CifarResNet(56, _check_classes(num_classes), shortcut)


class DigitsCNN(nn.Module):
    """A small CNN for the 1 x 8 x 8 digits: three 3x3 convs (8, 16, 32 channels, BN, ReLU; a 2x2 max-pool
    after the second), global average pooling and a Linear 32 -> classes. 5832 conv weights."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        chans = [(1, 8), (8, 16), (16, 32)]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1, bias=False) for a, b in chans)
        self.bns = nn.ModuleList(nn.BatchNorm2d(b) for _, b in chans)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            x = F.relu(bn(conv(x)))
            if i == 1:
                x = F.max_pool2d(x, 2)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DigitsMLP(nn.Module):
    """An MLP for the digits: flatten 64 -> Linear(hidden) -> ReLU -> Linear(classes)."""

    def __init__(self, num_classes: int = 10, hidden: int = 128):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.fc1(torch.flatten(x, 1))))


def digits_cnn(num_classes: int = 10) -> DigitsCNN:
    """:class:`DigitsCNN` (for ``--dataset digits``)."""
    return DigitsCNN(_check_classes(num_classes))


def digits_mlp(num_classes: int = 10) -> DigitsMLP:
    """:class:`DigitsMLP` with 128 hidden units (for ``--dataset digits``)."""
    return DigitsMLP(_check_classes(num_classes))


_BUILDERS = {
    "vgg11": vgg11,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
    "digits_cnn": digits_cnn,
    "digits_mlp": digits_mlp,
}
MODEL_NAMES = tuple(_BUILDERS)
#: The models for the 8 x 8 digits (``--dataset digits``); the others take 3 x 32 x 32 images.
DIGITS_MODELS = ("digits_cnn", "digits_mlp")


def build_model(name: str, num_classes: int = 10, seed: int | None = None, **kwargs) -> nn.Module:
    """Build a model by name.

    Parameters
    ----------
    name : {"vgg11", "resnet20", "resnet32", "resnet56", "digits_cnn", "digits_mlp"}
    num_classes : int
        10 for CIFAR-10, 100 for CIFAR-100.
    seed : int or None
        If given, the initial weights are drawn from ``torch.manual_seed(seed)``
        inside a forked RNG, so the global torch RNG is left untouched and the
        same seed gives the same weights bit for bit.
    **kwargs
        Passed to the builder (``bn`` and ``conv_bias`` for VGG, ``shortcut`` for the ResNets).

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists the valid names) or bad ``num_classes``.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODEL_NAMES)}")
    if seed is None:
        return _BUILDERS[name](num_classes, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return _BUILDERS[name](num_classes, **kwargs)


def default_quantized_names(
    model: nn.Module, include_last_fc: bool = False, include_first_conv: bool = True
) -> list[str]:
    """Names (as in ``model.named_parameters()``) of the weights quantized by default.

    These are the ``weight`` tensors of every ``nn.Conv2d`` and ``nn.Linear``
    (module order), except:

    * the last ``nn.Linear`` (the classifier), unless ``include_last_fc`` is
      True. The authors' VGG code (penhunt/binaryrelax) keeps the final FC in float,
      hence the default False;
    * the first ``nn.Conv2d`` if ``include_first_conv`` is False. The authors
      quantize it, hence the default True.

    Biases and BatchNorm parameters are never in the list. A weight shared by
    several modules is listed once.
    """
    convs, linears = [], []
    for mod_name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            convs.append(mod_name)
        elif isinstance(m, nn.Linear):
            linears.append(mod_name)
    drop = set()
    if linears and not include_last_fc:
        drop.add(linears[-1])
    if convs and not include_first_conv:
        drop.add(convs[0])
    wanted = {f"{n}.weight" if n else "weight" for n in convs + linears if n not in drop}
    # named_parameters deduplicates shared tensors and gives the canonical order.
    return [n for n, _ in model.named_parameters() if n in wanted]


def default_quantized_params(
    model: nn.Module, include_last_fc: bool = False, include_first_conv: bool = True
) -> list[nn.Parameter]:
    """The parameters quantized by default: see :func:`default_quantized_names`."""
    names = set(default_quantized_names(model, include_last_fc, include_first_conv))
    return [p for n, p in model.named_parameters() if n in names]


def param_groups(
    model: nn.Module,
    qset,
    axis: int | None = 0,
    include_last_fc: bool = False,
    include_first_conv: bool = True,
) -> list[dict]:
    """Torch optimizer parameter groups: quantized weights first, everything else second.

    Parameters
    ----------
    model : nn.Module
    qset : QuantSet or str
        The quantization set (a name such as ``"binary"`` is parsed with
        :func:`brelax.get_set`).
    axis : int or None
        Stored in the quantized group as ``"axis"``: 0 gives one scale per
        output channel (rows of a Linear weight, filters of a conv), None one
        scale per tensor.
    include_last_fc, include_first_conv : bool
        See :func:`default_quantized_names`.

    Returns
    -------
    list of dict
        ``[{"params": [...], "qset": qset, "axis": axis}, {"params": [...], "qset": None}]``;
        the second holds the BatchNorm parameters, biases and any weight left
        in float (the classifier by default). A group with no parameters is
        left out. Every trainable parameter is in exactly one group.

    Raises
    ------
    TypeError
        ``qset`` is not a QuantSet or a name, or ``axis`` is not an int or None.
    ValueError
        ``qset`` is an unknown name.
    """
    from brelax import get_set

    qset = get_set(qset)
    if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int)):
        raise TypeError(f"axis must be an int or None, got {axis!r}")
    names = set(default_quantized_names(model, include_last_fc, include_first_conv))
    quant, rest = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (quant if n in names else rest).append(p)
    groups = []
    if quant:
        groups.append({"params": quant, "qset": qset, "axis": axis})
    if rest:
        groups.append({"params": rest, "qset": None})
    return groups
