"""The built site has what issue 22 asked for: getting started, executed tutorials, the CLI reference for
every subcommand, the generated gallery and the bibliography.

The site tests read ``docs/_build/html`` (CI runs ``make docs`` before ``make test``); a missing site
fails with the command that builds it. The source tests need no site.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from brelax.cli import COMMANDS, full_parser
from figures import FIGURES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SITE = DOCS / "_build" / "html"
TUTORIALS = ("01_projection", "02_least_squares", "03_torch_run", "04_peers", "05_theorem_check")
BIB_KEYS = (
    "yin2018binaryrelax",
    "courbariaux2015binaryconnect",
    "bai2019proxquant",
    "jin2025parq",
    "goujaud2024pepit",
    "li2016ternary",
    "ochs2014ipiano",
)


def _page(name: str) -> str:
    path = SITE / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: build the site first with `make docs` (CI runs it before `make test`)")
    return path.read_text(encoding="utf-8")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in full_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.torch  # full_parser imports every command's module, brelax train's (torch) included
def test_full_parser_has_every_subcommand_with_its_flags():
    subs = _subparsers()
    assert list(subs) == list(COMMANDS)
    assert "--out" in subs["verify"]._option_string_actions
    assert "--epochs" in subs["train"]._option_string_actions


def test_getting_started_says_where_every_command_writes():
    text = (DOCS / "getting_started.md").read_text(encoding="utf-8")
    table = text[text.index("(getting-started-outputs)=") :]
    for name in COMMANDS:
        assert f"| `brelax {name}" in table, f"getting_started.md: no row for `brelax {name}` in the output table"
    for heading in ("## Install", "## The two commands", "## Exit codes", "make verify", "make test"):
        assert heading in text
    for word in ("conformance", "guarantee", "certified", "assumption-not-met", "violated"):
        assert word in text


def test_the_bibliography_has_every_entry_and_is_cited():
    bib = (DOCS / "refs.bib").read_text(encoding="utf-8")
    assert sorted(re.findall(r"@\w+\{(\w+),", bib)) == sorted(BIB_KEYS)
    theory = (ROOT / "theory" / "THEORY.md").read_text(encoding="utf-8")
    assert "{cite}`yin2018binaryrelax`" in theory
    assert "{cite}`ochs2014ipiano`" in theory  # Theorem II.12's step condition is the classical heavy-ball one


@pytest.mark.slow
def test_the_cli_reference_documents_every_flag_of_every_subcommand():
    html = _page("cli.html")
    for name, parser in _subparsers().items():
        assert f"brelax {name}" in html, f"cli.html: no section for brelax {name}"
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in html, f"cli.html: brelax {name} {flag} is missing"


@pytest.mark.slow
def test_the_gallery_shows_every_figure_made_by_the_build():
    html = _page("gallery.html")
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    assert [Path(src).name for src in images] == [f"{name}.png" for name in FIGURES]
    for src in images:
        assert (SITE / src).is_file(), f"gallery.html shows {src}, which the build did not write"
    for number in range(1, len(FIGURES) + 1):
        assert f"{number}. " in html


@pytest.mark.slow
def test_the_tutorials_were_executed():
    index = _page("tutorials_gen/index.html")
    for name in TUTORIALS:
        assert f"{name}.html" in index
        html = _page(f"tutorials_gen/{name}.html")
        # sphinx-gallery writes a script's printed output into "sphx-glr-script-out" blocks.
        assert "sphx-glr-script-out" in html, f"{name}: no captured output, the script was not run"
    # The tutorials' own prints (verify's wording belongs to verify): a run, and a defect caught.
    assert "recovered the planted signs: True" in _page("tutorials_gen/02_least_squares.html")
    assert "seeded defect: violated" in _page("tutorials_gen/05_theorem_check.html")
    for name in TUTORIALS[:4]:  # the ones that plot
        assert re.search(r'<img[^>]+src="[^"]*sphx_glr_' + name, _page(f"tutorials_gen/{name}.html"))


@pytest.mark.slow
def test_citations_resolve_to_the_bibliography():
    bib = _page("bibliography.html")
    for title in ("BinaryRelax", "BinaryConnect", "ProxQuant", "PARQ", "PEPit", "Ternary Weight Networks"):
        assert title.lower() in bib.lower()
    theory = _page("theory.html")
    assert re.search(r'href="bibliography.html#[^"]+"', theory), "theory.html cites nothing in the bibliography"
    assert "{cite}" not in theory
    start = _page("getting_started.html")
    assert "exit-codes" in start and "143" in start
