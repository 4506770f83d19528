"""The ``brelax`` command line; ``python -m brelax`` is the same program.

Each subcommand lives in its own module exposing ``add_arguments(parser)``
and ``main(args) -> int``; modules are imported only when their command runs,
so ``brelax project`` never imports torch or matplotlib. ``verify``,
``figures`` and ``bench`` live in the top-level packages that depend on
brelax (never the other way round at import time): the CLI is the one place
that ties the layers together.

Errors: :func:`main` is the one handler, the one place where exceptions
become exit codes (the contract is :data:`brelax.errors.EXIT_CODES`, printed
by every ``--help``). A user error (a bad flag value, a missing, truncated or
refused input file, an unwritable ``--out``, a full disk, a missing optional
dependency, a size that cannot fit in memory) prints one line ``brelax
COMMAND: error: ...`` naming the flag or file and exits with status 2; a
divergence (:class:`brelax.errors.Diverged`) exits with 3; Ctrl-C with 130 and
SIGTERM with 143, both with "continue with --resume" for ``train``. ``--debug``
(anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pickle
import signal
import sys

from .errors import Diverged, Terminated, exit_codes_text, missing_dependency

COMMANDS = {
    "project": ("brelax.commands.project", "project an array onto a set: exact vs heuristics"),
    "run": ("brelax.commands.run", "run an algorithm on a problem and save its trajectory"),
    "verify": ("proofs_checks.cli", "check every theorem along real trajectories (the main job)"),
    "figures": ("figures.cli", "regenerate every figure"),
    "bench": ("bench.cli", "speed and memory benchmarks, as ratios to in-run baselines"),
    "train": ("brelax.torch.train_cli", "train a quantized network on CIFAR-10/100 (torch)"),
    "export": ("brelax.torch.export", "export a checkpoint's codes and scales to safetensors"),
    "compare": ("brelax.torch.compare", "BinaryRelax vs BinaryConnect, ProxQuant, PARQ, float, tuned alike"),
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
    """argparse, with its errors on one line (the usage is one ``--help`` away) and the exit codes as epilog."""

    def __init__(self, *a, **kw):
        kw.setdefault("epilog", exit_codes_text())
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*a, **kw)

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    # Import only the module of the command actually asked for.
    name = argv[0] if argv and argv[0] in COMMANDS else None
    module = None
    if name is not None:
        module = importlib.import_module(COMMANDS[name][0])
        _add_command_arguments(sub.choices[name], module)
    return parser, module


def _add_command_arguments(sp: argparse.ArgumentParser, module) -> None:
    """Give the subcommand parser ``sp`` its ``--help`` and the flags of its ``module``."""
    sp.add_argument("-h", "--help", action="help", help="show this help message and exit")
    module.add_arguments(sp)
    _show_defaults(sp)


def full_parser() -> argparse.ArgumentParser:
    """The ``brelax`` parser with the flags of every subcommand (the documentation's CLI reference).

    :func:`build_parser` fills in only the command asked for, so that ``brelax project`` never
    imports torch; this one imports every command's module.

    Returns
    -------
    argparse.ArgumentParser
        ``brelax`` with its subcommands (one per entry of :data:`COMMANDS`), each with all its flags.
    """
    parser, _ = build_parser([])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, (module_name, _) in COMMANDS.items():
        _add_command_arguments(sub.choices[name], importlib.import_module(module_name))
    return parser


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


def _raise_terminated(signum, frame):
    raise Terminated(f"signal {signum}")


def _on_sigterm():
    """Make SIGTERM raise :class:`~brelax.errors.Terminated` in the main thread (as Ctrl-C raises
    KeyboardInterrupt), so a run stops between atomic writes; returns the previous handler, or None
    where no handler can be set (not the main thread)."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # signal only works in the main thread
        return None


def main(argv=None) -> int:
    """Run ``brelax COMMAND ...``; the one place errors become exit codes.

    Parameters
    ----------
    argv : list of str or None
        The arguments (default ``sys.argv[1:]``); ``--debug`` is accepted anywhere.

    Returns
    -------
    int
        The command's status (:data:`brelax.errors.EXIT_CODES`): 2 for a user error (one line
        ``brelax COMMAND: error: ...`` on stderr) or a bad flag, 3 for a divergence, 130 for
        Ctrl-C, 143 for SIGTERM. With ``--debug`` the exception propagates instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    label = f"brelax {argv[0]}" if argv and argv[0] in COMMANDS else "brelax"
    resume = "; continue with --resume" if argv and argv[0] in RESUMABLE else ""
    previous = _on_sigterm()
    try:
        try:
            parser, module = build_parser(argv)
        except ImportError as e:  # the command's module needs an optional dependency (torch, matplotlib)
            err = missing_dependency(e)
            if err is None:
                raise
            raise err from e
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version, or argparse's one-line error (already printed)
            return e.code if isinstance(e.code, int) else 2
        if module is None:
            parser.print_help()
            return 0 if not argv else 2
        return int(module.main(args) or 0)
    except Terminated:
        if debug:
            raise
        print(f"\n{label}: terminated (SIGTERM){resume}", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\n{label}: interrupted{resume}", file=sys.stderr)
        return 130
    except Diverged as e:
        if debug:
            raise
        print(f"{label}: {describe(e)}", file=sys.stderr)
        return 3
    except MemoryError as e:
        if debug:
            raise
        what = describe(e) if str(e) else "MemoryError"
        print(f"{label}: error: not enough memory ({what}); use smaller sizes", file=sys.stderr)
        return 2
    except USER_ERRORS as e:  # MissingDependency (a ValueError) included
        if debug:
            raise
        print(f"{label}: error: {describe(e)}", file=sys.stderr)
        return 2
    except ImportError as e:
        err = missing_dependency(e)
        if debug or err is None:
            raise
        print(f"{label}: error: {describe(err)}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
