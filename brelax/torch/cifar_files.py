"""CIFAR-10/100 python-pickle archives: a restricted unpickler, the reader and a tiny-archive writer.

The format (https://www.cs.toronto.edu/~kriz/cifar.html, "python version"):
each batch file is a pickled dict with bytes keys, written by Python 2 cPickle
and read in Python 3 with ``encoding="bytes"``:

* ``b"data"``: uint8 numpy array N x 3072; each row is one 32x32 RGB image as
  three row-major planes (1024 red, then 1024 green, then 1024 blue values);
* ``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` and ``b"coarse_labels"``
  (CIFAR-100): lists of N ints;
* ``b"batch_label"``: bytes; ``b"filenames"``: list of N bytes.

CIFAR-10 ships as ``cifar-10-python.tar.gz`` holding ``cifar-10-batches-py/``
with ``data_batch_1`` .. ``data_batch_5`` (train) and ``test_batch``;
CIFAR-100 as ``cifar-100-python.tar.gz`` holding ``cifar-100-python/`` with
``train`` and ``test``.

Unpickling runs code named by the file, so these files are read with
:class:`RestrictedUnpickler`, which resolves only the handful of globals that
a pickled numpy array needs and refuses everything else before it can run.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

__all__ = [
    "DATASETS",
    "RestrictedUnpickler",
    "load_cifar",
    "restricted_loads",
    "tiny_cifar_arrays",
    "write_tiny_cifar",
]

# Largest member read from an archive: CIFAR-100's "train" is ~155 MB, so this
# only stops a corrupt or hostile header from making us allocate without bound.
_MAX_MEMBER_BYTES = 1 << 30


def _latin1_encode(text, encoding="latin1"):
    """Stand-in for ``_codecs.encode``: Python 3 pickles bytes (protocol <= 2) as encode(str, "latin1")."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(
            f"refused _codecs.encode({type(text).__name__}, {encoding!r}): only str, 'latin1' is allowed"
        )
    return text.encode("latin1")


def _empty_bytes(*args):
    """Stand-in for ``bytes``: Python 3 pickles ``b''`` (protocol <= 2) as the call bytes()."""
    if args:
        raise pickle.UnpicklingError("refused bytes(...) with arguments: only bytes() is allowed")
    return b""


# numpy pickles an array as _reconstruct(ndarray, (0,), b"b") followed by
# __setstate__((version, shape, dtype(...), fortran, raw bytes)); a numpy
# scalar as scalar(dtype, raw bytes). Python 2 era files name the module
# numpy.core.multiarray, numpy >= 2 writes numpy._core.multiarray: both map to
# the installed functions, so numpy.core is never imported.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_SCALAR = np.int64(0).__reduce__()[0]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can build dicts, lists, str/bytes/int/float and numpy arrays, nothing else.

    Dicts, lists, tuples, strings, bytes, ints, floats, None and booleans are
    pickle opcodes and need no global. The only globals resolved are numpy's
    array and scalar reconstruction (``_reconstruct``, ``scalar``,
    ``ndarray``, ``dtype``) and two guarded stand-ins for what Python 3 writes
    for bytes at protocol <= 2 (``_codecs.encode(s, "latin1")`` and
    ``bytes()``). Any other global raises :class:`pickle.UnpicklingError` naming
    it, before anything is imported or called; persistent ids are refused by
    the base class.
    """

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: a CIFAR batch only needs numpy arrays, lists, dicts, bytes and ints"
            )
        return found


def restricted_loads(data: bytes, encoding: str = "bytes"):
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (``encoding="bytes"`` as for Python 2 files)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


@dataclass(frozen=True)
class _Spec:
    archive: str
    folder: str
    train: tuple
    test: tuple
    label_key: bytes
    num_classes: int
    meta: str


DATASETS = {
    "cifar10": _Spec(
        "cifar-10-python.tar.gz",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        b"labels",
        10,
        "batches.meta",
    ),
    "cifar100": _Spec(
        "cifar-100-python.tar.gz", "cifar-100-python", ("train",), ("test",), b"fine_labels", 100, "meta"
    ),
}


def _spec(dataset) -> _Spec:
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    return DATASETS[dataset]


def _locate(root, spec: _Spec, files: tuple) -> tuple[str, Path]:
    """Find the data: ('dir', extracted folder) or ('tar', archive path)."""
    p = Path(root).expanduser()
    if p.is_file():
        return "tar", p
    looked = [str(p / files[0])]
    if p.is_dir():
        if (p / files[0]).is_file():
            return "dir", p
        for kind, cand in (("dir", p / spec.folder), ("tar", p / spec.archive)):
            looked.append(str(cand) + ("/" if kind == "dir" else ""))
            if cand.is_dir() if kind == "dir" else cand.is_file():
                return kind, cand
    else:
        looked = [str(p)]
    raise FileNotFoundError(
        f"no {spec.folder} data at {str(root)!r}: looked for "
        + ", ".join(looked)
        + f" (give the extracted folder, the folder holding {spec.archive}, or the archive itself)"
    )


def _safe_member_name(name: str, archive: Path) -> str:
    """The member name without a leading './'; refuse absolute paths and '..' components."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise ValueError(f"refusing archive {archive}: unsafe member name {name!r}")
    return "/".join(part for part in pure.parts if part != ".")


