"""The ``brelax`` command line; ``python -m brelax`` is the same program.

Each subcommand lives in its own module exposing ``add_arguments(parser)``
and ``main(args) -> int``; modules are imported only when their command runs,
so ``brelax project`` never imports torch or matplotlib. ``verify``,
``figures`` and ``bench`` live in the top-level packages that depend on
brelax (never the other way round at import time): the CLI is the one place
that ties the layers together.

Errors: :func:`main` is the one handler. A user error (a bad flag value, a
missing, truncated or refused input file, an unwritable ``--out``, a full
disk) prints one line ``brelax COMMAND: error: ...`` naming the flag and the
value and exits with status 2; Ctrl-C exits with 130. ``--debug`` (anywhere
on the command line) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pickle
import sys

COMMANDS = {
    "project": ("brelax.commands.project", "project an array onto a set: exact vs heuristics"),
    "run": ("brelax.commands.run", "run an algorithm on a problem and save its trajectory"),
    "verify": ("proofs_checks.cli", "check every theorem along real trajectories (the main job)"),
    "figures": ("figures.cli", "regenerate every figure"),
    "bench": ("bench.cli", "speed and memory benchmarks, as ratios to in-run baselines"),
    "train": ("brelax.torch.train_cli", "train a quantized network on CIFAR-10/100 (torch)"),
    "export": ("brelax.torch.export", "export a checkpoint's codes and scales to safetensors"),
}

#: What a user can cause: bad values (ValueError, TypeError), files (OSError: missing, unwritable, disk
#: full; EOFError: truncated) and refused pickles. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, TypeError, OSError, EOFError, pickle.UnpicklingError)
#: Commands whose work ``--resume`` continues after an interruption.
RESUMABLE = ("train",)


def version() -> str:
    """The installed distribution's version (``brelax.__version__``; pyproject.toml is the one place it is written)."""
    from . import __version__

    return __version__


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append ``(default: ...)`` to every option's help that has a meaningful default and does not say it."""
    skip = (argparse._StoreConstAction, argparse._HelpAction, argparse._VersionAction)  # flags: no value
    for a in parser._actions:
        if (
            not a.option_strings
            or isinstance(a, skip)
            or a.default in (None, argparse.SUPPRESS)
            or "default" in (a.help or "")
        ):
            continue
        a.help = (a.help + " " if a.help else "") + "(default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv) -> tuple[argparse.ArgumentParser, object]:
    parser = _Parser(prog="brelax", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"brelax {version()}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the Python traceback of an error (allowed anywhere on the command line)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    # Import only the module of the command actually asked for.
    name = argv[0] if argv and argv[0] in COMMANDS else None
    module = None
    if name is not None:
        module = importlib.import_module(COMMANDS[name][0])
        sp = sub.choices[name]
        sp.add_argument("-h", "--help", action="help", help="show this help message and exit")
        module.add_arguments(sp)
        _show_defaults(sp)
    return parser, module


def describe(err: BaseException) -> str:
    """One line for a user error: the message, whitespace (newlines too) collapsed.

    Parameters
    ----------
    err : one of :data:`USER_ERRORS`

    Returns
    -------
    str
        The message; for an OSError with an errno, its ``strerror`` and file name
        (plus what to do about a full disk).
    """
    from .commands._args import one_line

    if isinstance(err, OSError) and err.strerror:
        where = f" ({err.filename})" if err.filename else ""
        hint = "; free some space and run again" if err.errno == errno.ENOSPC else ""
        return one_line(f"{err.strerror}{where}{hint}")
    if isinstance(err, pickle.UnpicklingError):
        return one_line(f"refused to load a file: {err}")
    if isinstance(err, EOFError):
        return one_line(f"an input file ended early (truncated?) {err}")
    return one_line(err) or type(err).__name__


def main(argv=None) -> int:
    """Run ``brelax COMMAND ...``; the one place errors become exit codes.

    Parameters
    ----------
    argv : list of str or None
        The arguments (default ``sys.argv[1:]``); ``--debug`` is accepted anywhere.

    Returns
    -------
    int
        The command's status; 2 for a user error (one line ``brelax COMMAND: error: ...`` on
        stderr) or a bad flag, 130 for Ctrl-C. With ``--debug`` the exception propagates instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    label = f"brelax {argv[0]}" if argv and argv[0] in COMMANDS else "brelax"
    try:
        parser, module = build_parser(argv)
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version, or argparse's one-line error (already printed)
            return e.code if isinstance(e.code, int) else 2
        if module is None:
            parser.print_help()
            return 0 if not argv else 2
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        resume = "; continue with --resume" if argv and argv[0] in RESUMABLE else ""
        print(f"\n{label}: interrupted{resume}", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"{label}: error: {describe(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
