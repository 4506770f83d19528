"""brelax's own exceptions; :func:`brelax.cli.main` is the one place that maps them to exit codes.

The library raises these (never ``sys.exit``); a command's ``main`` lets them
propagate. Each input error subclasses ValueError, so code written against the
plain Python contract (a bad argument is a ValueError) keeps working.

===========================  ===========================================  =========
exception                    meaning                                      exit code
===========================  ===========================================  =========
:class:`InputError`          a bad flag value, input file or output        2
                             location (one line naming it)
:class:`RunLocked`           another process writes the same ``--out``     2
:class:`IntegrityError`      a file's bytes differ from its recorded       2
                             sha256
:class:`ResumeMismatch`      ``--resume`` with flags that differ from      2
                             the recorded run, or without a checkpoint
:class:`MissingDependency`   an optional dependency is not installed       2
:class:`Diverged`            the loss or the weights became NaN or inf     3
:class:`Terminated`          SIGTERM (a scheduler ending the job)          143
===========================  ===========================================  =========

0 is success, 1 is reserved for a theorem result that was violated
(``brelax verify``) or a seeded defect that was missed (``--mutants``), 130
for Ctrl-C (KeyboardInterrupt).
"""

from __future__ import annotations

#: The exit-code contract of every ``brelax`` command (shown by ``--help`` and written in the README).
EXIT_CODES = (
    (0, "success"),
    (1, "a theorem result was violated (brelax verify) or a seeded defect missed (--mutants); nothing else"),
    (2, "user or input error: one line naming the flag or file (--debug shows the traceback)"),
    (3, "diverged: the loss or the weights became NaN or inf; the last good checkpoint is kept"),
    (130, "interrupted (Ctrl-C); train: the last checkpoint is intact, continue with --resume"),
    (143, "terminated (SIGTERM); train: the last checkpoint is intact, continue with --resume"),
)


def exit_codes_text() -> str:
    """:data:`EXIT_CODES` as the ``--help`` epilog."""
    # Every line indented alike: reStructuredText (the CLI reference) reads it as one definition.
    return "exit codes:\n" + "\n".join(f"  {code:<3}  {what}" for code, what in EXIT_CODES)


class BrelaxError(Exception):
    """Base of every error brelax raises on purpose."""


class InputError(BrelaxError, ValueError):
    """A bad argument, flag value, input file or output location; the message names it (exit 2)."""


class RunLocked(InputError):
    """Another live process holds the lock of a run folder (exit 2)."""


class IntegrityError(InputError):
    """A file's bytes do not match the sha256 recorded when it was written (exit 2)."""


class ResumeMismatch(InputError):
    """``--resume`` cannot continue the recorded run as asked (no checkpoint, or other settings) (exit 2)."""


class MissingDependency(InputError, ImportError):
    """An optional dependency is not installed; the message names the extra to install (exit 2)."""


class Diverged(BrelaxError, FloatingPointError):
    """The loss or the weights became NaN or inf (exit 3)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised in the main thread like Ctrl-C so every interrupt-safe path runs (exit 143).

    A subclass of KeyboardInterrupt (not of :class:`BrelaxError`): code that catches
    ``Exception`` must not swallow it, exactly as with Ctrl-C.
    """


#: Optional dependencies by top-level module name: the extra of brelax that installs each.
EXTRAS = {
    "torch": "torch",
    "safetensors": "torch",
    "sklearn": "digits",
    "matplotlib": "plots",
    "tqdm": "progress",
    "torchao": "peers",
    "hypothesis": "test",
}


def missing_dependency(err: ImportError) -> MissingDependency | None:
    """The :class:`MissingDependency` for an ImportError of an optional dependency, or None (a bug: keep it)."""
    name, seen = None, set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen and name is None:  # a re-raised ImportError keeps the original
        seen.add(id(e))
        found = (getattr(e, "name", None) or "").split(".")[0] if isinstance(e, ImportError) else ""
        name = found if found in EXTRAS else None
        e = e.__cause__ or e.__context__
    if name is None:
        return None
    extra = EXTRAS[name]
    return MissingDependency(
        f"this needs the optional dependency {name!r}, which is not installed; "
        f"install it with: pip install 'brelax[{extra}]'"
    )
