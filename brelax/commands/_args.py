"""Flag checks shared by every ``brelax`` subcommand, so that each validates the same way.

Every check raises :class:`UsageError` (a ValueError) whose message names the flag
the user typed and the value given; :func:`brelax.cli.main` prints it on one line
and exits with status 2. Output locations are checked *before* any work is done:
a run that computes for minutes and then cannot write its report has lost that work.
"""

from __future__ import annotations

import math
import os
import tempfile


class UsageError(ValueError):
    """A bad flag value, input file or output location; one line, exit status 2."""


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
        ``path`` is one of the input files, an existing file (without ``force``),
        a directory, or in a folder that cannot be written.
    """
    path = os.fspath(path)
    for src in inputs:
        if os.path.exists(path) and os.path.exists(src) and os.path.samefile(path, src):
            raise UsageError(f"{flag} {path!r} is the input file; refusing to write over it")
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a directory; give a file name")
    if os.path.exists(path) and not force:
        raise UsageError(f"{flag} {path!r} exists; give --force to replace it")
    output_dir(os.path.dirname(os.path.abspath(path)), flag=f"the folder of {flag}")
    return path


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
