"""Atomic file writes: a temporary file beside the target, then ``os.replace``.

An interrupted run therefore leaves either the old file or the new one, never
a torn one. Every writer in brelax, theory, proofs_checks, figures and bench
goes through :func:`atomic_write`.
"""

from __future__ import annotations

import os
import tempfile


def atomic_write(path, write, binary: bool = True, mode: int = 0o644) -> str:
    """Call ``write(fh)`` on a temporary file beside ``path``, fsync it, then rename it onto ``path``.

    Parameters
    ----------
    path : str or PathLike
    write : callable taking the open file
    binary : open the temporary file in binary (default) or text (UTF-8) mode
    mode : permissions of the result (``mkstemp`` creates 0600)

    Returns
    -------
    The path written, as a str. The parent folder is created if missing.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(text), binary=False)
