"""The ``brelax`` command line; ``python -m brelax`` is the same program.

Each subcommand lives in its own module exposing ``add_arguments(parser)``
and ``main(args) -> int``; modules are imported only when their command runs,
so ``brelax project`` never imports torch or matplotlib. ``verify``,
``figures`` and ``bench`` live in the top-level packages that depend on
brelax (never the other way round at import time): the CLI is the one place
that ties the layers together.
"""

from __future__ import annotations

import argparse
import importlib
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


def build_parser(argv) -> tuple[argparse.ArgumentParser, object]:
    parser = argparse.ArgumentParser(prog="brelax", description=__doc__.splitlines()[0])
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
    return parser, module


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, module = build_parser(argv)
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help()
        return 0 if not argv else 2
    return int(module.main(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
