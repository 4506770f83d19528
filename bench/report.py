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


def _load(meta: dict) -> str:
    start, end = meta.get("load_average"), meta.get("load_average_end")
    if not start:
        return ""
    txt = f"Load average (1, 5, 15 min) at the start {', '.join(f'{v:.2f}' for v in start)}"
    if end:
        txt += f", at the end {', '.join(f'{v:.2f}' for v in end)}"
    return txt + (
        ": the box was loaded (other jobs shared its cores), which is why every ratio is interleaved."
        if max(start[0], (end or start)[0]) >= 1.0
        else "."
    )


def _spread(r: dict) -> str:
    """``min-max (n rounds)`` of an interleaved ratio, empty for other rows."""
    if r.get("min") is None or r.get("max") is None:
        return ""
    return f"{_fmt(r['min'], r['unit'])}-{_fmt(r['max'], r['unit'])} ({r.get('repeats', '?')})"


def markdown(results: dict) -> str:
    """One table per section: measurement, median, min-max over rounds, baseline, target and whether it is met."""
    meta = results["meta"]
    threads = meta.get("threads")
    lines = [
        "# brelax bench" + (" (--quick)" if meta["quick"] else ""),
        "",
        f"{meta['created']} on {meta['machine']}"
        + (f", {threads} torch thread(s) (--threads)" if threads is not None else "")
        + ". Every 'x' figure is the median over rounds of t(subject) / t(baseline), the two timed back to "
        "back in each round after a warm-up round (bench.timing.interleaved); 'min-max (rounds)' is the "
        "spread of the per-round ratios.",
        "",
    ]
    load = _load(meta)
    if load:
        lines += [load, ""]
    for sec in results["sections"].values():
        lines += [f"## {sec['title']}", ""]
        if sec["status"] != "ok":
            lines += [sec["status"], ""]
            continue
        lines += [
            "| measurement | value | min-max (rounds) | baseline | target | met |",
            "|---|---|---|---|---|---|",
        ]
        for r in sec["rows"]:
            target = "" if r["target"] is None else ("<= " + _fmt(r["target"], r["unit"]))
            met = {None: "", True: "yes", False: "**no**"}[r["meets"]]
            why = f" {r['why']}" if r.get("why") and r["meets"] is False else ""
            lines.append(
                f"| {r['label']} | {_fmt(r['value'], r['unit'])} | {_spread(r)} | {r['baseline'] or ''} "
                f"| {target} | {met}{why} |"
            )
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
