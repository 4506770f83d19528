"""The verifier is verified: fed deliberately wrong parts, ``brelax verify`` must report "violated"."""

import json
import os

import numpy as np

from brelax import heuristics, steps
from brelax.cli import main as brelax_main
from brelax.problems import least_squares
from brelax.prox import relax
from brelax.sets import QuantSet
from proofs_checks import check_lemma_a, check_lemma_b, check_projection, cli
from proofs_checks import suite as S
from theory import STATUSES, estimate_constants


def tiny_suite(problem, specs=(S.BR, S.BR_FIXED, S.BC)):
    p = S.ProblemSpec("tiny-lsq", lambda: problem, "binary", 120, None, specs)
    return S.Suite(quick=True, seed=0, problems=[p])


def grad_at_y_method(problem):
    """BinaryRelax with the classic bug: the gradient taken at y, not at x (where the model is evaluated)."""

    def wrong_update(state, grad, lr, mu_next, project):
        y = state.y - lr * problem.grad(state.y)
        p = project(y)
        return steps.State(relax(y, p, mu_next), y, p)

    return steps.METHODS["binaryrelax"]._replace(update=wrong_update)


def _twn_for_ternary(original):
    def project(self, w, axis=None, group_size=None):
        if self.levels == (0.0, 1.0) and self.scale is None:
            return heuristics.twn(w, axis=axis, group_size=group_size)
        return original(self, w, axis=axis, group_size=group_size)

    return project


def test_twn_in_place_of_the_exact_ternary_projection_is_reported_violated(monkeypatch, tmp_path):
    monkeypatch.setattr(QuantSet, "project", _twn_for_ternary(QuantSet.project))
    rc = brelax_main(["verify", "--quick", "--no-progress", "--only", "projection_optimality", "--out", str(tmp_path)])
    assert rc == 1
    rows = json.loads((tmp_path / "verify-report.json").read_text())["results"]
    status = {r["problem"].split("set ")[-1]: r["status"] for r in rows}
    assert status["ternary"] == "violated" and status["binary"] == "holds"


def test_projection_module_accepts_a_replacement_projector():
    res = check_projection.run(S.Suite(quick=True, problems=[]), projectors={"ternary": heuristics.twn})
    assert {r.problem.split("set ")[-1]: r.status for r in res}["ternary"] == "violated"


def test_gradient_at_y_is_caught_by_lemma_a(monkeypatch):
    prob = least_squares(40, 20, "binary", seed=1)
    monkeypatch.setitem(steps.METHODS, "binaryrelax", grad_at_y_method(prob))
    suite = tiny_suite(prob)
    a = [r for r in check_lemma_a.run(suite) if r.method.startswith("binaryrelax")]
    b = [r for r in check_lemma_b.run(suite) if r.method.startswith("binaryrelax")]
    assert a and all(r.status == "violated" for r in a)
    # Lemma B's slack picks up <grad f(y) - grad f(x), D_t>, negative on this instance.
    assert any(r.status == "violated" for r in b)
    bc = [r for r in check_lemma_a.run(suite) if r.method == "binaryconnect"]
    assert bc[0].status == "holds"  # the untouched method still passes


def test_gradient_at_y_fails_the_whole_verify_run(monkeypatch, tmp_path):
    prob = least_squares(40, 20, "binary", seed=1)
    monkeypatch.setitem(steps.METHODS, "binaryrelax", grad_at_y_method(prob))
    monkeypatch.setattr(S, "default_problems", lambda quick, seed: tiny_suite(prob).problems)
    rc = brelax_main(["verify", "--quick", "--no-progress", "--only", "lemma_a", "--out", str(tmp_path)])
    assert rc == 1
    summary = json.loads((tmp_path / "verify-report.json").read_text())["summary"]
    assert summary["counts"]["violated"] >= 2 and not summary["ok"]


def test_an_L_that_is_too_small_makes_the_lemma_b_slack_negative():
    prob = least_squares(40, 20, "binary", seed=2)
    prob.L = 0.1 * prob.L  # claims a smoother f than it is
    res = check_lemma_b.run(tiny_suite(prob))
    assert all(r.status == "violated" and r.measured < 0 for r in res)


def test_correct_parts_pass_on_the_same_tiny_suite():
    prob = least_squares(40, 20, "binary", seed=2)
    suite = tiny_suite(prob)
    assert all(r.status == "holds" for r in check_lemma_a.run(suite) + check_lemma_b.run(suite))


