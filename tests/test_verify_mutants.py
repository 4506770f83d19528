"""``brelax verify --mutants``: every seeded defect is caught, and a non-defect is reported missed."""

import json

from brelax.cli import main as brelax_main
from proofs_checks import mutants


def test_every_defect_is_caught_and_the_command_exits_zero(tmp_path, capsys):
    rc = brelax_main(["verify", "--mutants", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "mutants-report.json").read_text())
    rows = {r["name"]: r for r in report["mutants"]}
    assert (
        set(rows)
        == {m.name for m in mutants.DEFECTS}
        >= {"twn_projection", "gradient_at_y", "L_too_small", "mu_one_step_behind", "stale_quantization", "lr_off_1pct"}
    )
    assert all(r["caught"] and r["violated"] for r in rows.values()), rows
    assert rc == 0 and f"{len(rows)} of {len(rows)} defects caught" in out
    # each is caught by a result that reads the defect, not by accident elsewhere
    assert any(v.startswith("projection_optimality") for v in rows["twn_projection"]["violated"])
    assert any(v.startswith("lemma_a") for v in rows["lr_off_1pct"]["violated"])
    assert any(v.startswith("lemma_b") for v in rows["L_too_small"]["violated"])


def test_a_non_defect_is_reported_missed_and_fails_the_command(monkeypatch, tmp_path, capsys):
    row = mutants.run_one(mutants.CONTROL)
    assert not row["caught"] and row["violated"] == [] and row["rows"] > 0
    monkeypatch.setattr(mutants, "DEFECTS", (mutants.CONTROL,))
    assert brelax_main(["verify", "--mutants", "--out", str(tmp_path)]) == 1
    assert "MISSED: no_defect" in capsys.readouterr().out


def test_a_mutant_leaves_the_method_table_as_it_was():
    from brelax import steps

    before = dict(steps.METHODS)
    mutants.run_one(mutants.DEFECTS[1])
    assert before == steps.METHODS


def test_a_correct_ternary_run_is_not_flagged():
    """The TWN mutant runs a ternary problem: without the defect the same suite must come out clean."""
    from proofs_checks.cli import NEEDS_RUNS

    def build(seed):
        return mutants._suite(mutants._lsq(seed, "ternary"), seed, qset="ternary"), None, sorted(NEEDS_RUNS)

    row = mutants.run_one(mutants.Mutant("ternary_control", "nothing injected, ternary", build))
    assert not row["caught"], row["violated"]
