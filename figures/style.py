"""One style for every figure, and the atomic writers every figure script uses.

Everything here is deliberately small: a figure script computes its data,
calls :func:`new_figure`, draws, and hands the figure and its data to
:func:`save_figure` / :func:`save_csv` / :func:`save_json`. Files appear
complete or not at all (temp file in the same directory, then ``os.replace``),
so an interrupted run never leaves a half-written PNG behind.

Matplotlib runs on the Agg backend (no display needed); PDFs and PNGs carry
no creation date, so the same seed writes the same bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os

import matplotlib

matplotlib.use("Agg")  # headless and deterministic; set before pyplot is imported

import matplotlib.pyplot as plt
import matplotlib.ticker

from brelax._atomic import atomic_write as _atomic_write

#: Figure size in inches and PNG resolution: readable when shown ~640 px wide in a README.
FIGSIZE = (6.4, 4.0)
DPI = 120
README_DPI = 100

#: One colour per method, the same in every figure.
METHOD_COLORS = {
    "gd": "#7f7f7f",
    "binaryconnect": "#1f77b4",
    "pgd": "#2ca02c",
    "proxquant": "#9467bd",
    "binaryrelax": "#d62728",
}
METHOD_LABELS = {
    "gd": "GD (float)",
    "binaryconnect": "BinaryConnect",
    "pgd": "projected GD",
    "proxquant": "ProxQuant",
    "binaryrelax": "BinaryRelax",
}
#: A colour cycle for everything that is not a method (schedules, lam values, layers).
CYCLE = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

RC = {
    "figure.figsize": FIGSIZE,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=CYCLE),
    "pdf.fonttype": 42,
    "svg.hashsalt": "brelax",
}


def use() -> None:
    """Apply the project rcParams globally (done on import: figure scripts own their process)."""
    matplotlib.rcParams.update(RC)


use()


def new_figure(nrows: int = 1, ncols: int = 1, figsize=None, **kw):
    """A figure with the project style; returns ``(fig, axes)`` like ``plt.subplots``."""
    use()
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or FIGSIZE, layout="constrained", **kw)
    return fig, axes


def legend_below(fig, ax, ncol: int = 3, **kw):
    """One legend under the axes, outside them (so it never hides a curve)."""
    handles, labels = ax.get_legend_handles_labels()
    return fig.legend(handles, labels, loc="outside lower center", ncol=ncol, **kw)


def symlog_y(ax, linthresh: float, every: int = 2) -> None:
    """A symlog y axis with ticks at 0 and ``±10^k`` for every ``every``-th decade (uncluttered).

    Call after the data are drawn (the ticks follow the current limits).
    """
    ax.set_yscale("symlog", linthresh=linthresh)
    lo, hi = ax.get_ylim()
    k0 = math.ceil(math.log10(linthresh))
    ticks = [0.0]
    for sign, lim in ((1.0, hi), (-1.0, -lo)):
        if lim <= linthresh:
            continue
        k1 = math.floor(math.log10(lim))
        ks = list(range(k1, k0 - 1, -every))
        ticks += [sign * 10.0**k for k in ks]
    ax.set_yticks(sorted(ticks))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_pow10_label))
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_ylim(lo, hi)


def _pow10_label(v, _pos=None) -> str:
    if v == 0:
        return "0"
    k = round(math.log10(abs(v)))
    return ("-" if v < 0 else "") + f"$10^{{{k}}}$"


def method_style(method: str) -> dict:
    """Colour and label of a method (unknown names get the default cycle)."""
    out = {"label": METHOD_LABELS.get(method, method)}
    if method in METHOD_COLORS:
        out["color"] = METHOD_COLORS[method]
    return out


# -- atomic writers ---------------------------------------------------------------------------


def atomic_write(path: str, write) -> str:
    """Call ``write(fh)`` on a temp file beside ``path`` (binary mode), then rename it onto ``path``."""
    return _atomic_write(path, write)


#: Set by :func:`readme_copies`: ``(directory, names)`` of the figures that also get a README PNG.
_README = None
README_MAX_BYTES = 200_000


@contextlib.contextmanager
def readme_copies(directory: str, names):
    """While active, :func:`save_figure` also writes ``directory/NAME.png`` for NAME in ``names``.

    The copy is rendered at :data:`README_DPI` and reduced to a 256-colour palette
    (lossless for these line plots to the eye, and 3-5x smaller), so it stays
    under :data:`README_MAX_BYTES`.
    """
    global _README
    old, _README = _README, (directory, frozenset(names))
    try:
        yield
    finally:
        _README = old


def _readme_png(fig, path: str) -> str:
    from PIL import Image  # a matplotlib dependency

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=README_DPI, metadata={"Software": "brelax figures"})
    buf.seek(0)
    img = Image.open(buf).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=0)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if len(data) > README_MAX_BYTES:
        raise ValueError(f"README copy {path} would be {len(data)} bytes, over {README_MAX_BYTES}")
    return atomic_write(path, lambda fh: fh.write(data))


def save_figure(fig, out: str, name: str, dpi: int = DPI, formats=("png", "pdf")) -> list:
    """Write ``out/name.png`` and ``out/name.pdf`` atomically, close the figure; returns the paths.

    Inside :func:`readme_copies` a README PNG of the chosen figures is written as well.
    """
    paths = []
    for ext in formats:
        meta = {"Software": "brelax figures"} if ext == "png" else {"Creator": "brelax figures", "CreationDate": None}

        def write(fh, ext=ext, meta=meta):
            fig.savefig(fh, format=ext, dpi=dpi, metadata=meta)

        paths.append(atomic_write(os.path.join(out, f"{name}.{ext}"), write))
    if _README is not None and name in _README[1]:
        paths.append(_readme_png(fig, os.path.join(_README[0], f"{name}.png")))
    plt.close(fig)
    return paths


def save_csv(out: str, name: str, header, rows) -> str:
    """Write ``out/name.csv`` (header row, then one row per record) atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(header))
    for r in rows:
        w.writerow([_cell(v) for v in r])
    data = buf.getvalue().encode()
    return atomic_write(os.path.join(out, f"{name}.csv"), lambda fh: fh.write(data))


