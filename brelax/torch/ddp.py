"""DistributedDataParallel for ``torchrun --nproc_per_node N -m brelax train ...``.

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_from_env` reads them and joins the process group
(NCCL on GPUs, gloo on CPUs). Without them (``WORLD_SIZE`` unset or 1) it is a
plain single process and nothing here talks to anyone.

Why the quantization is the same on every rank: DDP broadcasts rank 0's
parameters and buffers when it wraps the model, so ``y_0`` is identical; it
all-reduces (averages) the gradients inside ``backward``, so every rank holds
the same ``.grad`` before ``optimizer.step()``; the base step and the exact
projection are deterministic functions of ``(y, grad)``, so every rank computes
the same ``y``, ``P(y)`` and ``x``. The latent weights are replicated, not
sharded. Only rank 0 writes files.

BatchNorm: in training each rank normalises with the statistics of its own
part of the batch, so DDP with BN is *not* the same computation as one
process with the global batch. ``sync_bn=True`` (``--sync-bn``) converts BN to
SyncBatchNorm, which uses the global batch's statistics, but PyTorch supports
it on GPUs only. The CPU test of equality with one process therefore uses a
model without BN (VGG-11 ``--no-bn``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process runs: rank, world size, local rank, device and backend (None: single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"``: CUDA (device ``local_rank``) when available, else CPU; or an explicit torch device name.

    Raises
    ------
    ValueError
        An unknown device name, or CUDA asked for but not available.
    """
    if name in (None, "auto"):
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an int") from None


def init_from_env(device: str = "auto") -> DistContext:
    """Join the process group that torchrun describes in the environment (or run alone).

    Returns
    -------
    DistContext
        ``owns_group`` is True when this call created the group (then
        :func:`shutdown` destroys it).

    Raises
    ------
    ValueError
        Inconsistent RANK / WORLD_SIZE / LOCAL_RANK, or a bad ``device``.
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistContext(device=resolve_device(device))
    rank, local = _env_int("RANK", -1), _env_int("LOCAL_RANK", _env_int("RANK", -1))
    if not 0 <= rank < world or local < 0:
        raise ValueError(f"bad distributed environment: RANK={rank}, LOCAL_RANK={local}, WORLD_SIZE={world}")
    dev = resolve_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
        owns = True
    return DistContext(rank, world, local, dev, backend, owns)


def wrap(model: torch.nn.Module, ctx: DistContext, sync_bn: bool = False) -> torch.nn.Module:
    """DDP around ``model`` (already on ``ctx.device``); the model itself when running alone.

    Raises
    ------
    ValueError
        ``sync_bn`` on CPU (PyTorch's SyncBatchNorm runs on GPUs only).
    """
    if not ctx.enabled:
        return model
    if sync_bn:
        if ctx.device.type != "cuda":
            raise ValueError("--sync-bn needs GPUs: PyTorch's SyncBatchNorm does not run on CPU")
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)  # broadcasts buffers each forward


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``t`` over ranks, in place (nothing when running alone)."""
    if ctx.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_true(flag: torch.Tensor, ctx: DistContext) -> bool:
    """Whether ``flag`` (a 0-d bool tensor) is True on every rank; all ranks get the same answer."""
    if not ctx.enabled:
        return bool(flag)
    t = flag.to(torch.int32).reshape(1)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def broadcast_buffers(module: torch.nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers (BN running statistics) before evaluating or saving."""
    if ctx.enabled:
        for b in module.buffers():
            dist.broadcast(b, src=0)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        if ctx.backend == "nccl":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Destroy the process group if :func:`init_from_env` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()
