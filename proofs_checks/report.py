"""The verify report: a terminal table, ``verify-report.md`` and ``verify-report.json`` (atomic writes)."""

from __future__ import annotations

import json
import math
import os

from brelax._atomic import atomic_write_text
from theory import summarize

from . import coverage as _coverage

COLUMNS = ("name", "statement", "problem", "method", "measured", "bound", "ratio", "status")
DISCLAIMER = (
    "The statements are the brelax project's reconstruction (theory/THEORY.md), made without the "
    'full text of Yin et al. (2018), whose abstract proves convergence "under an approximate '
    'orthogonality condition"; no constant is quoted from the paper.'
)


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.3g}"
    return str(v)


def _cut(s: str, width: int) -> str:
    return s if len(s) <= width else s[: width - 1] + "~"


def fmt_bound(r) -> str:
    """The bound, with the rounding tolerance the comparison allowed (``0 +1e-12``)."""
    b = fmt(r.bound)
    if r.tolerance and r.bound is not None:
        sign = "+" if r.relation == "<=" else "-"
        b += f" {sign}{r.tolerance:.0e}"
    return b


def table(results, widths=None) -> str:
    """A fixed-width text table of the results, one row each."""
    widths = widths or {
        "name": 18,
        "statement": 34,
        "problem": 26,
        "method": 34,
        "measured": 10,
        "bound": 10,
        "ratio": 9,
        "status": 18,
    }
    widths.setdefault("bound", 10)
    widths["bound"] = max(widths["bound"], 16)
    head = "  ".join(c.ljust(widths[c]) for c in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in results:
        cells = [r.name, r.statement, r.problem, r.method, fmt(r.measured), fmt_bound(r), fmt(r.ratio), r.status]
        lines.append("  ".join(_cut(str(c), widths[k]).ljust(widths[k]) for c, k in zip(cells, COLUMNS, strict=True)))
    return "\n".join(lines)


def summary_table(results) -> str:
    """One line per result name: how many rows held, were violated, had an assumption not met."""
    names = []
    for r in results:
        if r.name not in names:
            names.append(r.name)
    lines = [f"{'result':24s} {'rows':>4s} {'holds':>5s} {'violated':>8s} {'not-met':>7s}  statement", "-" * 100]
    for n in names:
        rs = [r for r in results if r.name == n]
        c = {s: sum(r.status == s for r in rs) for s in ("holds", "violated", "assumption-not-met")}
        lines.append(
            f"{n:24s} {len(rs):4d} {c['holds']:5d} {c['violated']:8d} {c['assumption-not-met']:7d}  {rs[0].statement}"
        )
    return "\n".join(lines)


def stdout_summary(results, summary: dict, cov) -> str:
    """What ``brelax verify`` prints: per-result counts, per-run coverage, the disclaimer and the totals."""
    c = summary["counts"]
    lines = [
        summary_table(results),
        "",
        "Coverage (steps on which some trajectory result holds with a finite bound):",
        _coverage.table(cov),
        "",
        _coverage.short(cov),
        "",
        DISCLAIMER,
        "",
        f"{c['holds']} hold, {c['violated']} violated, {c['assumption-not-met']} assumption-not-met "
        f"({summary['distinct_results']} distinct results, {summary.get('elapsed_s', 0):.1f} s).",
    ]
    return "\n".join(lines)


def markdown(results, summary: dict, cov=None) -> str:
    s = summary
    out = [
        "# brelax verify report",
        "",
        DISCLAIMER,
        "",
        f"**{s['counts']['holds']} hold, {s['counts']['violated']} violated, "
        f"{s['counts']['assumption-not-met']} with an assumption not met** "
        f"({s['total']} checks of {s['distinct_results']} distinct results; seed {s.get('seed')}, "
        f"{'quick' if s.get('quick') else 'full'} run, {s.get('elapsed_s', 0):.1f} s).",
        "",
        "`violated` means every assumption held and the bound failed (a bug); `assumption-not-met` names the "
        "hypothesis that failed, and the theory then claims nothing about the numbers.",
        "",
        "## Summary",
        "",
        "```",
        summary_table(results),
        "```",
        "",
        "## Coverage",
        "",
        "A step of a trajectory is covered when some trajectory result with status `holds` lists it in "
        "`covered` (its assumptions held there and its per-step inequality held with a finite bound). "
        + _coverage.short(cov or [])
        + ".",
        "",
        "| problem | method | steps | covered | fraction | by result |",
        "|---|---|---|---|---|---|",
    ]
    for e in cov or []:
        by = ", ".join(f"{k} {v}" for k, v in sorted(e["by"].items(), key=lambda kv: -kv[1]))
        out.append(
            f"| {e['problem']} | {e['method']} | {e['steps']} | {e['covered_steps']} | {e['fraction']:.3f} | {by} |"
        )
    out.append("")
    names = []
    for r in results:
        if r.name not in names:
            names.append(r.name)
    for n in names:
        rs = [r for r in results if r.name == n]
        out += [
            f"## `{n}`",
            "",
            f"*{rs[0].statement}* (relation: measured {rs[0].relation} bound)",
            "",
            "| problem | method | measured | bound | ratio | status | assumptions not met | window | constants |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rs:
            failed = "; ".join(f"{k} ({r.assumptions[k]['detail']})" for k in r.failed_assumptions) or ""
            out.append(
                f"| {r.problem} | {r.method} | {fmt(r.measured)} | {fmt_bound(r)} | {fmt(r.ratio)} | "
                f"{r.status} | {failed.replace('|', '/')} | {_window_cell(r)} | {_calibration_cell(r)} |"
            )
        out.append("")
    return "\n".join(out) + "\n"


def _window_cell(r) -> str:
    w = r.details.get("window")
    return "" if w is None else str(w).replace("|", "/")


def _calibration_cell(r) -> str:
    c = r.details.get("calibration")
    if not c:
        return ""
    vals = ", ".join(f"{k} = {fmt(v)}" for k, v in (c.get("constants") or {}).items())
    return f"{vals} ({c.get('source', '')})".replace("|", "/")


def payload(results, summary: dict, cov=None) -> dict:
    """The JSON report: the disclaimer, the coverage per trajectory, the summary and every row."""
    return {
        "disclaimer": DISCLAIMER,
        "coverage": list(cov or []),
        "summary": summary,
        "results": [r.to_dict() for r in results],
    }


def atomic_write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    atomic_write_text(path, text)


def write_reports(results, summary: dict, out_dir: str, coverage=None) -> tuple:
    """Write ``verify-report.md`` and ``verify-report.json`` into ``out_dir`` (atomically); returns both paths."""
    md = os.path.join(out_dir, "verify-report.md")
    js = os.path.join(out_dir, "verify-report.json")
    atomic_write(md, markdown(results, summary, coverage))
    atomic_write(js, json.dumps(payload(results, summary, coverage), indent=1, allow_nan=False) + "\n")
    return md, js


def make_summary(results, **extra) -> dict:
    s = summarize(results)
    s.update(extra)
    return s
