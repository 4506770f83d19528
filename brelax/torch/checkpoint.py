"""Checkpoints that load with ``torch.load(weights_only=True)``, written atomically, with RNG states.

A checkpoint holds only tensors and primitive containers (dict, list, str,
int, float, bool, None), so loading it never runs pickled code: every load
here passes ``weights_only=True``. It is written to a temporary file in the
same folder, flushed to disk, then moved over the old one with
:func:`os.replace` (atomic on POSIX and Windows), so a crash mid-write leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import pickle
import random
import re
import warnings

import numpy as np
import torch

from .._atomic import atomic_write_text, atomic_write_with_digest, check_digest
from ..errors import InputError

FORMAT = "brelax-train-1"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under ``torch.compile`` (``_orig_mod``) and DDP (``module``) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def check_plain(obj, where: str = "checkpoint") -> None:
    """Raise TypeError naming the first entry that is not a tensor or a primitive container."""
    if obj is None or isinstance(obj, (str, bool, numbers.Real, torch.Tensor)):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where} has a key of type {type(k).__name__}: {k!r}")
            check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where} holds a {type(obj).__name__}; checkpoints keep only tensors and primitives")


def save_atomic(obj, path) -> None:
    """``torch.save(obj, path)`` through a temporary file and :func:`os.replace`; its sha256 into ``PATH.sha256``.

    Raises
    ------
    TypeError
        ``obj`` holds something other than tensors and primitive containers.
    """
    check_plain(obj)
    atomic_write_with_digest(path, lambda f: torch.save(obj, f))


class CheckpointError(InputError):
    """A file given as a checkpoint is missing, truncated, corrupt, refused or of another run/model."""


def torch_load(path, what: str = "checkpoint", map_location="cpu"):
    """``torch.load(path, weights_only=True)`` with every failure turned into one :class:`CheckpointError` line.

    Parameters
    ----------
    path : str or PathLike
    what : str
        How the message names the file, e.g. ``"--init"`` or ``"--resume"`` (the flag the user typed).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        A truncated or corrupt file, or one that names a global other than tensors and primitives
        (refused before anything runs).
    IntegrityError
        The file does not match the sha256 recorded beside it (``PATH.sha256``) when it was written.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what}: no checkpoint at {path}")
    check_digest(path, what)  # before torch reads a byte of it
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        why = (
            f"it names the global {found.group(1)}" if found else "it is corrupt or holds objects that are not tensors"
        )
        raise CheckpointError(
            f"{what} {path}: refused to load it, {why} (only tensors and primitives are loaded; nothing in it was run)"
        ) from None
    except Exception as e:  # torch reports a torn zip as RuntimeError, garbage as KeyError, an empty file as EOFError
        raise CheckpointError(
            f"{what} {path}: not a readable torch checkpoint, truncated or corrupt ({type(e).__name__})"
        ) from None


def load(path, map_location="cpu", what: str = "checkpoint") -> dict:
    """Load a checkpoint with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError (a ValueError)
        The file is truncated, corrupt, refused (pickled code) or not a brelax training checkpoint.
    """
    path = os.fspath(path)
    ck = torch_load(path, what, map_location)
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{what} {path} is not a brelax training checkpoint (format {FORMAT!r})")
    return ck


def rng_state() -> dict:
    """The torch (CPU and every CUDA device), numpy and python RNG states, as tensors and lists."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, words, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "words": list(words), "gauss_next": gauss_next},
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only where devices exist)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["words"]), p["gauss_next"]))


def float_init_state(path) -> dict:
    """A float model's state_dict from ``--init``: a brelax checkpoint or a plain/``net``/``state_dict`` dict.

    From a brelax checkpoint the latent float weights ``y`` replace the
    quantized tensors (the model holds ``x``, the point the gradient was taken
    at). A ``module.`` prefix (DataParallel/DDP) is stripped. Loaded with
    ``weights_only=True``.
    """
    ck = torch_load(path, "--init")
    if isinstance(ck, dict) and ck.get("format") == FORMAT:
        sd = dict(ck["model"])
        quant = ck["optimizer"]["quant"]
        for rec in quant["plan"]:
            if rec["index"] in quant["latent"]:
                sd[rec["name"]] = quant["latent"][rec["index"]]
    elif isinstance(ck, dict) and isinstance(ck.get("net"), dict):
        sd = ck["net"]
    elif isinstance(ck, dict) and isinstance(ck.get("state_dict"), dict):
        sd = ck["state_dict"]
    elif isinstance(ck, dict) and all(isinstance(v, torch.Tensor) for v in ck.values()):
        sd = ck
    else:
        raise CheckpointError(f"--init {path}: expected a state_dict (or a dict with 'net' or 'state_dict')")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}


def load_matching(net: torch.nn.Module, state: dict, what: str = "--init") -> None:
    """``net.load_state_dict(state)`` (strict), but a mismatch is one line, not every key.

    Raises
    ------
    CheckpointError
        ``state`` is of another architecture: keys missing or extra, or tensors of another shape;
        the message counts each kind and names the first of each.
    """
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shape = [k for k in own if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    if missing or extra or shape:
        parts = [
            f"{len(v)} {label} (first {v[0]!r})"
            for label, v in (("missing", missing), ("unexpected", extra), ("of another shape", shape))
            if v
        ]
        raise CheckpointError(
            f"{what}: the checkpoint is of another architecture than the {type(net).__name__} "
            f"being trained; its keys: {', '.join(parts)}"
        )
    net.load_state_dict(state)


def write_text_atomic(path, text: str) -> None:
    """Write a text file through a temporary file and :func:`os.replace`."""
    atomic_write_text(path, text)


def json_safe(v):
    """Non-finite floats become None (JSON has no NaN), recursively."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def last_jsonl_row(path):
    """The last row of a JSON-lines file, or None."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    return json.loads(lines[-1]) if lines else None