def _read_from_tar(archive: Path, spec: _Spec, files: tuple) -> list[bytes]:
    """Read the wanted members into memory in one sequential pass; nothing is written to disk."""
    wanted = {f"{spec.folder}/{f}": f for f in files}
    found: dict[str, bytes] = {}
    try:
        # Stream mode ("r|*"): one forward pass, works for .tar, .tar.gz, .tar.bz2, .tar.xz.
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                name = _safe_member_name(member.name, archive)
                if name not in wanted:
                    continue
                if not member.isfile():
                    raise ValueError(f"refusing archive {archive}: member {member.name!r} is not a regular file")
                if name in found:
                    raise ValueError(f"refusing archive {archive}: member {member.name!r} appears twice")
                if member.size > _MAX_MEMBER_BYTES:
                    raise ValueError(f"refusing archive {archive}: member {member.name!r} has {member.size} bytes")
                found[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as e:
        if _is_truncated(archive):
            raise ValueError(f"{archive}: the archive is truncated (download it again)") from None
        raise ValueError(f"{archive} is not a readable tar archive: {e}") from None
    missing = [n for n in wanted if n not in found]
    if missing and _is_truncated(archive):  # a cut at a member boundary reads as an early, clean end
        raise ValueError(f"{archive}: the archive is truncated, it ends before {missing[0]} (download it again)")
    if missing:
        raise FileNotFoundError(f"archive {archive} has no member(s) {', '.join(missing)}")
    return [found[f"{spec.folder}/{f}"] for f in files]


def _is_truncated(archive: Path) -> bool:
    """Whether ``archive`` ends early: its compressed stream is cut, or the tar lacks its end marker.

    A whole tar ends with (at least) two 512-byte blocks of zeros; a cut one ends with
    data or a header, or is not whole blocks. Reads the archive once (only after a failure).
    """
    openers = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ", lzma.open))
    with open(archive, "rb") as f:
        head = f.read(6)
    opener = next((op for magic, op in openers if head.startswith(magic)), open)
    size, tail, first = 0, b"", b""
    try:
        with opener(archive, "rb") as f:
            while chunk := f.read(1 << 22):
                first = first or chunk[: tarfile.BLOCKSIZE]
                size += len(chunk)
                tail = (tail + chunk)[-2 * tarfile.BLOCKSIZE :]
    except EOFError:  # the compressed stream ends before its end marker
        return True
    except (zlib.error, lzma.LZMAError, OSError):  # corrupt, not cut
        return False
    if first[257:262] != b"ustar":  # not a tar at all: unreadable, not truncated
        return False
    return size % tarfile.BLOCKSIZE != 0 or tail != bytes(2 * tarfile.BLOCKSIZE)


def _unpickle(blob: bytes, where: str):
    """:func:`restricted_loads`, its errors naming the file; a cut pickle is a ValueError."""
    try:
        return restricted_loads(blob)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(f"{where}: {e}") from None
    except (EOFError, ValueError, IndexError, KeyError, TypeError) as e:  # what a torn pickle stream raises
        raise ValueError(f"{where}: not a readable CIFAR pickle, truncated or corrupt ({type(e).__name__})") from None


def _get(d: dict, key: bytes, where: str):
    for k in (key, key.decode()):
        if k in d:
            return d[k]
    raise ValueError(f"{where}: no {key!r} entry (keys: {sorted(map(repr, d))})")


def _parse_batch(obj, where: str, spec: _Spec) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    data = _get(obj, b"data", where)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{where}: b'data' must be a uint8 array N x 3072, got {desc}")
    labels = np.asarray(_get(obj, spec.label_key, where))
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: {spec.label_key!r} must be {data.shape[0]} ints, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise ValueError(f"{where}: labels must lie in [0, {spec.num_classes}), got [{labels.min()}, {labels.max()}]")
    return data, labels.astype(np.int64)


def load_cifar(root, dataset: str = "cifar10", train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Read CIFAR-10 or CIFAR-100 from the standard python-pickle files.

    Parameters
    ----------
    root : str or Path
        Any of: the extracted folder (``cifar-10-batches-py/`` or
        ``cifar-100-python/``), the folder that contains it, the folder that
        contains the archive (``cifar-10-python.tar.gz`` or
        ``cifar-100-python.tar.gz``), or the archive file itself. The extracted
        folder wins over the archive when both are there. Archive members are
        read in memory, never extracted.
    dataset : {"cifar10", "cifar100"}
    train : bool
        The training split (50000 images) or the test split (10000).

    Returns
    -------
    images : torch.Tensor
        uint8, N x 3 x 32 x 32 (RGB, NCHW).
    labels : torch.Tensor
        int64, N; the fine labels (0..99) for CIFAR-100.

    Raises
    ------
    FileNotFoundError
        Nothing usable at ``root``; the message lists every path looked for.
    ValueError
        Unknown ``dataset``, an archive member with an absolute or '..' path,
        or a file that is not in the CIFAR format.
    pickle.UnpicklingError
        A file names a global other than numpy's array reconstruction.
    """
    spec = _spec(dataset)
    files = spec.train if train else spec.test
    kind, path = _locate(root, spec, files)
    if kind == "tar":
        blobs = _read_from_tar(path, spec, files)
        wheres = [f"{path}:{spec.folder}/{f}" for f in files]
    else:
        blobs, wheres = [], []
        for f in files:
            if not (path / f).is_file():
                raise FileNotFoundError(f"{dataset} folder {path} has no file {f!r}")
            blobs.append((path / f).read_bytes())
            wheres.append(str(path / f))
    parts = [_parse_batch(_unpickle(b, w), w, spec) for b, w in zip(blobs, wheres, strict=True)]
    data = np.concatenate([d for d, _ in parts])
    labels = np.concatenate([l for _, l in parts])
    images = torch.from_numpy(np.ascontiguousarray(data.reshape(-1, 3, 32, 32)))
    return images, torch.from_numpy(labels)


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def tiny_cifar_arrays(dataset: str = "cifar10", n_train: int = 50, n_test: int = 20, seed: int = 0) -> dict:
    """The arrays :func:`write_tiny_cifar` writes, without writing them.

    Returns
    -------
    dict
        ``{"train": (data, fine, coarse), "test": (...)}`` with ``data`` uint8
        N x 3072 (random pixels), ``fine`` int64 N (the labels) and ``coarse``
        int64 N (``fine % 20`` for CIFAR-100, None for CIFAR-10).
    """
    spec = _spec(dataset)
    counts = {"train": _check_count(n_train, "n_train", 1), "test": _check_count(n_test, "n_test", 1)}
    rng = np.random.default_rng(_check_count(seed, "seed", 0))
    out = {}
    for split in ("train", "test"):
        n = counts[split]
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = rng.integers(0, spec.num_classes, size=n).astype(np.int64)
        out[split] = (data, fine, fine % 20 if dataset == "cifar100" else None)
    return out


_CIFAR10_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _batch_dicts(dataset: str, arrays: dict) -> dict:
    """File name -> the dict pickled into it, with the real format's keys."""
    spec = _spec(dataset)
    files = {}
    for split in ("train", "test"):
        data, fine, coarse = arrays[split]
        names = spec.train if split == "train" else spec.test
        chunks = np.array_split(np.arange(len(data)), len(names))
        for i, (fname, idx) in enumerate(zip(names, chunks, strict=True)):
            what = "training" if split == "train" else "testing"
            d = {
                b"batch_label": f"{what} batch {i + 1} of {len(names)}".encode(),
                spec.label_key: [int(v) for v in fine[idx]],
            }
            if coarse is not None:
                d[b"coarse_labels"] = [int(v) for v in coarse[idx]]
            d[b"data"] = np.ascontiguousarray(data[idx])
            d[b"filenames"] = [f"tiny_{split}_{int(j):05d}.png".encode() for j in idx]
            files[fname] = d
    if dataset == "cifar10":
        files[spec.meta] = {b"num_cases_per_batch": len(chunks[0]), b"label_names": _CIFAR10_NAMES, b"num_vis": 3072}
    else:  # placeholder class names: the tiny data is random anyway
        files[spec.meta] = {
            b"fine_label_names": [f"fine_{k:02d}".encode() for k in range(100)],
            b"coarse_label_names": [f"coarse_{k:02d}".encode() for k in range(20)],
        }
    return files


def write_tiny_cifar(
    root, dataset: str = "cifar10", n_train: int = 50, n_test: int = 20, seed: int = 0, archive: bool = True
) -> Path:
    """Write a tiny CIFAR-10/100 in exactly the distributed format, for tests and smoke runs.

    The same file names inside the same top folder, the same dict keys, uint8
    N x 3072 pixel rows, pickled with protocol 2 (what Python 2 cPickle wrote).
    CIFAR-10's train split is spread over the five ``data_batch_*`` files as
    evenly as possible. Pixels and labels are :func:`tiny_cifar_arrays`.

    Parameters
    ----------
    root : str or Path
        The folder to write into (created if needed).
    dataset : {"cifar10", "cifar100"}
    n_train, n_test : int
        Number of images per split, at least 1.
    seed : int
        Seed of the random pixels and labels.
    archive : bool
        Write ``root/cifar-10-python.tar.gz`` (byte-reproducible: zero
        mtimes and owners) or the extracted folder ``root/cifar-10-batches-py/``
        (CIFAR-100: ``cifar-100-python.tar.gz`` / ``cifar-100-python/``).

    Returns
    -------
    Path
        The archive or the folder written; :func:`load_cifar` accepts it or ``root``.
    """
    spec = _spec(dataset)
    files = _batch_dicts(dataset, tiny_cifar_arrays(dataset, n_train, n_test, seed))
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if not archive:
        folder = root / spec.folder
        folder.mkdir(exist_ok=True)
        for fname, d in files.items():
            (folder / fname).write_bytes(pickle.dumps(d, protocol=2))
        return folder
    path = root / spec.archive
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        top = tarfile.TarInfo(spec.folder)
        top.type, top.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(top)
        for fname, d in files.items():
            blob = pickle.dumps(d, protocol=2)
            info = tarfile.TarInfo(f"{spec.folder}/{fname}")
            info.size, info.mode = len(blob), 0o644
            tar.addfile(info, io.BytesIO(blob))
    return path
