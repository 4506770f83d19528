"""``brelax verify PATH`` and ``proofs_checks.verify_run`` on saved runs; coverage in every report."""

import json

import numpy as np
import pytest

import brelax
from brelax.cli import main as brelax_main
from brelax.problems import least_squares
from proofs_checks import coverage, verify_run
from theory import RESULTS, TRAJECTORY_RESULTS, Result


def test_brelax_run_then_verify_the_saved_trajectory(tmp_path, capsys):
    npz = tmp_path / "run.npz"
    assert (
        brelax_main(["run", "lsq", "--m", "60", "--n", "30", "--steps", "150", "--seed", "3", "--out", str(npz)]) == 0
    )
    capsys.readouterr()
    assert brelax_main(["verify", str(npz), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "rep" / "verify-report.json").read_text())
    assert "reconstruction" in data["disclaimer"] and "reconstruction" in out
    [cov] = data["coverage"]
    assert cov["steps"] == cov["checked_steps"] == 150 and cov["method"] == "binaryrelax"
    # a correct run at the default step 1/L: every step has a descent guarantee, and the record conforms
    assert cov["guarantee_steps"] == cov["conformance_steps"] == 150 and 0 < cov["certified_steps"] <= 150
    names = {r["name"] for r in data["results"]}
    assert names == set(TRAJECTORY_RESULTS)
    assert all(r["details"]["run"] == str(npz) for r in data["results"])
    # without the problem Lemma A cannot recompute grad f: it says so instead of passing
    la = next(r for r in data["results"] if r["name"] == "lemma_a")
    assert la["status"] == "assumption-not-met" and not la["assumptions"]["problem available"]["ok"]
    # constants of the theorems come from the burn-in window, checked after it
    t1 = next(r for r in data["results"] if r["name"] == "theorem1")
    assert t1["details"]["calibration"]["source"].startswith("burn-in window: steps 0..29")
    assert t1["details"]["window"].startswith("steps 30..150")


def test_verify_run_accepts_a_trajectory_and_estimates_L_when_unknown():
    prob = least_squares(40, 20, "binary", seed=1)
    traj = brelax.optimize(prob, steps=80, lr=1 / prob.L, seed=0)
    traj.meta["L"] = None  # as for a network: L unknown
    res = verify_run(traj)
    lb = next(r for r in res if r.name == "lemma_b")
    assert "estimate" in lb.details["L_source"] and "[L estimate]" in lb.method
    assert lb.details["calibration"]["constants"]["L"] == pytest.approx(np.nanmax(traj.L_local[:16]))


def test_a_run_missing_fields_gives_assumption_not_met_naming_them():
    prob = least_squares(40, 20, "binary", seed=1)
    traj = brelax.optimize(prob, steps=40, lr=1 / prob.L, seed=0)
    del traj.arrays["cross"]
    res = verify_run(traj, key="broken")
    assert {r.name for r in res} == set(TRAJECTORY_RESULTS)
    assert all(isinstance(r, Result) and r.details["run"] == "broken" for r in res)
    lb = next(r for r in res if r.name == "lemma_b")
    assert lb.status == "assumption-not-met" and "cross" in lb.details["missing"]
    assert "missing" not in next(r for r in res if r.name == "prox_distance").details  # the others still run
    del traj.arrays["aoc"]
    t1 = next(r for r in verify_run(traj) if r.name == "theorem1")
    assert t1.status == "assumption-not-met" and "aoc" in t1.details["missing"]


