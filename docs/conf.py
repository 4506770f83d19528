"""Sphinx configuration of the brelax documentation (``make docs``; warnings are errors)."""

from __future__ import annotations

import os
import sys
from importlib.metadata import version as _version

sys.path.insert(0, os.path.abspath(".."))  # theory, proofs_checks, figures, bench from the checkout

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
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

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
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]  # THEORY.md links source files by relative path; they are not pages


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
