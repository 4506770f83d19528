"""``brelax bench --quick`` runs end to end and writes a well-formed report. No timing asserts."""

from __future__ import annotations

import json
import math
import os
import sys

import pytest

from bench import cli as bench_cli
from bench import report, timing
from brelax.cli import main as brelax_main

ROW_KEYS = {"label", "value", "unit", "baseline", "target", "meets"}
UNITS = {"x", "bytes/entry", "bytes/param", "steps"}


def check_results(results: dict, sections) -> None:
    assert results["meta"]["schema"] == report.SCHEMA
    assert list(results["sections"]) == list(sections)
    for name, sec in results["sections"].items():
        assert {"title", "status", "rows", "notes"} <= set(sec), name
        if sec["status"] != "ok":
            assert sec["status"].startswith("not available: ") and sec["rows"] == [], (name, sec["status"])
            continue
        assert sec["rows"], name
        for r in sec["rows"]:
            assert set(r) >= ROW_KEYS and r["unit"] in UNITS, (name, r)
            assert isinstance(r["value"], float) and math.isfinite(r["value"]), (name, r)
            if r["unit"] == "x":
                assert r["value"] > 0 and isinstance(r["baseline"], str) and r["baseline"], (name, r)
            else:
                assert r["value"] >= 0, (name, r)
            if r["target"] is None:
                assert r["meets"] is None
            else:
                assert r["meets"] is (r["value"] <= r["target"]), (name, r)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert brelax_main(["bench", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_bench_writes_json_and_markdown(quick_run):
    names = sorted(os.listdir(quick_run))
    assert names == ["latest.json", "latest.md"]  # no temp files left behind
    with open(quick_run / "latest.json", encoding="utf-8") as f:
        results = json.load(f)
    assert results["meta"]["quick"] is True and results["meta"]["threads"] == 1  # --threads defaults to 1
    check_results(results, bench_cli.SECTIONS)
    md = (quick_run / "latest.md").read_text(encoding="utf-8")
    assert "1 torch thread(s) (--threads)" in md and "min-max (rounds)" in md
    for sec in results["sections"].values():
        assert f"## {sec['title']}" in md
        for r in sec["rows"]:
            assert r["label"] in md


def test_quick_bench_numpy_sections_always_run(quick_run):
    with open(quick_run / "latest.json", encoding="utf-8") as f:
        results = json.load(f)
    for name in ("ternary_per_tensor", "ternary_per_channel", "level_sets", "memory"):
        assert results["sections"][name]["status"] == "ok"
    errors = [r for r in results["sections"]["level_sets"]["rows"] if "error" in r["label"]]
    assert len(errors) == 3  # exact vs Lloyd's error, one per level set


def test_missing_dependency_is_reported_not_raised(monkeypatch):
    # A None entry in sys.modules makes the import raise ImportError, as if the module were missing.
    monkeypatch.setitem(sys.modules, "brelax.torch.optimizer", None)
    monkeypatch.setitem(sys.modules, "brelax.problems", None)
    results = bench_cli.run(quick=True, only="optimizer_overhead,convergence", log=lambda m: None)
    check_results(results, ["optimizer_overhead", "convergence"])
    for name in ("optimizer_overhead", "convergence"):
        assert results["sections"][name]["status"].startswith("not available: ModuleNotFoundError"), name


def test_only_rejects_unknown_sections():
    with pytest.raises(ValueError, match="unknown section"):
        bench_cli.selected("ternary_per_tensor,warp_drive")
    assert bench_cli.selected("memory, level_sets") == ["memory", "level_sets"]


def test_bad_threads_exits_with_usage_error(tmp_path, capsys):
    assert brelax_main(["bench", "--quick", "--threads", "0", "--out", str(tmp_path)]) == 2
    assert "--threads" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_bad_only_exits_with_usage_error(tmp_path, capsys):
    assert brelax_main(["bench", "--quick", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown section" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_ratio_and_row_helpers():
    r = timing.ratio(lambda: sum(range(2000)), lambda: sum(range(1000)), repeats=5)
    assert r["ratio"] > 0 and r["repeats"] == 5 and r["subject_s"] > 0
    assert 0 < r["min"] <= r["ratio"] <= r["max"]
    calls = []
    times, stats = timing.interleaved(calls.append, ("a", "b"), repeats=5)
    # one warm-up round, then round-robin: a and b alternate, and only the timed rounds are kept
    assert calls == ["a", "b"] * 6 and len(times["a"]) == len(times["b"]) == 5
    assert stats("a", "b")["repeats"] == 5
    assert min(bench_cli.FULL.repeats, bench_cli.FULL.slow_repeats, bench_cli.FULL.model_repeats) >= timing.MIN_ROUNDS
    with pytest.raises(ValueError, match="repeats"):
        timing.ratio(lambda: None, lambda: None, repeats=0)
    with pytest.raises(ValueError, match="finite"):
        timing.row("bad", float("nan"), "x", "base")
    assert timing.row("a", 1.2, "x", "b", target=1.0)["meets"] is False
    assert timing.row("a", 3.0, "steps", None, target=2.0, higher_is_better=True)["meets"] is True


def test_peak_bytes_counts_numpy_temporaries():
    import numpy as np

    assert timing.peak_bytes(lambda: np.ones(1_000_000)) >= 8_000_000


def test_report_write_is_atomic_and_replaces(tmp_path):
    res = {
        "meta": {"schema": report.SCHEMA, "quick": True, "created": "now", "machine": "m"},
        "sections": {"s": timing.section("S", [timing.row("r", 2.0, "x", "b", 3.0)])},
    }
    report.write(res, str(tmp_path))
    res["sections"]["s"]["rows"][0]["value"] = 4.0
    report.write(res, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["latest.json", "latest.md"]
    assert json.loads((tmp_path / "latest.json").read_text())["sections"]["s"]["rows"][0]["value"] == 4.0
    assert "| r | 4x |  | b | <= 3x |" in (tmp_path / "latest.md").read_text()
    row = timing.ratio_row("s", {"ratio": 2.0, "min": 1.5, "max": 3.0, "repeats": 5}, "b", 1.0, why="memory-bound")
    res["sections"]["s"]["rows"] = [row]
    res["meta"].update(threads=1, load_average=[1.5, 1.2, 1.0])
    md = report.markdown(res)
    assert "| s | 2x | 1.5x-3x (5) | b | <= 1x | **no** memory-bound |" in md
    assert "1 torch thread(s)" in md and "the box was loaded" in md


def test_only_merges_into_the_previous_results(tmp_path):
    from bench.cli import merge_into_previous

    prev = {"meta": {"created": "old"}, "sections": {"a": {"status": "ok", "v": 1}, "b": {"status": "ok", "v": 2}}}
    (tmp_path / "latest.json").write_text(json.dumps(prev))
    new = {"meta": {"created": "new"}, "sections": {"b": {"status": "ok", "v": 3}}}
    got = merge_into_previous(new, str(tmp_path / "latest.json"))
    assert got["sections"] == {"a": {"status": "ok", "v": 1}, "b": {"status": "ok", "v": 3}}
    assert got["meta"]["created"] == "old" and got["meta"]["reruns"]["b"]["created"] == "new"
    assert merge_into_previous(new, str(tmp_path / "missing.json")) is new
