"""BatchNorm statistics at the evaluated weights: re-estimate them, evaluate, put the training ones back.

Why: a BatchNorm layer's running mean and variance are an exponential average
(momentum 0.1, about the last ten steps) of batch statistics taken at the
weights *trained on*. Evaluating the quantized model ``P(y)`` with them mixes
two networks: in Phase I they were gathered at the relaxed ``x``, in Phase II at
``P(y)`` of the last few steps, and every step flips signs and moves the
per-channel scales, so the statistics lag the weights. On the digits CNN
(binary, lr 0.01, Phase II) the stale statistics gave 41% test accuracy at
``P(y)`` where the same weights with statistics re-estimated on the training
images give 87% (``test_acc_authors``, evaluated at the weights of the last
forward pass, whose statistics are freshest, gave 83%). The remedy is the usual
one for weights that change after training (SWA's ``update_bn``): one forward
pass over training images at the evaluated weights, in train mode, with a
cumulative average (``momentum=None``); never the test images.
"""

from __future__ import annotations

import contextlib

import torch

from . import ddp

__all__ = ["bn_layers", "recalibrate", "recalibrated", "statistics"]


def bn_layers(net: torch.nn.Module) -> list:
    """The BatchNorm layers of ``net`` that keep running statistics."""
    return [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def statistics(net: torch.nn.Module) -> dict:
    """``{state_dict key: tensor}`` (copies) of every BatchNorm running mean, variance and batch count of ``net``."""
    names = {id(m) for m in bn_layers(net)}
    out = {}
    for prefix, m in net.named_modules():
        if id(m) in names:
            for k in ("running_mean", "running_var", "num_batches_tracked"):
                t = getattr(m, k, None)
                if t is not None:
                    out[f"{prefix}.{k}" if prefix else k] = t.detach().clone()
    return out


@torch.no_grad()
def recalibrate(net: torch.nn.Module, loader, ctx=None, max_images: int | None = None) -> int:
    """Replace every BatchNorm running mean and variance by their average over ``loader`` at the current weights.

    ``mean_c = (1/B) sum_b mean_b,c`` and ``var_c = (1/B) sum_b var_b,c`` over the
    ``B`` batches (PyTorch's cumulative average, ``momentum=None``; ``var_b`` the
    unbiased batch variance), then averaged over DDP ranks so that every rank
    evaluates the same network. Parameters, the train/eval mode and each layer's
    momentum are left as they were.

    Parameters
    ----------
    net : torch.nn.Module
    loader : iterable of (images, labels)
        Training images without augmentation (never the test set).
    ctx : brelax.torch.ddp.DistContext or None
        Average the statistics over its ranks.
    max_images : int or None
        Stop after the batch that reaches this many images (per rank); None: the whole loader.

    Returns
    -------
    int
        The number of images seen (this rank); 0 when ``net`` has no BatchNorm layer.

    Raises
    ------
    ValueError
        ``max_images < 1``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    >>> recalibrate(net, [(torch.ones(4, 1, 5, 5), torch.zeros(4))])
    4
    """
    if max_images is not None and (isinstance(max_images, bool) or int(max_images) < 1):
        raise ValueError(f"max_images must be None or >= 1, got {max_images!r}")
    layers = bn_layers(net)
    if not layers:
        return 0
    was_training, momenta = net.training, [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    seen = 0
    try:
        net.train()
        for xb, _ in loader:
            if len(xb) == 0:
                continue
            net(xb)
            seen += len(xb)
            if max_images is not None and seen >= max_images:
                break
    finally:
        for m, mom in zip(layers, momenta, strict=True):
            m.momentum = mom
        net.train(was_training)
    if ctx is not None and ctx.enabled:
        for m in layers:
            for buf in (m.running_mean, m.running_var):
                ddp.all_reduce_sum(buf, ctx)
                buf.div_(ctx.world_size)
    return seen


@contextlib.contextmanager
def recalibrated(net: torch.nn.Module, loader, ctx=None, max_images: int | None = None):
    """Context manager: BatchNorm statistics re-estimated (:func:`recalibrate`) inside, the training ones after.

    Training continues from exactly the statistics it had (a resumed run stays
    bit-identical); only the evaluation inside the block sees the new ones.
    ``loader=None`` leaves the statistics alone.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    >>> with recalibrated(net, [(torch.randn(8, 3), None)]):
    ...     pass
    >>> float(net[1].running_mean.abs().sum())
    0.0
    """
    layers = [] if loader is None else bn_layers(net)
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in layers]
    try:
        if layers:
            recalibrate(net, loader, ctx, max_images)
        yield net
    finally:
        with torch.no_grad():
            for m, state in zip(layers, saved, strict=True):
                m.load_state_dict(state)