def test_a_path_that_is_not_a_run_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert brelax_main(["verify", str(bad), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "not a saved trajectory" in err and len(err.strip().splitlines()) == 1


def test_coverage_counts_only_holding_trajectory_results():
    def r(name, status, cov, run="k"):
        res = Result(name=name, statement="", status=status, details={"run": run}, kind=RESULTS[name].kind)
        res.covered = cov
        return res

    results = [
        r("lemma_b", "holds", [[0, 5], [8, 10]]),
        r("theorem2", "violated", [[0, 10]]),
        r("projection_optimality", "holds", [[0, 10]]),
        r("fact_c", "holds", [[4, 6]]),
        r("lemma_b", "holds", [[0, 10]], run="other"),
    ]
    [c] = coverage.coverage(results, [{"key": "k", "problem": "p", "method": "m", "steps": 10}])
    # conformance (lemma_b, fact_c) never counts as a guarantee; a violated guarantee covers nothing
    assert (c["steps"], c["conformance_steps"], c["guarantee_steps"]) == (10, 8, 0) and c["by"] == {}


def test_momentum_without_the_anchor_step_recorded_claims_nothing():
    """With momentum, y' - y is not -g times the gradient; unless the run records that step as G_t, no claim."""
    prob = least_squares(40, 20, "binary", seed=1)
    traj = brelax.optimize(prob, steps=30, lr=1 / prob.L, seed=0)
    traj.meta.update(plain_sgd=False, momentum=0.9, weight_decay=1e-4)  # G_t recorded is the gradient
    res = {r.name: r for r in verify_run(traj)}
    mono = res["projection_monotonicity"]
    assert mono.status == "assumption-not-met" and "momentum=0.9" in str(mono.assumptions)
    assert all(r.status != "violated" for r in res.values())


@pytest.mark.torch
def test_brelax_train_digits_then_verify_the_run_directory(tmp_path, capsys, torch_one_thread):
    run = tmp_path / "R"
    assert (
        brelax_main(
            [
                "train",
                "--dataset",
                "digits",
                "--model",
                "digits_mlp",
                "--epochs",
                "1",
                "--momentum",
                "0",
                "--wd",
                "0",
                "--noise-every",
                "2",
                "--batch-size",
                "256",
                "--no-eval-train",
                "--limit-test",
                "64",
                "--no-progress",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert brelax_main(["verify", str(run), "--out", str(tmp_path / "rep")]) == 0
    data = json.loads((tmp_path / "rep" / "verify-report.json").read_text())
    [cov] = data["coverage"]
    assert cov["method"] == "binaryrelax" and cov["steps"] >= 4
    # plain SGD: monotonicity (conformance) holds on every step; only step 0 has a same-batch record (the
    # default --check-every 25), and it falls in the burn-in of L_B: checked, no guarantee
    assert cov["conformance_steps"] >= 0.95 * cov["steps"]
    assert cov["checked_steps"] == 1 and cov["guarantee_steps"] == 0
    assert data["summary"]["counts"]["violated"] == 0
    assert {r["name"] for r in data["results"]} == set(TRAJECTORY_RESULTS)
    # the training-curves figure reads the same step log
    from figures import cifar_curves

    assert cifar_curves.main(["--metrics", str(run / "metrics.jsonl"), "--out", str(tmp_path / "fig")]) == 0
    st = json.loads((tmp_path / "fig" / "cifar_curves.json").read_text())["steplog"]
    assert st["steps"] == cov["steps"] and st["conformance_steps"] == cov["conformance_steps"] and st["epochs"] == [1]


def test_a_check_on_an_estimated_L_reports_the_estimate_not_a_violation():
    from proofs_checks.common import L_ESTIMATE, as_estimate
    from theory.result import make_result

    bad = make_result("flip_descent", "s", {}, 1.0, 0.0, method="binaryrelax", details={"failing_steps": 3})
    bad.covered = [[0, 5]]
    as_estimate(bad, 0.25, "the burn-in steps 0..9")
    assert bad.status == "assumption-not-met" and not bad.assumptions[L_ESTIMATE]["ok"] and bad.covered == []
    assert "3 step(s)" in bad.assumptions[L_ESTIMATE]["detail"] and bad.method == "binaryrelax [L estimate]"
    good = as_estimate(make_result("flip_descent", "s", {}, 0.0, 1.0), 0.25, "x")
    assert good.status == "holds" and good.assumptions[L_ESTIMATE]["ok"]


def test_prox_distance_without_the_layout_of_a_per_row_run_is_not_met():
    from brelax.problems import digits_logistic

    prob = digits_logistic(seed=0)
    traj = brelax.optimize(prob, steps=6, lr=1 / prob.L, seed=0, record_every=2)
    pd = next(r for r in verify_run(traj) if r.name == "prox_distance")
    assert pd.status == "assumption-not-met"
    assert not pd.assumptions["scale blocks known (the problem's layout, or one scale for the whole vector)"]["ok"]
