"""CIFAR data on tensors: normalisation, on-device augmentation, a seeded (distributed) loader.

No torchvision and no PIL: the whole split lives on the device as one uint8
tensor, and a batch is a gather, a vectorised random crop + flip and a
normalisation, all on the device. The file readers are in
:mod:`brelax.torch.cifar_files` and re-exported here.

Determinism: the shuffle of epoch ``e`` and its augmentation come from
generators seeded by ``(seed, e)`` only, so resuming at epoch ``k`` with
``set_epoch(k)`` replays the same batches, and the random numbers are drawn on
the CPU, so CPU and GPU runs see the same crops and flips.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .cifar_files import (
    DATASETS,
    RestrictedUnpickler,
    load_cifar,
    restricted_loads,
    tiny_cifar_arrays,
    write_tiny_cifar,
)

__all__ = [
    "CIFAR_MEAN",
    "CIFAR_STD",
    "DATASETS",
    "CifarLoader",
    "RestrictedUnpickler",
    "apply_augmentation",
    "augment",
    "draw_augmentation",
    "epoch_generator",
    "load_cifar",
    "normalize",
    "restricted_loads",
    "synthetic_cifar",
    "tiny_cifar_arrays",
    "write_tiny_cifar",
]

# The authors' constants (penhunt/binaryrelax), those of the common pytorch-cifar
# recipe. The std is the mean per-image std, not the std over the whole set
# (~0.247, 0.243, 0.261); kept as is to match the authors. CIFAR-100 uses the
# same constants: one code path, and the BatchNorm after the first conv
# absorbs the small difference in the input statistics.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)


def normalize(x: torch.Tensor, mean=CIFAR_MEAN, std=CIFAR_STD) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` on N x C x H x W (or C x H x W).

    A uint8 input is first scaled to [0, 1] (``x / 255``, float32); a floating
    input is taken to be in [0, 1] already and keeps its dtype.
    """
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4):
        raise ValueError(f"x must be a 3-D or 4-D tensor, got {getattr(x, 'shape', type(x).__name__)}")
    if x.dtype == torch.uint8:
        x = x.to(torch.float32).div_(255.0)
    elif not x.is_floating_point():
        raise TypeError(f"x must be uint8 or floating, got {x.dtype}")
    c = x.shape[-3]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"mean and std need {c} entries (channels of x), got {len(mean)} and {len(std)}")
    shape = (c, 1, 1)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s


def _check_pad(pad) -> int:
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"pad must be an int >= 0, got {pad!r}")
    return pad


