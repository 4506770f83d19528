"""Issue 17: a verdict that tells a diverging run from a converging one.

Correct code outside a theorem's hypotheses (a step size with g L > 2) must come out "no guarantee",
never "violated"; conformance identities never count as guarantees; the f tolerance is local to the
step; the recorded flip cost is exact on least squares; every THEORY.md result is wired in.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import brelax
from brelax import problems as P
from proofs_checks import coverage
from theory import (
    RESULTS,
    WIRED_ELSEWHERE,
    FlipDescent,
    PLRate,
    ProjectionMonotonicity,
    ProxStepDescent,
    descent_terms,
    pl_constant,
)
from theory.context import Context

THEORY = Path(__file__).resolve().parents[1] / "theory" / "THEORY.md"
STEP = "step size g*L < 2 (positive descent coefficient)"


@pytest.fixture(scope="module")
def lsq():
    return P.least_squares(100, 50, "binary", seed=0)


def run(prob, method, scale, steps=400, **kw):
    if method == "binaryrelax":
        kw.setdefault("phase2_start", int(0.8 * steps))
    return brelax.optimize(prob, qset="binary", steps=steps, lr=scale / prob.L, method=method, seed=0, **kw)


def checks(prob, traj):
    return [FlipDescent().check(traj), PLRate().check(traj, m_pl=pl_constant(prob.A))]


@pytest.mark.parametrize("method", ["gd", "binaryrelax", "binaryconnect"])
@pytest.mark.parametrize("scale", [2.5, 3.0])
def test_correct_runs_outside_the_step_size_hypothesis_get_no_guarantee_and_no_violation(lsq, method, scale):
    traj = run(lsq, method, scale)
    for r in checks(lsq, traj):
        assert r.status != "violated", (r.name, r.details.get("first_failing_t"))
        assert r.covered == [] and r.certified == []
    fd = FlipDescent().check(traj)
    failed = fd.details["failed_per_step"]
    assert STEP in failed and failed[STEP]["steps"] == [[0, 400]], failed
    assert f"g*L = {scale:.3g}" in failed[STEP]["detail"]


def test_the_diverging_gd_run_is_named_not_covered(lsq):
    traj = run(lsq, "gd", 2.5)
    assert traj.f[-1] > 1e100 * traj.f[0]  # the run really diverges
    results = checks(lsq, traj) + [ProjectionMonotonicity().check(traj)]
    for r in results:
        r.details["run"] = "k"
    [c] = coverage.coverage(results, [{"key": "k", "problem": "lsq", "method": "gd", "steps": 400}])
    assert (c["checked_steps"], c["guarantee_steps"], c["certified_steps"]) == (400, 0, 0)
    assert c["conformance_steps"] == 400  # the record conforms: conformance is no evidence of convergence
    assert c["failed_hypotheses"][STEP] == 400
    lines = coverage.no_guarantee_lines([c])
    assert any("step size g*L = 2.5 >= 2 on steps 0-399: no descent guarantee" in ln for ln in lines), lines


def test_a_converging_run_is_guaranteed_and_mostly_certified(lsq):
    traj = run(lsq, "binaryrelax", 1.0)
    fd, pl = checks(lsq, traj)
    assert fd.status == pl.status == "holds"
    assert fd.details["guarantee_steps"] == 400 and fd.details["certified_steps"] > 100
    assert pl.details["guarantee_steps"] == 319  # c_t = 0 once mu' = 1 (step 319 on): checked, not a rate guarantee


def test_pl_rate_counterexample_needs_c_nonnegative():
    """THEORY.md II.8: gd with g = 3 on f = (x1^2 + 0.01 x2^2)/2 from (1, 1): e_1 = 2.005 > (1 - 2 m c) e_0."""
    prob = P.LeastSquares(np.diag([1.0, 0.1]), np.zeros(2))
    traj = brelax.optimize(prob, qset="binary", steps=1, lr=3.0, method="gd", y0=np.ones(2), seed=0)
    assert traj.f[1] == pytest.approx(2.0047045) and traj.f[0] == pytest.approx(0.505)
    m = pl_constant(prob.A)
    c = 3.0 * (1 - 3.0 / 2)
    assert traj.f[1] > (1 - 2 * m * c) * traj.f[0]  # the uncorrected statement fails here
    r = PLRate().check(traj, m_pl=m)
    assert r.status == "assumption-not-met" and r.covered == []


def test_conformance_holds_on_any_record_but_a_noise_objective_violates_the_guarantee(lsq):
    traj = run(lsq, "binaryrelax", 1.0)
    rng = np.random.default_rng(0)
    traj.arrays["f"] = traj.f + rng.standard_normal(traj.f.shape)  # f replaced by noise
    assert ProjectionMonotonicity().check(traj).status == "holds"  # an identity of the record, f-free
    assert FlipDescent().check(traj).status == "violated"


def test_the_f_tolerance_is_local_a_tampered_early_step_of_a_diverging_run_is_caught(lsq):
    traj = run(lsq, "gd", 2.5)
    traj.arrays["f"] = traj.f.copy()
    traj.arrays["f"][101] *= 1.01  # 1% up at step 100 -> 101 (f ~ 1e35), while f reaches 1e140 later
    r = FlipDescent().check(traj)
    assert r.status == "violated" and r.details["first_failing_t"] == 100


def test_the_recorded_flip_cost_is_exact_on_least_squares_and_tighter_than_the_a_priori_one():
    prob = P.least_squares(30, 50, "binary", noise=0.1, seed=0)
    traj = run(prob, "binaryrelax", 1.0)
    tm = descent_terms(Context(traj), prob.L)
    flips = traj.flips > 0
    assert flips.sum() > 20
    E, Eh, Eb = tm["E"][flips], tm["Ehat"][flips], tm["Ebar"][flips]
    scale = np.abs(traj.f[:-1][flips]) + np.abs(E)
    assert np.all(np.abs(Eh - E) <= 1e-9 * scale)
    assert np.all(Eh <= Eb + 1e-12 * scale) and np.median(Eb[E > 0] / E[E > 0]) > 3
    d = FlipDescent().check(traj).details
    assert d["tightness_Ehat_median"] == pytest.approx(1.0, abs=1e-6) and d["tightness_Ebar_median"] > 3


def test_a_flip_step_that_raises_f_by_the_initial_gap_is_caught():
    """Before Ehat, raising f(x_{t+1}) by the whole initial gap at one flip step left flip_descent holding."""
    prob = P.least_squares(30, 50, "binary", noise=0.1, seed=0)
    traj = run(prob, "binaryrelax", 1.0)
    t = int(np.flatnonzero(traj.flips > 0)[-1])
    traj.arrays["f"] = traj.f.copy()
    traj.arrays["f"][t + 1] += traj.f[0] - prob.f_lower
    r = FlipDescent().check(traj)
    assert r.status == "violated" and r.details["first_failing_t"] == t


def test_pgd_gets_a_guarantee_only_below_gL_1(lsq):
    half = brelax.optimize(lsq, qset="binary", steps=100, lr=0.5 / lsq.L, method="pgd", seed=0)
    full = brelax.optimize(lsq, qset="binary", steps=100, lr=1.0 / lsq.L, method="pgd", seed=0)
    a, b = ProxStepDescent().check(half), ProxStepDescent().check(full)
    assert a.status == b.status == "holds"
    assert a.details["guarantee_steps"] == 100 and b.details["guarantee_steps"] == 0
    assert b.conforming == [[0, 100]]  # (i) holds on every step: conformance, not descent


def _labels(text):
    pattern = r"^\*\*((?:Theorem|Lemma|Proposition|Corollary) (?:II\.\d+|\d+\.\d+|\d+|[A-Z]))\b"
    return set(re.findall(pattern, text, re.M))


def test_every_result_of_theory_md_is_wired_in():
    text = THEORY.read_text(encoding="utf-8")
    labels = _labels(text) | {"Lemma A", "Lemma B"}
    checked = {cls.label for cls in RESULTS.values()}
    assert checked <= labels | {"Lemma A", "Lemma B"}, checked - labels
    missing = labels - checked - set(WIRED_ELSEWHERE)
    assert not missing, f"THEORY.md results with no check and no entry in theory.WIRED_ELSEWHERE: {missing}"
    assert set(WIRED_ELSEWHERE) <= labels


def test_each_result_has_a_kind_and_the_classes_are_disjoint():
    kinds = {n: c.kind for n, c in RESULTS.items()}
    assert set(kinds.values()) == {"conformance", "guarantee", "projector"}
    # the identities the issue names never count as convergence
    for n in ("projection_monotonicity", "lemma_a", "fact_c", "prox_distance", "aoc_flip_bound"):
        assert kinds[n] == "conformance"
    for n in ("flip_descent", "pl_rate", "prox_step_descent", "stationarity_rate", "theorem1"):
        assert kinds[n] == "guarantee"


def test_pl_statement_carries_the_c_nonnegative_hypothesis():
    text = THEORY.read_text(encoding="utf-8")
    stmt = text[text.index("**Theorem II.8") : text.index("*Proof.*", text.index("**Theorem II.8"))]
    assert "c_t \\ge 0" in stmt
    assert "c_t >= 0" in PLRate.statement


def test_a_gradient_biased_in_the_step_and_the_record_is_caught_on_a_run_without_flips(lsq):
    """gd never flips, so only the majorant on the actual step (exact for least squares) can see this bias."""

    class Biased(P.LeastSquares):
        def grad(self, x, idx=None):
            return 1.005 * super().grad(x, idx)

    prob = Biased(lsq.A, lsq.b)
    traj = brelax.optimize(prob, qset="binary", steps=50, lr=1.0 / prob.L, method="gd", seed=0)
    r = FlipDescent().check(traj)
    assert r.status == "violated" and r.details["majorant_on_step_failing"] > 40
    assert FlipDescent().check(run(lsq, "gd", 1.0, steps=50)).details["majorant_on_step_failing"] == 0
