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


def test_non_editable_install_is_a_working_package(tmp_path):
    """``pip install .`` (not -e) ships every package the CLI needs, THEORY.md included."""
    import os
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(root),
        ],
        check=True,
        capture_output=True,
    )
    assert (target / "theory" / "THEORY.md").is_file()
    env = dict(os.environ, PYTHONPATH=str(target))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "brelax",
            "verify",
            "--quick",
            "--only",
            "projection_optimality",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "out" / "verify-report.json").is_file()
    where = subprocess.run(
        [sys.executable, "-c", "import brelax, proofs_checks; print(brelax.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(target))
