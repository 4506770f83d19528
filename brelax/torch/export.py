"""``brelax export RUN/ckpt.pt --out model.safetensors``: integer codes, scales and float tensors.

For every quantized tensor ``W`` (name ``N``) the file holds

* ``N.codes``: the level index of every entry (int8, the layout of
  :class:`brelax.QuantizedTensor`), or with ``--pack`` the codes bit-packed,
  ``b = ceil(log2(len(table)))`` bits each (1 for binary, 2 for ternary),
  least significant bit first, in a uint8 stream;
* ``N.scales``: one float64 scale per group (per output channel by default);

and every other entry of the model's state_dict (BN, biases, the float
classifier) under its own name. The JSON metadata (safetensors ``__metadata__``)
names the model, its classes and constructor arguments, the set, and for each
quantized tensor its shape, axis, dtype and level table.

The codes are those of ``P(y)``, the latent weights' projection (``P(x)`` for
the non-lazy methods, which equals ``P(z)``): exactly what
:meth:`QuantOptimizer.finalize` writes into the model. :func:`load_exported`
rebuilds the model with :meth:`QuantizedTensor.dequantize`, the same code that
produced ``P(y)``, so the rebuilt weights are equal bit for bit and so are the
model's outputs.
"""

from __future__ import annotations

import json
import math
import os

import torch

from .._atomic import atomic_write_with_digest, check_digest
from ..commands import _args
from ..sets import QuantizedTensor, get_set
from ..steps import get_method
from . import checkpoint
from .models import build_model

FORMAT = "brelax-export-1"


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack non-negative integer codes (< 2**bits) into a uint8 stream, LSB first."""
    flat = codes.reshape(-1).to(torch.int64)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= 1 << bits):
        raise ValueError(f"codes must lie in [0, {1 << bits}) to pack into {bits} bits")
    stream = ((flat[:, None] >> torch.arange(bits)) & 1).reshape(-1)
    stream = torch.cat([stream, stream.new_zeros((-stream.numel()) % 8)])
    return (stream.reshape(-1, 8) << torch.arange(8)).sum(1).to(torch.uint8)


def unpack_codes(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: the first ``count`` codes, int64."""
    stream = ((packed.to(torch.int64)[:, None] >> torch.arange(8)) & 1).reshape(-1)[: count * bits]
    return (stream.reshape(count, bits) << torch.arange(bits)).sum(1)


def _bits(table) -> int:
    return max(1, math.ceil(math.log2(len(table))))


def export_checkpoint(ckpt_path, out, pack: bool = False) -> dict:
    """Write the safetensors file; returns a summary (tensors, bytes of the codes, of the float file).

    Raises
    ------
    FileNotFoundError, ValueError
        No checkpoint, not a brelax training checkpoint, or one holding NaN or inf.
    IntegrityError (a ValueError)
        The checkpoint does not match its sha256 (``CKPT.sha256``).

    The file is written atomically with its sha256 beside it (``OUT.sha256``); :func:`main` refuses to
    write it over its input, over an existing file without ``--force``, and over anything but a regular
    file with it.
    """
    from safetensors.torch import save

    ck = checkpoint.load(ckpt_path, what="CHECKPOINT")
    quant = ck["optimizer"]["quant"]
    model_sd = ck["model"]
    for name, t in [*model_sd.items(), *((f"latent {k}", v) for k, v in quant.get("latent", {}).items())]:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise checkpoint.CheckpointError(
                f"CHECKPOINT {ckpt_path}: {name} holds NaN or inf; refusing to export a diverged model"
            )
    tensors, entries = {}, []
    method = "gd" if quant["method"] == "float" else quant["method"]  # "float": older checkpoints' name of gd
    quantized = quant["plan"] if get_method(method).quantizes else []
    names = {rec["name"] for rec in quantized}
    for rec in quantized:
        w = quant["latent"].get(rec["index"], model_sd[rec["name"]])
        qt = get_set(rec["qset"]).quantize(w, axis=rec["axis"])
        codes = qt.codes.contiguous()
        if pack:
            codes = pack_codes(codes, _bits(qt.table))
        tensors[rec["name"] + ".codes"] = codes
        tensors[rec["name"] + ".scales"] = qt.scales.to(torch.float64).contiguous()
        entries.append(
            {
                "name": rec["name"],
                "qset": rec["qset"],
                "shape": list(qt.shape),
                "axis": qt.axis,
                "dtype": str(qt.dtype).removeprefix("torch."),
                "table": list(qt.table),
                "packed_bits": _bits(qt.table) if pack else None,
                "code_dtype": str(qt.codes.dtype),
            }
        )
    # P(y) is exported with the BatchNorm statistics it was evaluated with (re-estimated at P(y)), where the
    # checkpoint has them; the training statistics in "model" belong to the relaxed weights
    at_q = ck.get("bn_at_quantized") or {} if quantized else {}
    for k, v in model_sd.items():
        if k not in names:
            tensors[k] = at_q.get(k, v).contiguous()
    meta = {
        "format": FORMAT,
        "model": ck["model_name"],
        "num_classes": ck["num_classes"],
        "model_kwargs": ck["model_kwargs"],
        "method": quant["method"],
        "qset": ck["config"]["set"],
        "axis": ck["config"]["axis"],
        "quantized": entries,
    }
    blob = save(tensors, metadata={"brelax": json.dumps(meta)})
    atomic_write_with_digest(out, lambda fh: fh.write(blob))
    code_bytes = sum(
        tensors[e["name"] + ".codes"].numel() * tensors[e["name"] + ".codes"].element_size() for e in entries
    )
    float_bytes = sum(model_sd[e["name"]].numel() * model_sd[e["name"]].element_size() for e in entries)
    return {
        "out": os.fspath(out),
        "quantized_tensors": len(entries),
        "code_bytes": code_bytes,
        "float_bytes_of_those": float_bytes,
        "file_bytes": os.path.getsize(out),
    }


