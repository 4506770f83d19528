"""Flag checks shared by every ``brelax`` subcommand, so that each validates the same way.

Every check raises :class:`UsageError` (a ValueError) whose message names the flag
the user typed and the value given; :func:`brelax.cli.main` prints it on one line
and exits with status 2. Output locations are checked *before* any work is done:
a run that computes for minutes and then cannot write its report has lost that work.
"""

from __future__ import annotations

import math
import os
import stat
import tempfile

from ..errors import InputError

#: The seeds every generator here accepts (NumPy's legacy seed is a uint32).
SEED_MAX = 2**32 - 1


class UsageError(InputError):
    """A bad flag value, input file or output location; one line, exit status 2."""


def int_in(value, flag: str, lo: int, hi: int):
    """``value`` as an int in ``[lo, hi]`` (None passes through).

    Raises
    ------
    UsageError
        ``value`` is not an int or lies outside ``[lo, hi]``; the message writes the range out.
    """
    if value is None:
        return None
    int_at_least(value, flag, lo)
    if value > hi:
        raise UsageError(f"{flag} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def seed(value, flag: str = "--seed"):
    """A seed in ``[0, 2**32 - 1]`` (:data:`SEED_MAX`), the range of NumPy's and torch's generators here."""
    return int_in(value, flag, 0, SEED_MAX)


def available_memory() -> int | None:
    """Bytes of physical memory of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def fits_in_memory(nbytes: float, flag: str, value) -> None:
    """Refuse, before any work, a size whose arrays cannot fit in this machine's memory.

    Parameters
    ----------
    nbytes : the bytes the command will allocate for ``value`` (a lower bound)
    flag, value : the flag that sets the size, and its value, for the message

    Raises
    ------
    UsageError
        ``nbytes`` exceeds the physical memory.
    """
    total = available_memory()
    if total is not None and nbytes > total:
        raise UsageError(
            f"{flag} {value} needs at least {_gib(nbytes)} of memory, more than this machine has ({_gib(total)})"
        )


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


def int_at_least(value, flag: str, minimum: int):
    """``value`` as an int ``>= minimum`` (None passes through).

    Raises
    ------
    UsageError
        ``value`` is not an int or is below ``minimum``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{flag} must be an integer >= {minimum}, got {value!r}")
    return value


def float_in(
    value, flag: str, lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False, hi_open: bool = False
):
    """``value`` as a finite float in the interval ``[lo, hi]`` (ends open where asked; None passes through).

    Raises
    ------
    UsageError
        ``value`` is not a finite number in the interval; the message writes the interval out.
    """
    if value is None:
        return None
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{flag} must be a number, got {value!r}") from None
    ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        if hi == math.inf:
            want = f"> {lo:g}" if lo_open else f">= {lo:g}"
            raise UsageError(f"{flag} must be a finite number {want}, got {value!r}")
        raise UsageError(f"{flag} must be a finite number in {left}{lo:g}, {hi:g}{right}, got {value!r}")
    return v


def output_dir(path, flag: str = "--out") -> str:
    """Make sure ``path`` is (or can become) a writable directory; create it and probe it with a file.

    Returns
    -------
    str
        The path.

    Raises
    ------
    UsageError
        ``path`` is a file, lies under a file, or cannot be created or written to
        (read-only folder or file system, permissions, a full disk).
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a file, not a directory")
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".brelax-write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"{flag} {path!r} is not a writable directory ({e.strerror or e})") from None
    return path


def output_file(path, flag: str = "--out", force: bool = False, inputs=()) -> str:
    """Check that ``path`` can be written: never one of ``inputs``, an existing file only with ``force``.

    The folder of ``path`` is created and probed with :func:`output_dir`.

    Raises
    ------
    UsageError
        ``path`` is one of the input files, an existing file (without ``force``), with ``force``
        anything but a regular file (a symlink, FIFO, device or socket), a directory, or in a
        folder that cannot be written.
    """
    path = os.fspath(path)
    for src in inputs:
        if os.path.exists(path) and os.path.exists(src) and os.path.samefile(path, src):
            raise UsageError(f"{flag} {path!r} is the input file; refusing to write over it")
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a directory; give a file name")
    if os.path.lexists(path):
        if not force:
            raise UsageError(f"{flag} {path!r} exists; give --force to replace it")
        kind = _not_regular(path)
        if kind:  # replacing /dev/stdout or a FIFO with a regular file would break what they are
            raise UsageError(f"{flag} {path!r} is {kind}; --force replaces regular files only")
    output_dir(os.path.dirname(os.path.abspath(path)), flag=f"the folder of {flag}")
    return path


def _not_regular(path) -> str | None:
    """What ``path`` is when it is not a regular file (a symlink, FIFO, device, socket), else None."""
    st = os.lstat(path)
    for test, kind in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(st.st_mode):
            return kind
    return None if stat.S_ISREG(st.st_mode) else "not a regular file"


def input_file(path, flag: str) -> str:
    """Check that ``path`` is an existing, readable file.

    Raises
    ------
    UsageError
        No such file, a directory, or unreadable.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"{flag} {path!r}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{flag} {path!r} is not readable")
    return path


def one_line(message) -> str:
    """``message`` on one line: runs of whitespace (newlines included) become one space."""
    return " ".join(str(message).split())
