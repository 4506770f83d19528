"""The verify report: a terminal table, ``verify-report.md`` and ``verify-report.json`` (atomic writes)."""

from __future__ import annotations

import json
import math
import os

from brelax._atomic import atomic_write_text
from theory import KINDS, RESULTS, proof_of, summarize

from . import coverage as _coverage

COLUMNS = ("name", "statement", "problem", "method", "measured", "bound", "ratio", "status", "proof")
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
        "proof": 5,
    }
    widths.setdefault("bound", 10)
    widths["bound"] = max(widths["bound"], 16)
    head = "  ".join(c.ljust(widths[c]) for c in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in results:
        cells = [r.name, r.statement, r.problem, r.method, fmt(r.measured), fmt_bound(r), fmt(r.ratio), r.status]
        cells.append(_label_proof(r.name)[1])
        lines.append("  ".join(_cut(str(c), widths[k]).ljust(widths[k]) for c, k in zip(cells, COLUMNS, strict=True)))
    return "\n".join(lines)


KIND_TITLES = {
    "conformance": "Conformance: the record agrees with the algorithm (catches bugs; never counts as convergence)",
    "guarantee": "Guarantees: descent and rate results, where every hypothesis holds",
    "projector": "Projector and prox checks (no trajectory)",
}
STATUS_COLUMNS = (
    ("holds", "holds"),
    ("violated", "violated"),
    ("assumption-not-met", "not-met"),
    ("aoc-exceeded-calibration", "aoc>cal"),
)


def _names(results) -> list:
    names = []
    for r in results:
        if r.name not in names:
            names.append(r.name)
    return names


def _label_proof(name) -> tuple:
    cls = RESULTS.get(name)
    label = getattr(cls, "label", "") if cls is not None else ""
    return label, (proof_of(label) if label else "hand")


def summary_table(results) -> str:
    """Per class of result, one line per result: THEORY.md label, proof (coq/hand) and counts by status."""
    head = f"{'result':24s} {'label':17s} {'proof':5s} {'rows':>4s} " + " ".join(f"{h:>8s}" for _, h in STATUS_COLUMNS)
    lines = []
    for kind in KINDS:
        names = [n for n in _names(results) if getattr(RESULTS.get(n), "kind", "conformance") == kind]
        if not names:
            continue
        lines += ["", KIND_TITLES[kind] + ":", head, "-" * len(head)]
        for n in names:
            rs = [r for r in results if r.name == n]
            label, proof = _label_proof(n)
            counts = " ".join(f"{sum(r.status == st for r in rs):8d}" for st, _ in STATUS_COLUMNS)
            lines.append(f"{n:24s} {label:17s} {proof:5s} {len(rs):4d} {counts}")
    return "\n".join(lines[1:])


def not_met_table(results) -> str:
    """The assumption-not-met rows grouped by the assumption that failed, with counts (most frequent first)."""
    counts, example = {}, {}
    for r in results:
        if r.status not in ("assumption-not-met", "aoc-exceeded-calibration"):
            continue
        for k in r.failed_assumptions:
            counts[k] = counts.get(k, 0) + 1
            example.setdefault(k, f"{r.name}: {r.assumptions[k]['detail']}")
    if not counts:
        return "(no result had an assumption not met)"
    lines = [f"{'rows':>4s}  assumption not met (an example)", "-" * 100]
    for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"{n:4d}  {k}  [{_cut(example[k], 110)}]")
    return "\n".join(lines)


#: At most this many "no descent guarantee" lines on stdout (all of them are in the reports).
MAX_NO_GUARANTEE_LINES = 40


def stdout_summary(results, summary: dict, cov) -> str:
    """What ``brelax verify`` prints: counts per class, coverage per run, where and why no guarantee, totals."""
    c = summary["counts"]
    ng = _coverage.no_guarantee_lines(cov)
    shown = ng[:MAX_NO_GUARANTEE_LINES]
    if len(ng) > len(shown):
        shown.append(f"... {len(ng) - len(shown)} more in verify-report.md")
    lines = [
        summary_table(results),
        "",
        "Coverage per run (steps; fractions of the checked steps):",
        _coverage.table(cov),
        "",
        "Steps without a guarantee, and the hypothesis that failed there:",
        *(shown or ["(none)"]),
        "",
        "Assumption-not-met rows by assumption:",
        not_met_table(results),
        "",
        _coverage.short(cov),
        "",
        DISCLAIMER,
        "",
        f"{c['holds']} hold, {c['violated']} violated, {c['assumption-not-met']} assumption-not-met, "
        f"{c.get('aoc-exceeded-calibration', 0)} AOC exceeded calibration "
        f"({summary['distinct_results']} distinct results, {summary.get('elapsed_s', 0):.1f} s).",
    ]
    return "\n".join(lines)


