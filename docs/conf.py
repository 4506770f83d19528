"""Sphinx configuration of the brelax documentation (``make docs``; warnings are errors).

Built at every ``make docs``, from a fresh clone:

* the math with a local MathJax (``_ext/offline_mathjax.py``; Debian's ``libjs-mathjax``);
* the tutorials, ``docs/tutorials/*.py`` executed by sphinx-gallery into ``docs/tutorials_gen/``
  (a script whose source is unchanged is not run again);
* the figure gallery, from the ``figures/`` scripts (``_ext/figure_gallery.py``; cached by a hash
  of the sources in ``docs/_build/figures/``);
* the CLI reference from the argparse parsers (sphinx-argparse, :func:`brelax.cli.full_parser`);
* the bibliography, ``docs/refs.bib`` (sphinxcontrib-bibtex);
* the API pages from the docstrings (autosummary into ``docs/api/``).
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version as _version

sys.path.insert(0, os.path.abspath(".."))  # theory, proofs_checks, figures, bench from the checkout
sys.path.insert(0, os.path.abspath("_ext"))

project = "brelax"
author = "the brelax developers"
copyright = "the brelax developers, MIT licence"
release = _version("brelax")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinxarg.ext",
    "sphinxcontrib.bibtex",
    "sphinx_gallery.gen_gallery",
    "offline_mathjax",
    "figure_gallery",
    "exit_codes",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# Quotes and ellipses only: "--flag" must stay two hyphens, not become an en dash.
smartquotes_action = "qe"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "tutorials/GALLERY_HEADER.rst"]

# The API pages are generated from the docstrings (docs/api/ is a build product).
autosummary_generate = True
autosummary_imported_members = False
# ignore-module-all: a module documents what it defines, so a package's re-exports (brelax.prox the function)
# do not collide with the modules of the same name (brelax.prox the module).
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_typehints = "none"  # the numpydoc Parameters sections say the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

# THEORY.md: $...$ and $$...$$ math, amsmath environments, GitHub-style heading anchors.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]  # THEORY.md links source files by relative path; they are not pages

# The bibliography: one file, cited as {cite}`key` in Markdown and :cite:`key` in docstrings.
bibtex_bibfiles = ["refs.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

# The tutorials: executed at build, in file-name order; an example that raises fails the build.
sphinx_gallery_conf = {
    "examples_dirs": "tutorials",
    "gallery_dirs": "tutorials_gen",
    "filename_pattern": r"/\d\d_",
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "write_computation_times": True,
    "capture_repr": ("__repr__",),
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "plot_gallery": "True",
}


def _skip(app, what, name, obj, skip, options):
    """Never import ``__main__`` modules: importing ``brelax.__main__`` runs the CLI."""
    return True if name.rsplit(".", 1)[-1] == "__main__" else None


def setup(app):
    app.connect("autodoc-skip-member", _skip)


html_theme = "furo"
html_title = f"brelax {release}"
# Module pages: the module's own docstring and members (autodoc), then its submodules; no summary tables.
templates_path = ["_templates"]
html_static_path: list[str] = []
