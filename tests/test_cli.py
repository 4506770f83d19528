"""``python -m brelax`` and the ``brelax`` console script are one program."""

import subprocess
import sys
from importlib.metadata import entry_points

import brelax.cli


def test_console_script_points_at_the_cli_main():
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "brelax"]
    assert ep.value == "brelax.cli:main"
    assert ep.load() is brelax.cli.main


def test_python_m_brelax_runs_the_same_commands():
    out = subprocess.run([sys.executable, "-m", "brelax", "--help"], capture_output=True, text=True, check=True)
    for name in brelax.cli.COMMANDS:
        assert name in out.stdout
    bad = subprocess.run([sys.executable, "-m", "brelax", "nonsense"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_every_command_module_imports_and_has_the_interface():
    import argparse
    import importlib

    for name, (module, _) in brelax.cli.COMMANDS.items():
        mod = importlib.import_module(module)
        assert callable(mod.main), name
        mod.add_arguments(argparse.ArgumentParser(prog=f"brelax {name}"))
