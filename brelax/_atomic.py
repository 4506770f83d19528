"""Atomic file writes: a temporary file beside the target, then ``os.replace``.

An interrupted run therefore leaves either the old file or the new one, never
a torn one. Every writer in brelax, theory, proofs_checks, figures and bench
goes through :func:`atomic_write`.

Checkpoints and exported models also get a sha256 beside them
(:func:`atomic_write_with_digest`, ``NAME.sha256`` in ``sha256sum`` format), checked
by :func:`check_digest` before they are used: a bit flipped on disk after the
write is one line (:class:`brelax.errors.IntegrityError`), not a silently wrong model.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile

from .errors import IntegrityError, RunLocked

#: The suffix of the digest file beside a file written by :func:`atomic_write_with_digest`.
DIGEST_SUFFIX = ".sha256"


def atomic_write(path, write, binary: bool = True, mode: int = 0o644, before_replace=None) -> str:
    """Call ``write(fh)`` on a temporary file beside ``path``, fsync it, then rename it onto ``path``.

    Parameters
    ----------
    path : str or PathLike
    write : callable taking the open file
    binary : open the temporary file in binary (default) or text (UTF-8) mode
    mode : permissions of the result (``mkstemp`` creates 0600)
    before_replace : callable taking the temporary file's path, or None
        Called after the data are on disk and before the rename (to record a digest of them).

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
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(text), binary=False)


def sha256_file(path, chunk: int = 1 << 20) -> str:
    """The sha256 of the file at ``path``, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _listed(path) -> list:
    """The digests the digest file of ``path`` lists (none when it has none)."""
    try:
        with open(os.fspath(path) + DIGEST_SUFFIX, encoding="ascii") as f:
            return [line.split()[0] for line in f if line.strip()]
    except (OSError, UnicodeDecodeError, IndexError):
        return []


def atomic_write_with_digest(path, write) -> str:
    """:func:`atomic_write` (binary), and the file's sha256 into ``PATH.sha256`` (``sha256sum -c`` reads it).

    Never a state where a good file fails its check: before the rename the digest file lists
    the new digest and the old ones, after it only the new one. Returns the hex digest.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    digest = {}

    def record(tmp):
        digest["new"] = sha256_file(tmp)
        both = [digest["new"]] + [d for d in _listed(path) if d != digest["new"]]
        atomic_write_text(path + DIGEST_SUFFIX, "".join(f"{d}  {name}\n" for d in both))

    atomic_write(path, write, before_replace=record)
    atomic_write_text(path + DIGEST_SUFFIX, f"{digest['new']}  {name}\n")
    return digest["new"]


def check_digest(path, what: str = "") -> bool:
    """Check ``path`` against its ``PATH.sha256``; False when there is none (a file from before digests).

    Parameters
    ----------
    path : str or PathLike
    what : how the message names the file (the flag the user typed), e.g. ``"--resume"``

    Returns
    -------
    bool
        True when checked, False when ``PATH.sha256`` does not exist.

    Raises
    ------
    IntegrityError (a ValueError)
        The file's sha256 is not the recorded one: it changed or was damaged after it was written.
    """
    path = os.fspath(path)
    if not os.path.exists(path + DIGEST_SUFFIX):
        return False
    listed = _listed(path)
    if sha256_file(path) not in listed:
        label = f"{what} " if what else ""
        raise IntegrityError(
            f"{label}{path}: its sha256 does not match {path}{DIGEST_SUFFIX}; the file was changed or damaged "
            "after it was written (restore it from a copy, or start over with --force)"
        )
    return True


#: The lock file a writer holds in its output folder (:func:`folder_lock`).
LOCK_NAME = ".brelax.lock"


@contextlib.contextmanager
def folder_lock(folder, flag: str = "--out"):
    """Hold the lock of ``folder`` (``FOLDER/.brelax.lock``, holding this process's pid) inside the block.

    The lock is an ``flock`` on that file: the kernel releases it when the holder dies, so a
    lock left by a killed run (SIGKILL, a crash, a lost node) is stale by construction. Its
    file then still names the dead pid; the next writer takes it over and says so on stderr.
    The file is removed when the block ends.

    Parameters
    ----------
    folder : str or PathLike
        An existing folder.
    flag : str
        How messages name the folder (the flag the user typed).

    Yields
    ------
    int or None
        The pid of the stale lock taken over, or None.

    Raises
    ------
    RunLocked (a ValueError)
        Another live process holds the lock; the message names its pid.
    """
    import fcntl
    import sys

    folder = os.fspath(folder)
    path = os.path.join(folder, LOCK_NAME)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise RunLocked(
                f"{flag} {folder!r} is in use by another brelax process (pid {holder or 'unknown'}, lock file "
                f"{path}); wait for it to end, or give another {flag}"
            ) from None
        try:  # the holder before us may have removed the file between our open and our lock: retry on the new one
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    stale = _lock_holder(fd)
    if stale == os.getpid():
        stale = None
    if stale is not None:
        print(f"brelax: took over the stale lock {path} of pid {stale}, which no longer holds it", file=sys.stderr)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    try:
        yield stale
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)  # releases the flock


def _lock_holder(fd) -> int | None:
    """The pid written in an open lock file, or None."""
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        return int(text.split()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None