def test_verify_quick_writes_both_reports_and_exits_zero(tmp_path):
    out = tmp_path / "reports"
    rc = brelax_main(["verify", "--quick", "--no-progress", "--out", str(out)])
    assert rc == 0
    assert sorted(os.listdir(out)) == ["verify-report.json", "verify-report.md"]  # no temp files left
    data = json.loads((out / "verify-report.json").read_text())
    assert set(data) == {"disclaimer", "coverage", "results", "summary"}
    assert "reconstruction" in data["disclaimer"]
    # one coverage entry per checked trajectory, each with the agreed keys
    runs = {r["details"]["run"] for r in data["results"] if "run" in r["details"]}
    assert {f"{c['problem']} | {c['method']}" for c in data["coverage"]} == runs
    for c in data["coverage"]:
        keys = {"checked_steps", "conformance_steps", "guarantee_steps", "certified_steps", "failed_hypotheses"}
        assert {"problem", "method", "steps"} | keys <= set(c)
        assert 0 <= c["certified_steps"] <= c["guarantee_steps"] <= c["checked_steps"] <= c["steps"]
    for r in data["results"]:
        assert {"name", "statement", "problem", "method", "measured", "bound", "status"} <= set(r)
        assert r["status"] in STATUSES
    s = data["summary"]
    assert s["ok"] and s["counts"]["violated"] == 0 and s["distinct_results"] >= 8 and s["quick"]
    kinds = {r["problem"].split("(")[0] for r in data["results"]}
    assert {"lsq", "digits_logistic", "digits_mlp"} <= kinds
    md = (out / "verify-report.md").read_text()
    assert "reconstruction" in md and "## Coverage" in md and "## `flip_descent`" in md
    # Where L is unknown (the MLP) the status says so instead of passing silently.
    mlp_b = [r for r in data["results"] if r["name"] == "lemma_b" and r["problem"].startswith("digits_mlp")]
    assert mlp_b and mlp_b[0]["status"] == "assumption-not-met"
    assert not mlp_b[0]["assumptions"]["L known (exact smoothness constant)"]["ok"]


def test_stdout_is_the_summary_and_the_row_table_only_with_verbose(tmp_path, capsys):
    args = ["verify", "--quick", "--no-progress", "--only", "lemma_b", "--out", str(tmp_path)]
    assert brelax_main(args) == 0
    short = capsys.readouterr().out
    assert "Coverage" in short and "reconstruction" in short and "measured" not in short
    assert brelax_main(args + ["--verbose"]) == 0
    long = capsys.readouterr().out
    assert "measured" in long.splitlines()[0] and len(long.splitlines()) > len(short.splitlines())


def test_theorem_constants_come_from_the_calibration_run_not_the_checked_one():
    from proofs_checks import check_theorem1

    prob = least_squares(40, 20, "binary", seed=2)
    suite = tiny_suite(prob, specs=(S.BR_FIXED,))
    [r] = check_theorem1.run(suite)
    cal = suite.calibration(*suite.all_runs()[0])
    d = r.details["calibration"]["constants"]["d"]
    assert d == r.details["d"] == estimate_constants(cal)["d"]  # fixed mu: the window is the whole run
    assert "seed 1000" in r.details["calibration"]["source"] and r.details["d_source"] == "given"
    assert not np.array_equal(cal.f, suite.run(*suite.all_runs()[0]).f)  # another run, same problem


def test_only_selects_by_name_or_prefix_and_rejects_unknown_names(tmp_path, capsys):
    mods = cli.load_modules()
    picked = cli.select(mods, "theorem,lemma_b")
    assert {n for _, names in picked for n in names} == {"theorem1", "theorem2", "lemma_b"}
    assert brelax_main(["verify", "--only", "no_such_result", "--out", str(tmp_path)]) == 2
    assert "unknown result" in capsys.readouterr().err


def test_same_seed_same_report_different_seed_different_evidence(tmp_path):
    def run(seed, d):
        brelax_main(["verify", "--quick", "--no-progress", "--only", "fact_c", "--seed", str(seed), "--out", str(d)])
        return [
            (r["problem"], r["method"], r["measured"])
            for r in json.loads((d / "verify-report.json").read_text())["results"]
        ]

    a, b, c = run(0, tmp_path / "a"), run(0, tmp_path / "b"), run(1, tmp_path / "c")
    assert a == b and a != c


def test_table_lists_every_column():
    from proofs_checks.report import COLUMNS, table
    from theory.result import make_result

    r = make_result("lemma_b", "s", {}, -1.0, 0.0, relation=">=", problem="p", method="m")
    text = table([r])
    assert all(c in text.splitlines()[0] for c in COLUMNS) and "violated" in text
    assert np.isclose(float(text.splitlines()[2].split()[4]), -1.0)
