"""A local MathJax for the site, so that the math renders with no network (issue 22).

Sphinx's ``sphinx.ext.mathjax`` loads MathJax from a CDN by default: offline, behind a
firewall or on a cluster node every formula then shows as raw LaTeX. This extension copies
the parts of a MathJax 2 installation the pages need (about 1.5 MB: the loader, the
``TeX-AMS_CHTML`` combined configuration, the TeX input, the CommonHTML output and its
web fonts) into the site's ``_static/mathjax/`` and points ``mathjax_path`` at it.

Where MathJax is looked for, first hit wins:

1. ``$BRELAX_MATHJAX_DIR``;
2. ``/usr/share/javascript/mathjax`` (Debian's ``libjs-mathjax``: ``apt-get install libjs-mathjax``,
   which ``.ci/run`` does).

With neither, the build keeps the CDN and prints a notice (not a warning: ``-W`` would turn it
into a failure on a machine that only lacks the package); the browser test
(``tests/test_docs_browser.py``) then fails, because the page shows raw ``\\(``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

#: The combined configuration: TeX with the AMS extensions in, CommonHTML out (MathJax 2.7).
CONFIG = "TeX-AMS_CHTML"
#: What the CommonHTML pages load, relative to the MathJax root; everything else (54 MB in Debian) is left out.
PARTS = (
    "MathJax.js",
    f"config/{CONFIG}.js",
    "extensions",
    "jax/input/TeX",
    "jax/output/CommonHTML",
    "jax/element",
    "fonts/HTML-CSS/TeX/woff",
)
SYSTEM_DIRS = ("/usr/share/javascript/mathjax",)
#: Where the copy goes (under the build directory, so a fresh clone starts without it).
STATIC_SUBDIR = "mathjax-static"


def find_mathjax() -> Path | None:
    """The root of a MathJax 2 installation (the folder holding ``MathJax.js``), or None."""
    candidates = [os.environ.get("BRELAX_MATHJAX_DIR", "")] + list(SYSTEM_DIRS)
    for c in candidates:
        if c and (Path(c) / "MathJax.js").is_file() and (Path(c) / "config" / f"{CONFIG}.js").is_file():
            return Path(c)
    return None


def copy_mathjax(root: Path, dest: Path) -> None:
    """Copy :data:`PARTS` of the MathJax at ``root`` into ``dest/mathjax`` (symlinks resolved)."""
    target = dest / "mathjax"
    for part in PARTS:
        src, dst = root / part, target / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def _config_inited(app, config) -> None:
    root = find_mathjax()
    if root is None:
        print(
            "NOTICE (docs/_ext/offline_mathjax.py): no local MathJax found (apt-get install libjs-mathjax, "
            "or set BRELAX_MATHJAX_DIR); the pages load MathJax from the CDN and show raw LaTeX offline.",
            file=sys.stderr,
        )
        return
    dest = Path(app.outdir).parent / STATIC_SUBDIR
    copy_mathjax(root, dest)
    config.html_static_path = [*config.html_static_path, str(dest)]
    # Relative to _static/; MathJax 2 reads its configuration from the query string.
    config.mathjax_path = f"mathjax/MathJax.js?config={CONFIG}"
    # Sphinx writes inline math as \( \) and display math as \[ \] inside elements of class "math";
    # MyST marks the rest of a Markdown page "tex2jax_ignore mathjax_ignore", so that a literal $ or \(
    # in the prose stays text. Its own setting of these classes is for MathJax 3 (myst_update_mathjax).
    config.myst_update_mathjax = False
    config.mathjax2_config = {
        "tex2jax": {
            "inlineMath": [["\\(", "\\)"]],
            "displayMath": [["\\[", "\\]"]],
            "processEscapes": False,
            "processEnvironments": True,
            "processClass": "tex2jax_process|mathjax_process|math|output_area",
            "ignoreClass": "tex2jax_ignore|mathjax_ignore",
        },
        "CommonHTML": {"linebreaks": {"automatic": True}},
        "showProcessingMessages": False,
        "messageStyle": "none",
        "menuSettings": {"zoom": "None"},
    }


def setup(app):
    app.connect("config-inited", _config_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
