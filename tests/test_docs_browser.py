"""The built site in a real browser, offline: the theory page's math is typeset by the local MathJax.

Headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it) opens
``docs/_build/html/theory.html`` from disk with every network request refused, lets the page's
scripts run, and dumps the resulting DOM. The test then requires that every math element Sphinx
wrote was replaced by MathJax's output (``MathJax_CHTML`` elements), that no TeX error box is
shown, and that no raw ``\\(`` is left in the visible text: exactly what a reader without a network
saw before issue 22 (the CDN's MathJax never loaded and every line showed LaTeX source).

CI runs ``make docs`` before ``make test``, so the site is there; anywhere else, build it first.
A missing site or browser is a failure with the command that fixes it, never a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "docs" / "_build" / "html"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")

pytestmark = pytest.mark.slow


class _Page(HTMLParser):
    """Counts Sphinx's math elements, MathJax's output and error elements, and keeps the visible text."""

    def __init__(self):
        super().__init__()
        self.math = 0  # <span class="math ..."> and <div class="math ...">, as Sphinx wrote them
        self.typeset = 0  # MathJax 2 CommonHTML output: one "MathJax_CHTML" element per formula
        self.errors = 0  # TeX that MathJax could not parse
        self.text: list[str] = []
        self._hidden = 0  # depth inside <script>/<style>: MathJax keeps the TeX source in script tags

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if tag in ("script", "style"):
            self._hidden += 1
        if "math" in classes and tag in ("span", "div"):
            self.math += 1
        if "MathJax_CHTML" in classes:
            self.typeset += 1
        if "mjx-merror" in classes or "MathJax_Error" in classes:
            self.errors += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no headless Chromium found (apt-get install -y chromium); tests/test_docs_browser.py needs one")


def _rendered(page: Path) -> str:
    """The DOM of ``page`` after its scripts ran, with the network shut off."""
    cmd = [
        _browser(),
        "--headless",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        # Offline: no name resolves and every connection goes to a closed port, so only file:// loads.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        # Virtual time: the page's timers (MathJax typesets in chunks) run without waiting in real time.
        "--virtual-time-budget=60000",
        "--dump-dom",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and proc.stdout.strip(), f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def theory_page() -> _Page:
    page = SITE / "theory.html"
    if not page.is_file():
        pytest.fail(f"{page} is missing: build the site first with `make docs` (CI runs it before `make test`)")
    parsed = _Page()
    parsed.feed(_rendered(page))
    return parsed


def test_the_theory_page_uses_the_local_mathjax():
    page = SITE / "theory.html"
    if not page.is_file():
        pytest.fail(f"{page} is missing: build the site first with `make docs`")
    html = page.read_text(encoding="utf-8")
    assert 'src="_static/mathjax/MathJax.js?config=TeX-AMS_CHTML"' in html, (
        "theory.html loads MathJax from elsewhere (the CDN?): install libjs-mathjax and rebuild"
    )
    assert (SITE / "_static" / "mathjax" / "MathJax.js").is_file()
    assert "cdn.jsdelivr.net" not in html


def test_every_formula_on_the_theory_page_is_typeset_offline(theory_page):
    # THEORY.md has hundreds of formulas; a page where MathJax never ran has math elements and no output.
    assert theory_page.math > 300
    assert theory_page.typeset >= theory_page.math, (
        f"{theory_page.typeset} formulas typeset of {theory_page.math}: MathJax did not load or did not finish"
    )
    assert theory_page.errors == 0


def test_no_raw_latex_is_left_in_the_text(theory_page):
    text = "".join(theory_page.text)
    assert "Lemma B" in text  # the page itself was read, not an error page
    for raw in ("\\(", "\\)", "\\[", "\\langle", "\\mathbb"):
        assert raw not in text, f"raw LaTeX {raw!r} in the rendered text: {text[max(0, text.find(raw) - 80) :][:200]!r}"


@pytest.mark.parametrize(
    "name", ["getting_started.html", "tutorials_gen/01_projection.html", "tutorials_gen/02_least_squares.html"]
)
def test_the_other_pages_with_math_are_typeset_too(name):
    page = SITE / name
    if not page.is_file():
        pytest.fail(f"{page} is missing: build the site first with `make docs`")
    parsed = _Page()
    parsed.feed(_rendered(page))
    assert parsed.math > 0, f"{name} has no math: the page list here is out of date"
    assert parsed.typeset >= parsed.math and parsed.errors == 0
    assert "\\(" not in "".join(parsed.text)