def draw_augmentation(
    n: int, generator: torch.Generator | None = None, pad: int = 4, flip: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The random numbers of one augmented batch, drawn on the generator's device.

    Returns
    -------
    offsets : int64 tensor n x 2
        Crop offsets ``(dy, dx)``, each uniform on {0, ..., 2 pad}; offset
        ``pad`` is the un-shifted image (as torchvision's RandomCrop(32, padding=pad)).
    flips : bool tensor n
        True with probability 1/2 (all False when ``flip`` is False).

    Offsets are drawn first, flips second, always, so a generator state fixes both.
    """
    pad = _check_pad(pad)
    dev = generator.device if generator is not None else torch.device("cpu")
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator, device=dev)
    flips = torch.randint(0, 2, (n,), generator=generator, device=dev).bool()
    if not flip:
        flips.zero_()
    return offsets, flips


def apply_augmentation(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Crop each image from its zero-padded copy, then mirror the flipped ones; vectorised.

    With ``P`` the image zero-padded by ``pad`` on each side,
    ``out[n, c, i, j] = P[n, c, dy_n + i, dx_n + j']`` where ``j' = j`` or, for a
    flipped image, ``j' = W - 1 - j``. This is crop-then-flip, the order of the
    authors' transforms. The dtype (uint8 or float) and device of ``x`` are kept.
    """
    pad = _check_pad(pad)
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a 4-D tensor N x C x H x W, got {getattr(x, 'shape', type(x).__name__)}")
    n, c, h, w = x.shape
    if tuple(offsets.shape) != (n, 2) or tuple(flips.shape) != (n,):
        raise ValueError(f"offsets must be {n} x 2 and flips {n}, got {tuple(offsets.shape)} and {tuple(flips.shape)}")
    if n and (int(offsets.min()) < 0 or int(offsets.max()) > 2 * pad):
        raise ValueError(f"offsets must lie in [0, {2 * pad}] for pad={pad}")
    padded = x.new_zeros((n, c, h + 2 * pad, w + 2 * pad))
    padded[:, :, pad : pad + h, pad : pad + w] = x
    offsets, flips = offsets.to(x.device), flips.to(x.device)
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = offsets[:, :1] + ar_h  # n x h
    cols = offsets[:, 1:] + torch.where(flips[:, None], w - 1 - ar_w, ar_w)  # n x w
    batch = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indices split by the channel slice put their dims first: n x h x w x c.
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def augment(x: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Random crop (zero pad ``pad``) and horizontal flip of a batch N x C x H x W.

    ``apply_augmentation(x, *draw_augmentation(len(x), generator, pad, flip), pad)``:
    the same generator state gives the same output bit for bit, on any device.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a 4-D tensor N x C x H x W, got {getattr(x, 'shape', type(x).__name__)}")
    offsets, flips = draw_augmentation(x.shape[0], generator, pad, flip)
    return apply_augmentation(x, offsets, flips, pad)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, stream)`` via numpy's SeedSequence.

    Streams: 0 is the shuffle, 1 the augmentation. Distinct triples give
    statistically independent streams, and the seed does not depend on the rank.
    """
    words = [_check_int(seed, "seed", 0), _check_int(epoch, "epoch", 0), _check_int(stream, "stream", 0)]
    state = np.random.SeedSequence(words).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


class CifarLoader:
    """Batches of (normalised float32 N x C x H x W on ``device``, int64 labels), seeded per epoch.

    Parameters
    ----------
    images : uint8 (or float in [0, 1]) tensor N x C x H x W
        The whole split; copied to ``device`` once.
    labels : integer tensor N
    batch_size : int
        Per-rank batch size; the global batch is ``batch_size * world_size``.
    train : bool
        Shuffle and (with ``augment``) augment; otherwise the order is 0..N-1.
    device : str or torch.device
    seed : int
        With the epoch (see :meth:`set_epoch`) it fixes the shuffle and the
        augmentation; ``rank`` does not enter it.
    augment : bool
        Random crop (pad 4) and flip in training.
    drop_last : bool
        Drop the last, incomplete global batch.
    rank, world_size : int
        Distributed split. Global batch ``t`` is positions ``[tG, (t+1)G)`` of
        the epoch's permutation (``G`` the global batch); rank ``r`` takes the
        contiguous part ``[tG + rB, tG + (r+1)B)``. The ranks' parts are
        disjoint and cover the global batch, so ``world_size`` ranks of batch
        ``B`` see exactly the samples, in the same order and with the same crops
        and flips, as one process with batch ``G = B * world_size`` (the
        augmentation numbers are drawn for the whole global batch on every
        rank). A last incomplete global batch of ``m`` samples is split into
        ``world_size`` contiguous parts, the first ``m % world_size`` ranks
        getting one more; a rank can then get fewer than ``batch_size`` samples,
        or none. Every rank yields ``len(loader)`` batches.
    channels_last : bool
        Return batches in ``torch.channels_last`` memory format.
    norm : (mean, std) or None
        Per-channel normalisation (default CIFAR's; the digits use their own).
    replacement : bool, default False
        In training, draw each epoch's ``N`` positions independently and uniformly from ``0..N-1``
        (with replacement, from the same ``(seed, epoch)`` generator) instead of a permutation:
        every batch is then an i.i.d. uniform sample whatever came before, so its gradient is an
        unbiased estimate of the full one given the past, which Theorem II.10 (THEORY.md) needs;
        an epoch is ``len(loader)`` such batches. ``False`` leaves the order bit for bit as it was.

    Notes
    -----
    Call ``set_epoch(e)`` before iterating epoch ``e`` (as with a
    DistributedSampler): iterating twice without it replays the same epoch.
    :meth:`global_batch_sizes` gives the size of each global batch, to weight a
    loss summed over ranks.
    """

    def __init__(
        self,
        images,
        labels,
        batch_size,
        train,
        device="cpu",
        seed=0,
        augment=True,
        drop_last=False,
        rank=0,
        world_size=1,
        channels_last=False,
        norm=None,
        replacement=False,
    ):
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(
                f"images must be a tensor N x C x H x W, got {getattr(images, 'shape', type(images).__name__)}"
            )
        if images.dtype != torch.uint8 and not images.is_floating_point():
            raise TypeError(f"images must be uint8 or floating, got {images.dtype}")
        if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (images.shape[0],):
            raise ValueError(
                f"labels must be a tensor of shape ({images.shape[0]},), got {getattr(labels, 'shape', None)}"
            )
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(f"labels must be an integer tensor, got {labels.dtype}")
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.world_size = _check_int(world_size, "world_size", 1)
        self.rank = _check_int(rank, "rank", 0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be < world_size={self.world_size}, got {rank}")
        self.seed = _check_int(seed, "seed", 0)
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(device=self.device, dtype=torch.int64)
        self.train, self.augment = bool(train), bool(augment)
        self.drop_last, self.channels_last = bool(drop_last), bool(channels_last)
        self.global_batch = self.batch_size * self.world_size
        self.norm = (CIFAR_MEAN, CIFAR_STD) if norm is None else (tuple(norm[0]), tuple(norm[1]))
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement must be a bool, got {replacement!r}")
        self.replacement = replacement
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        return int(self.images.shape[0])

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffle and augmentation the next iteration uses."""
        self.epoch = _check_int(epoch, "epoch", 0)

    def __len__(self) -> int:
        n, g = self.num_samples, self.global_batch
        return n // g if self.drop_last else math.ceil(n / g)

    def global_batch_sizes(self) -> list[int]:
        """Size of each global batch of an epoch (all ``global_batch`` but maybe the last)."""
        n, g = self.num_samples, self.global_batch
        return [min(g, n - t * g) for t in range(len(self))]

    def order(self) -> torch.Tensor:
        """The epoch's global order of sample indices (CPU int64): a permutation in training (i.i.d. draws with
        ``replacement``)."""
        if self.train and self.replacement:
            n = self.num_samples
            return torch.randint(0, n, (n,), generator=epoch_generator(self.seed, self.epoch, 0))
        if self.train:
            return torch.randperm(self.num_samples, generator=epoch_generator(self.seed, self.epoch, 0))
        return torch.arange(self.num_samples)

    def rank_slice(self, m: int) -> tuple[int, int]:
        """This rank's part ``[lo, hi)`` of a global batch of ``m`` samples."""
        base, extra = divmod(m, self.world_size)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    def __iter__(self):
        order = self.order()
        jitter = self.train and self.augment
        gen = epoch_generator(self.seed, self.epoch, 1) if jitter else None
        for t, m in enumerate(self.global_batch_sizes()):
            lo, hi = self.rank_slice(m)
            start = t * self.global_batch
            idx = order[start + lo : start + hi].to(self.device)
            x = self.images[idx]
            if jitter:
                offsets, flips = draw_augmentation(m, gen)  # drawn for the whole global batch
                x = apply_augmentation(x, offsets[lo:hi], flips[lo:hi])
            x = normalize(x, *self.norm)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


def synthetic_cifar(n: int, num_classes: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random CIFAR-shaped data that a small network can learn, for ``--synthetic`` smoke runs.

    Each class has a mean colour and a smooth 8x8 pattern (upsampled to 32x32);
    an image is its class's colour plus pattern plus pixel noise (std 24),
    rounded and clipped to uint8. Labels are balanced (``i % num_classes``,
    shuffled). Same ``(n, num_classes, seed)``, same data bit for bit.

    Returns
    -------
    images : uint8 tensor n x 3 x 32 x 32
    labels : int64 tensor n
    """
    n = _check_int(n, "n", 1)
    k = _check_int(num_classes, "num_classes", 1)
    rng = np.random.default_rng(_check_int(seed, "seed", 0))
    colours = rng.uniform(64, 192, size=(k, 3, 1, 1)).astype(np.float32)
    patterns = np.kron(rng.normal(0, 32, size=(k, 3, 8, 8)), np.ones((1, 1, 4, 4))).astype(np.float32)
    labels = rng.permutation(np.arange(n) % k).astype(np.int64)
    images = np.empty((n, 3, 32, 32), dtype=np.uint8)
    for s in range(0, n, 4096):  # chunks keep the float scratch small for n = 50000
        lab = labels[s : s + 4096]
        noise = rng.normal(0, 24, size=(len(lab), 3, 32, 32)).astype(np.float32)
        images[s : s + 4096] = np.clip(np.rint(colours[lab] + patterns[lab] + noise), 0, 255)
    return torch.from_numpy(images), torch.from_numpy(labels)