def load_exported(path, device="cpu") -> torch.nn.Module:
    """Rebuild the model from an exported file; its quantized weights are ``P(y)`` bit for bit.

    Returns
    -------
    torch.nn.Module in eval mode, on ``device``.

    Raises
    ------
    ValueError
        The file has no brelax metadata, or its tensors do not match the model.
    IntegrityError (a ValueError)
        The file does not match the sha256 that ``brelax export`` wrote beside it.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    check_digest(path, "exported model")  # when written by brelax export: PATH.sha256
    with safe_open(os.fspath(path), framework="pt") as f:
        raw = (f.metadata() or {}).get("brelax")
    if raw is None:
        raise ValueError(f"{path} was not written by brelax export (no 'brelax' metadata)")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown export format {meta.get('format')!r}")
    tensors = load_file(os.fspath(path))
    model = build_model(meta["model"], meta["num_classes"], **meta["model_kwargs"])
    sd = {}
    for e in meta["quantized"]:
        codes = tensors.pop(e["name"] + ".codes")
        shape = tuple(e["shape"])
        if e["packed_bits"]:
            codes = unpack_codes(codes, e["packed_bits"], math.prod(shape)).reshape(shape)
        codes = codes.to(getattr(torch, e["code_dtype"].removeprefix("torch.")))
        qt = QuantizedTensor(
            codes,
            tensors.pop(e["name"] + ".scales"),
            tuple(e["table"]),
            shape,
            e["axis"],
            None,
            getattr(torch, e["dtype"]),
        )
        sd[e["name"]] = qt.dequantize()
    sd.update(tensors)
    model.load_state_dict(sd, strict=True)
    return model.to(device).eval()


def add_arguments(p) -> None:
    p.add_argument("checkpoint", help="a brelax training checkpoint (RUN/ckpt.pt)")
    p.add_argument("--out", help="output .safetensors (default: model.safetensors next to the checkpoint)")
    p.add_argument("--pack", action="store_true", help="bit-pack the codes (1 bit binary, 2 bits ternary, ...)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing regular --out file (never the checkpoint, a symlink, FIFO or device)",
    )


def main(args) -> int:
    """Export; errors (ValueError, OSError) go to :func:`brelax.cli.main`, which prints them on one line."""
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f"CHECKPOINT: no checkpoint at {args.checkpoint}")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "model.safetensors")
    _args.output_file(out, "--out", force=args.force, inputs=(args.checkpoint,))  # before any work
    info = export_checkpoint(args.checkpoint, out, pack=args.pack)
    print(json.dumps(info))
    return 0
