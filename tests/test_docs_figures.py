"""Each figure is written up once, in its script's docstring; the README table and the docs gallery are generated.

``figures.captions`` reads the number and title from the first docstring line (``Figure N: ...``) and
the caption from the rest; ``figures/README.md``'s table and the gallery page
(``docs/_ext/figure_gallery.py``) are made from it. These tests fail when the README table is stale, a
docstring's number disagrees with the registry, or the gallery drops a figure.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import figures
from figures import captions

ROOT = Path(__file__).resolve().parents[1]


def test_every_figure_has_a_numbered_caption_in_registry_order():
    caps = captions.captions()
    assert [c.name for c in caps] == list(figures.FIGURES)
    assert [c.number for c in caps] == list(range(1, len(figures.FIGURES) + 1))
    for c in caps:
        assert c.title and not c.title.startswith("Figure")
        assert len(c.body) > 100, f"{c.name}: the caption (the docstring after its first line) is missing"


def test_the_readme_table_is_generated_from_the_docstrings():
    text = captions.README.read_text(encoding="utf-8")
    start, end = text.index(captions.TABLE_START), text.index(captions.TABLE_END)
    assert text[start + len(captions.TABLE_START) : end].strip() == captions.readme_table(), (
        "figures/README.md's figure table is stale: run `python -m figures.captions`"
    )
    for c in captions.captions():
        assert f"| {c.number} | `{c.name}` |" in text


def test_a_docstring_numbered_out_of_order_is_refused(tmp_path, monkeypatch):
    # A copy of the scripts in which figure 2 calls itself figure 3.
    for name in figures.FIGURES:
        src = (captions.HERE / f"{name}.py").read_text(encoding="utf-8")
        if name == figures.FIGURES[1]:
            src = src.replace("Figure 2:", "Figure 3:", 1)
        (tmp_path / f"{name}.py").write_text(src, encoding="utf-8")
    monkeypatch.setattr(captions, "HERE", tmp_path)
    assert captions.caption(figures.FIGURES[0]).number == 1
    with pytest.raises(ValueError, match="must start with 'Figure 2: '"):
        captions.caption(figures.FIGURES[1])
    with pytest.raises(ValueError, match="not a figure"):
        captions.caption("no_such_figure")


def test_update_readme_rewrites_only_the_table(tmp_path):
    readme = tmp_path / "README.md"
    before, after = "# figures\n\nintro\n\n", "\n\n## What they show\n\nkept as is\n"
    readme.write_text(before + captions.TABLE_START + "\n\n| old | table |\n\n" + captions.TABLE_END + after)
    assert captions.update_readme(readme) is True
    text = readme.read_text()
    assert text.startswith(before) and text.endswith(captions.TABLE_END + after)
    assert "| old | table |" not in text and captions.readme_table() in text
    assert captions.update_readme(readme) is False  # already up to date
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        captions.update_readme(readme)


def test_the_gallery_page_shows_every_figure_with_its_caption():
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        gallery = importlib.import_module("figure_gallery")
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))
    page = gallery.gallery_rst("_build/figures/KEY", quick=False)
    positions = []
    for c in captions.captions():
        heading = f"{c.number}. {c.title}"
        assert heading in page
        assert f".. image:: _build/figures/KEY/{c.name}.png" in page
        assert c.body.splitlines()[0] in page
        positions.append(page.index(heading))
    assert positions == sorted(positions)
    only = gallery.gallery_rst("F", quick=True, only="aoc")
    assert "aoc.png" in only and "objective.png" not in only and "--quick" in only
