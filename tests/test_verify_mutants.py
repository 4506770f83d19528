"""``brelax verify --mutants``: every seeded defect is caught, a non-defect is reported missed, and correct
code (including steps outside the descent hypotheses, where gd diverges) raises no false alarm."""

import json

import pytest

from brelax.cli import main as brelax_main
from proofs_checks import mutants
from proofs_checks import suite as S

NEW_DEFECTS = {
    "lr_schedule_one_late",
    "phase2_one_early",
    "momentum_leak",
    "float32_step",
    "grad_bias_step",
    "grad_bias_recorded",
}


def _first_results(row):
    return {v.split(" (")[0] for v in row["violated"]}


@pytest.mark.slow
def test_every_defect_is_caught_and_the_command_exits_zero(tmp_path, capsys):
    rc = brelax_main(["verify", "--mutants", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "mutants-report.json").read_text())
    rows = {r["name"]: r for r in report["mutants"]}
    assert (
        set(rows)
        == {m.name for m in mutants.DEFECTS}
        >= {"twn_projection", "gradient_at_y", "L_too_small", "mu_one_step_behind", "stale_quantization", "lr_off_1pct"}
        | NEW_DEFECTS
    )
    assert all(r["caught"] and r["violated"] for r in rows.values()), rows
    assert rc == 0 and f"{len(rows)} of {len(rows)} defects caught" in out
    # the correct-code controls ran in the same command, with no false alarm
    assert "false alarms: 0" in out
    assert report["false_alarms"] == 0
    assert {c["name"] for c in report["controls"]} == {c.name for c in mutants.CONTROLS} >= {"lr_2.5/L", "lr_3/L"}
    assert all(c["rows"] > 0 and c["false_alarms"] == 0 for c in report["controls"])
    # each is caught by a result that reads the defect, not by accident elsewhere
    assert any(v.startswith("projection_optimality") for v in rows["twn_projection"]["violated"])
    assert any(v.startswith("lemma_a") for v in rows["lr_off_1pct"]["violated"])
    assert any(v.startswith("lemma_b") for v in rows["L_too_small"]["violated"])


def test_a_non_defect_is_reported_missed_and_fails_the_command(monkeypatch, tmp_path, capsys):
    row = mutants.run_one(mutants.CONTROL)
    assert not row["caught"] and row["violated"] == [] and row["rows"] > 0
    monkeypatch.setattr(mutants, "DEFECTS", (mutants.CONTROL,))
    monkeypatch.setattr(mutants, "CONTROLS", (mutants.CONTROL,))
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


@pytest.mark.parametrize("name", sorted(NEW_DEFECTS))
def test_each_new_defect_is_caught_by_a_result_that_reads_it(name):
    row = mutants.run_one(next(m for m in mutants.DEFECTS if m.name == name))
    assert row["caught"], row
    first = _first_results(row)
    if name == "grad_bias_recorded":
        # the recorded gradient agrees with the step, so the recomputed-gradient identity is blind to it;
        # only the recorded flip cost with the problem's exact curvature (E_t <= Ehat_t) sees it
        assert "lemma_a" not in first and "flip_descent" in first, row
    else:
        assert "lemma_a" in first, row  # the step identity, with g_t, mu_(t+1) and grad f(x_t) as recorded


def test_an_lr_applied_one_step_late_is_invisible_at_a_constant_step():
    """Why the suite has schedule runs: the same defect on constant-step runs changes nothing."""
    late = mutants.run_one(mutants.Mutant("late", "", lambda seed: mutants._lr_late(seed, specs=(S.BR, S.BC))))
    assert not late["caught"] and late["rows"] > 0
    on_schedules = mutants.run_one(mutants.Mutant("late", "", mutants._lr_late))
    assert on_schedules["caught"]


@pytest.mark.slow
def test_the_controls_are_correct_code_with_no_false_alarm():
    rows = {r["name"]: r for r in mutants.run_controls()}
    assert set(rows) == {c.name for c in mutants.CONTROLS}
    for r in rows.values():
        assert r["false_alarms"] == 0 and r["violated"] == [], r
    # the large-step controls are checked by the descent results, not only by a projector check
    assert rows["lr_3/L"]["rows"] >= 20 and rows["lr_2.5/L"]["rows"] >= 20
    assert mutants.false_alarms(rows.values()) == 0


def test_gd_at_three_over_L_really_diverges_in_its_control():
    suite, _, _ = mutants._large_lr(3.0)(0)
    pspec = suite.problems[0]
    traj = suite.run(pspec, S.GD)
    assert traj.f[-1] > 1e100 * traj.f[0]


def test_a_false_alarm_fails_the_command(monkeypatch, tmp_path, capsys):
    """A control that comes out violated (here: a defect posing as correct code) is counted and fails --mutants."""
    defect = mutants.DEFECTS[1]
    monkeypatch.setattr(mutants, "DEFECTS", (defect,))
    monkeypatch.setattr(mutants, "CONTROLS", (mutants.CONTROL, defect))
    rc = brelax_main(["verify", "--mutants", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "mutants-report.json").read_text())
    assert rc == 1 and report["caught"] == 1 and report["false_alarms"] > 0
    assert f"false alarms: {report['false_alarms']} (on gradient_at_y)" in out


def test_a_diverging_gd_run_verifies_with_exit_0_and_no_guarantee(tmp_path, capsys):
    """gd at 2.5/L: f grows to ~1e140; verify must not call it covered, name g*L, and raise no alarm."""
    from brelax.problems import least_squares

    lr = 2.5 / least_squares(100, 50, "binary", seed=0).L
    path = tmp_path / "gd.npz"
    run = ["run", "lsq", "--method", "gd", "--steps", "400", "--lr", repr(lr), "--out", str(path)]
    assert brelax_main(run) == 0
    capsys.readouterr()
    rc = brelax_main(["verify", str(path), "--out", str(tmp_path / "v"), "--no-progress"])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "v" / "verify-report.json").read_text())
    assert rc == 0 and "0 violated" in out
    (cov,) = report["coverage"]
    assert cov["checked_steps"] == 400 and cov["guarantee_steps"] == 0 and cov["certified_steps"] == 0
    assert "step size g*L = 2.5 >= 2 on steps 0-399: no descent guarantee" in out
    assert "guarantee on 0 of 400 checked steps (0.000)" in out


@pytest.mark.parametrize("name", ["hb_momentum_0.95", "hb_weight_decay"])
def test_a_heavy_ball_run_recorded_with_other_settings_is_caught_by_heavy_ball(name):
    row = mutants.run_one(next(m for m in mutants.DEFECTS if m.name == name))
    assert row["caught"] and _first_results(row) == {"heavy_ball"}, row


@pytest.mark.parametrize("name", ["hb_g=0.5/L", "hb_g=4/L"])
def test_correct_heavy_ball_outside_kappa_positive_raises_no_false_alarm(name):
    row = mutants.run_one(next(m for m in mutants.CONTROLS if m.name == name))
    assert row["rows"] == 2 and not row["violated"], row