def save_json(out: str, name: str, obj) -> str:
    """Write ``out/name.json`` atomically; NaN/inf become null (strict JSON)."""
    data = json.dumps(_finite(obj), indent=1).encode()
    return atomic_write(os.path.join(out, f"{name}.json"), lambda fh: fh.write(data + b"\n"))


def read_csv(path) -> list:
    """Rows of a CSV written by :func:`save_csv` as dicts of strings (for tests and reuse)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _cell(v):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    return v


def _finite(o):
    if isinstance(o, dict):
        return {str(k): _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if hasattr(o, "tolist") and not isinstance(o, (str, bytes)):
        return _finite(o.tolist())
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


# -- command line shared by every script ----------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--out", required=True, help="directory for NAME.png, NAME.pdf and the data file")
    parser.add_argument("--quick", action="store_true", help="fewer steps/seeds (same files; for tests)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    return parser


def single_thread_blas():
    """A context with BLAS/OpenMP limited to one thread (``threadpoolctl``; a no-op without it).

    The figures' problems are small: a multi-threaded BLAS only adds overhead
    (up to 30x slower on a loaded 2-core machine), and one thread also keeps
    floating-point reductions in one order, so a seed gives the same bytes.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the env defaults of figures/__init__ apply
        return contextlib.nullcontext()
    return threadpool_limits(1)


def figure_maker(compute, plot, name: str, header=None):
    """The ``make(out, quick, seed)`` of a figure: ``compute``, ``plot``, then save the figure and its data.

    The data go to ``NAME.json``, or to ``NAME.csv`` when a CSV ``header`` is given
    (``compute`` then returns the rows).
    """

    def make(out: str, quick: bool = False, seed: int = 0) -> list:
        data = compute(quick, seed)
        saved = save_json(out, name, data) if header is None else save_csv(out, name, header, data)
        return save_figure(plot(data), out, name) + [saved]

    return make


def script_main(make, description: str, argv=None, extra=None) -> int:
    """The ``python -m figures.NAME`` entry point: parse, call ``make(out, quick, seed)``, list the files."""
    parser = add_common_arguments(argparse.ArgumentParser(description=description))
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    kwargs = {k: v for k, v in vars(args).items() if k not in ("out", "quick", "seed")}
    with single_thread_blas():
        paths = make(args.out, quick=args.quick, seed=args.seed, **kwargs)
    for p in paths:
        print(p)
    return 0
