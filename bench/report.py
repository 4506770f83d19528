"""The results file ``latest.json`` and its Markdown table ``latest.md``, written atomically."""

from __future__ import annotations

import json
import os

from brelax._atomic import atomic_write_text

SCHEMA = 1


def _fmt(v: float, unit: str) -> str:
    if unit == "x":
        return f"{v:.3g}x" if v >= 0.01 else f"{v:.2e}x"
    if unit == "steps":
        return f"{int(v)} steps"
    return f"{v:.3g} {unit}"


def markdown(results: dict) -> str:
    """One table per section: measurement, value, baseline, target and whether it is met."""
    meta = results["meta"]
    lines = [
        "# brelax bench" + (" (--quick)" if meta["quick"] else ""),
        "",
        f"{meta['created']} on {meta['machine']}. Every 'x' figure is the median over repeats of "
        "t(subject) / t(baseline), both timed back to back in each repeat.",
        "",
    ]
    for sec in results["sections"].values():
        lines += [f"## {sec['title']}", ""]
        if sec["status"] != "ok":
            lines += [sec["status"], ""]
            continue
        lines += ["| measurement | value | baseline | target | met |", "|---|---|---|---|---|"]
        for r in sec["rows"]:
            target = "" if r["target"] is None else ("<= " + _fmt(r["target"], r["unit"]))
            met = {None: "", True: "yes", False: "**no**"}[r["meets"]]
            lines.append(f"| {r['label']} | {_fmt(r['value'], r['unit'])} | {r['baseline'] or ''} | {target} | {met} |")
        lines.append("")
        lines += [f"- {note}" for note in sec["notes"]]
        if sec["notes"]:
            lines.append("")
    return "\n".join(lines)


def write(results: dict, out: str) -> tuple[str, str]:
    """Write ``latest.json`` and ``latest.md`` into ``out`` (each by temp file + ``os.replace``, fsynced)."""
    os.makedirs(out, exist_ok=True)
    js, md = os.path.join(out, "latest.json"), os.path.join(out, "latest.md")
    atomic_write_text(js, json.dumps(results, indent=1, sort_keys=False) + "\n")
    atomic_write_text(md, markdown(results) + "\n")
    return js, md