def markdown(results, summary: dict, cov=None) -> str:
    s = summary
    cnt = s["counts"]
    out = [
        "# brelax verify report",
        "",
        DISCLAIMER,
        "",
        f"**{cnt['holds']} hold, {cnt['violated']} violated, {cnt['assumption-not-met']} with an assumption not met, "
        f"{cnt.get('aoc-exceeded-calibration', 0)} with the AOC constant above its calibration** "
        f"({s['total']} checks of {s['distinct_results']} distinct results; seed {s.get('seed')}, "
        f"{'quick' if s.get('quick') else 'full'} run, {s.get('elapsed_s', 0):.1f} s).",
        "",
        "`violated` means every assumption held and the bound failed (a bug); `assumption-not-met` names the "
        "hypothesis that failed, and the theory then claims nothing about the numbers; "
        "`aoc-exceeded-calibration`: the run's AOC constant exceeds the one calibrated on another run "
        "(calibrated constants cannot detect a defect present in both runs).",
        "",
        "Three classes of result, never mixed: **conformance** (the record agrees with the algorithm: "
        "identities that hold for any correct record; they catch bugs and never count as convergence), "
        "**guarantee** (a descent or rate result applies on the step with every hypothesis holding, a "
        "positive descent coefficient included, and holds) and **certified** (a guarantee whose right-hand "
        "side is at most f(x_t): f provably did not go up on that step).",
        "",
        "## Summary",
        "",
        "```",
        summary_table(results),
        "```",
        "",
        "## Coverage",
        "",
        _coverage.short(cov or []) + ".",
        "",
        "| problem | method | checked | conformance | guarantee | certified | guarantee by result |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in cov or []:
        by = ", ".join(f"{k} {v}" for k, v in sorted(e["by"].items(), key=lambda kv: -kv[1]))
        n = e["checked_steps"]
        out.append(
            f"| {e['problem']} | {e['method']} | {n} | {e['conformance_steps']} | "
            f"{e['guarantee_steps']} ({e['guarantee_steps'] / n if n else 0:.3f}) | "
            f"{e['certified_steps']} ({e['certified_steps'] / n if n else 0:.3f}) | {by} |"
        )
    out += ["", "### Steps without a guarantee", ""]
    out += [f"- {ln}" for ln in _coverage.no_guarantee_lines(cov or [])] or ["(none)"]
    out += ["", "### Assumption-not-met rows by assumption", "", "```", not_met_table(results), "```", ""]
    for n in _names(results):
        rs = [r for r in results if r.name == n]
        label, proof = _label_proof(n)
        out += [
            f"## `{n}` ({label}, {rs[0].kind or 'conformance'}, proof: {proof})",
            "",
            f"*{rs[0].statement}* (relation: measured {rs[0].relation} bound)",
            "",
            "| problem | method | measured | bound | ratio | status | proof | assumptions not met | window "
            "| constants |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rs:
            failed = "; ".join(f"{k} ({r.assumptions[k]['detail']})" for k in r.failed_assumptions) or ""
            out.append(
                f"| {r.problem} | {r.method} | {fmt(r.measured)} | {fmt_bound(r)} | {fmt(r.ratio)} | "
                f"{r.status} | {proof} | {failed.replace('|', '/')} | {_window_cell(r)} | {_calibration_cell(r)} |"
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
    """The JSON report: the disclaimer, the coverage per trajectory, the summary and every row (with its proof)."""
    rows = []
    for r in results:
        d = r.to_dict()
        d["label"], d["proof"] = _label_proof(r.name)
        rows.append(d)
    return {
        "disclaimer": DISCLAIMER,
        "coverage": list(cov or []),
        "summary": summary,
        "results": rows,
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
