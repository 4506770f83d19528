"""theory/: every result on hand-built evidence (good and deliberately broken) and on small real runs."""

import json
import math
import types

import numpy as np
import pytest

import brelax
import theory
from brelax import heuristics
from brelax.problems import least_squares
from theory import brute
from theory.lemmas import LemmaB
from theory.result import Result, make_result, summarize
from theory.theorems import Theorem1Sum, Theorem2, best_eps, flip_constant


class Fake:
    """A trajectory made by hand: only the documented attributes."""

    def __init__(
        self,
        f,
        mu,
        lr,
        step_norm2,
        aoc,
        flips,
        cross=None,
        r_norm=None,
        scale_min=None,
        L_local=None,
        dist_x=None,
        dist_y=None,
        **meta,
    ):
        T = len(step_norm2)
        self.f, self.mu, self.lr = (np.asarray(v, float) for v in (f, mu, lr))
        self.step_norm2, self.aoc = np.asarray(step_norm2, float), np.asarray(aoc, float)
        self.inner = np.nan_to_num(self.aoc) * self.step_norm2
        self.cross = np.zeros(T) if cross is None else np.asarray(cross, float)
        self.flips = np.asarray(flips)
        self.r_norm = np.ones(T + 1) if r_norm is None else np.asarray(r_norm, float)
        self.scale_min = np.ones(T + 1) if scale_min is None else np.asarray(scale_min, float)
        self.L_local = np.ones(T) if L_local is None else np.asarray(L_local, float)
        self.dist_y = np.ones(T + 1) if dist_y is None else np.asarray(dist_y, float)
        self.dist_x = (1 - self.mu) * self.dist_y if dist_x is None else np.asarray(dist_x, float)
        self.meta = {
            "method": "binaryrelax",
            "qset": "binary",
            "batch_size": None,
            "L": 1.0,
            "f_lower": 0.0,
            "problem": {"name": "fake"},
        }
        self.meta.update(meta)


def descending(T=4, mu=1.0, lr=0.1, aoc=0.0, nd=1.0, L=1.0):
    """A trajectory consistent with Lemma B as an equality at every step."""
    c = (1 - lr * L / 2 - mu * aoc) / lr
    f = 100.0 - c * nd * np.arange(T + 1)
    return Fake(f, [mu] * (T + 1), [lr] * (T + 1), [nd] * T, [aoc] * T, [0] * T, L=L)


@pytest.fixture(scope="module")
def lsq_run():
    prob = least_squares(60, 30, "binary", noise=0.05, seed=3)
    tr = brelax.optimize(
        prob,
        "binaryrelax",
        "binary",
        steps=200,
        lr=0.5 / prob.L,
        lam0=0.2,
        rho=1.03,
        phase2_start=150,
        record_every=1,
        seed=3,
    )
    return prob, tr


# --- Result and its JSON ------------------------------------------------------------------------


def test_result_json_round_trip_and_non_finite_values():
    r = make_result(
        "x", "s", {"a": {"ok": True, "detail": ""}}, 1.0, math.inf, details={"v": np.float64(np.nan), "w": np.arange(2)}
    )
    d = json.loads(r.to_json())
    assert d["bound"] == "inf" and d["details"]["v"] is None and d["details"]["w"] == [0, 1]
    assert d["status"] == "holds" and d["ratio"] is None
    back = Result.from_dict(d)
    assert back.bound == math.inf and back.status == "holds"


def test_status_logic_failed_assumption_wins_and_missing_bound_is_not_a_pass():
    bad = {"h": {"ok": False, "detail": "no"}}
    assert make_result("x", "s", bad, 2.0, 1.0).status == "assumption-not-met"
    assert make_result("x", "s", {}, 2.0, 1.0).status == "violated"
    r = make_result("x", "s", {}, 2.0, None)
    assert r.status == "assumption-not-met" and "bound computable" in r.failed_assumptions
    s = summarize([r, make_result("y", "s", {}, 2.0, 1.0)])
    assert s["counts"]["violated"] == 1 and not s["ok"] and s["distinct_results"] == 2


# --- projections, F1, prox ------------------------------------------------------------------------


@pytest.mark.parametrize("qset", ["binary", "ternary", "uniform:3", "levels:1,3", "levels:0,1,3,7", "ternary@0.5"])
def test_exact_projection_holds(qset):
    r = theory.ProjectionOptimality().check(qset=qset, trials=12)
    assert r.status == "holds", r.details


def _lloyd_ternary(y):
    return heuristics.lloyd(y, "ternary")


@pytest.mark.parametrize("wrong", [heuristics.twn, heuristics.ternary_divide_by_n, _lloyd_ternary])
def test_heuristic_in_place_of_exact_ternary_is_violated(wrong):
    r = theory.ProjectionOptimality().check(projector=wrong, qset="ternary")
    assert r.status == "violated" and r.measured > 1e-6


def test_infeasible_projector_is_violated():
    r = theory.ProjectionOptimality().check(projector=lambda y: 0.999 * y, qset="binary", trials=5)
    assert r.status == "violated" and r.details["infeasible_outputs"] > 0


def test_brute_force_agrees_with_an_explicit_enumeration():
    y = np.array([0.3, -1.2, 0.7])
    qs = np.array(np.meshgrid(*[[-1, 0, 1]] * 3)).T.reshape(-1, 3)
    a = np.linspace(0, 2, 20001)
    best = min(float(np.min(np.sum((y[None] - a[:, None] * q[None]) ** 2, axis=1))) for q in qs)
    assert abs(brute.distance2(y[None], (-1.0, 0.0, 1.0))[0] - best) < 1e-7


def test_cone_orthogonality_holds_and_catches_wrong_scale_and_fixed_scale():
    assert theory.ConeOrthogonality().check(qset="uniform:3", group_size=16).status == "holds"
    r = theory.ConeOrthogonality().check(projector=heuristics.ternary_divide_by_n, qset="ternary")
    assert r.status == "violated"
    assert theory.ConeOrthogonality().check(qset="binary@1").status == "assumption-not-met"


@pytest.mark.parametrize("qset,lam", [("binary", 0.5), ("ternary", 3.0), ("levels:1,3", 1.0)])
def test_prox_lemma_holds(qset, lam):
    assert theory.ProxLemma().check(qset=qset, lam=lam, trials=8).status == "holds"


def test_prox_lemma_with_twn_and_a_wrong_envelope_are_violated():
    assert theory.ProxLemma().check(projector=heuristics.twn, qset="ternary", trials=8).status == "violated"
    assert theory.MoreauEnvelope().check(qset="binary").status == "holds"

    def wrong(w, Q, lam):  # the indicator's envelope, not the penalty's
        return lam / 2 * Q.distance(w) ** 2

    assert theory.MoreauEnvelope().check(envelope=wrong, qset="binary").status == "violated"


# --- hand-built trajectories ----------------------------------------------------------------------


def test_consistent_fake_passes_every_trajectory_theorem():
    tr = descending()
    for name in ("lemma_b", "theorem1", "fact_c", "corollary3"):
        assert theory.RESULTS[name]().check(tr, d=0.0).status == "holds", name
    r = theory.Theorem1().check(tr, d=0.0)
    assert r.covered == [[0, 4]] and r.details["rate_measured"] == pytest.approx(4.0)


def test_theorem1_without_d_is_not_a_pass_and_d_is_never_fitted():
    tr = descending()
    r = theory.Theorem1().check(tr)
    assert r.status == "assumption-not-met" and r.covered == []
    assert any(n.startswith("constant d given") for n in r.failed_assumptions)
    assert r.details["d_measured"] == 0.0  # measured, reported, not used


def test_lemma_b_flags_a_too_small_L_and_an_inconsistent_descent():
    tr = descending(L=1.0)
    assert theory.LemmaB().check(tr, L=1.0).status == "holds"
    assert theory.LemmaB().check(tr, L=0.5).status == "violated"
    tr.f[2] += 1.0  # f went up: no L-smooth f does that along this step
    assert theory.LemmaB().check(tr).status == "violated"
    r = theory.Theorem1().check(tr, d=0.0)
    assert r.status == "violated" and r.details["descent_fails"] == 1 and r.covered == []


def test_theorem1_reports_c_not_positive_by_name():
    tr = descending(mu=1.0, lr=0.1, aoc=0.99)  # c = (1 - 0.05 - 0.99)/0.1 < 0
    r = theory.Theorem1Sum().check(tr, d=0.99)
    assert r.status == "assumption-not-met"
    assert r.failed_assumptions == ["c = (1 - gL/2 - mu d)/g > 0"]


def test_theorem1_bound_value_and_a_wrong_f_lower_and_an_explicit_d():
    tr = descending(T=5, mu=0.5, lr=0.2, aoc=-0.4, nd=0.5)
    c = (1 - 0.1 + 0.2) / 0.2
    r = theory.Theorem1Sum().check(tr, d=-0.4)
    assert r.status == "holds" and r.bound == pytest.approx(100.0 / c) and r.measured == pytest.approx(2.5)
    assert "f_* known and f(x_t) >= f_*" in theory.Theorem1Sum().check(tr, d=-0.4, f_lower=99.0).failed_assumptions
    r = theory.Theorem1Sum().check(tr, d=-0.5)  # claims more orthogonality than was measured
    assert r.failed_assumptions == ["AOC(d) on every step t >= t0"]


def test_theorem1_window_is_the_last_constant_mu_stretch():
    tr = descending(T=6)
    tr.mu[:3] = [0.2, 0.4, 0.6]
    r = theory.Theorem1Sum().check(tr, d=0.0)
    assert r.details["t0"] == 3 and r.status == "holds" and r.covered == [[3, 6]]
    assert theory.Theorem1Sum().check(tr, d=0.0, t0=0).failed_assumptions == ["mu fixed on t >= t0"]


def test_fact_c_flags_a_positive_delta_on_a_stable_step_but_not_on_a_flip():
    tr = descending(T=4, aoc=0.0)
    tr.aoc[1] = 0.3
    tr.flips[1] = 2
    assert theory.FactC().check(tr).status == "holds"
    tr.flips[1] = 0
    r = theory.FactC().check(tr)
    assert r.status == "violated" and r.measured == pytest.approx(0.3)


def test_fact_c_lower_bound_minus_one_over_one_minus_mu():
    tr = descending(T=3, mu=0.5, aoc=-1.0)
    assert theory.FactC().check(tr).status == "holds"
    tr.aoc[0] = -2.5  # below -1/(1 - 0.5) = -2
    assert theory.FactC().check(tr).status == "violated"


def test_unknown_L_is_an_estimate_and_stochastic_gradients_are_not_covered():
    tr = descending()
    tr.meta["L"] = None
    r = theory.LemmaB().check(tr)
    assert "L known (exact smoothness constant)" in r.failed_assumptions
    assert r.details["L_source"].startswith("estimate")
    tr = descending()
    tr.meta["batch_size"] = 8
    assert "deterministic gradients" in theory.Theorem1Sum().check(tr).failed_assumptions
    assert theory.FactC().check(tr).status == "holds"  # Fact C holds for any G


def test_unresolved_steps_are_left_out_of_delta_statistics():
    tr = descending(T=4)
    tr.step_norm2[3], tr.aoc[3] = 1e-40, 0.9  # rounding noise at a converged step
    r = theory.FactC().check(tr)
    assert r.status == "holds" and r.details["unresolved_steps"] == 1


def test_corollary3_counts_flips_against_the_bound():
    tr = descending(T=4, nd=1.0)
    tr.flips[:] = [0, 1, 0, 0]
    r = theory.Corollary3().check(tr, d=0.0)
    assert r.status == "holds" and r.bound == pytest.approx(theory.Theorem1().check(tr, d=0.0).bound / 4.0)
    tr.flips[:] = 10**6
    tr.aoc[:] = np.nan_to_num(tr.aoc)
    assert theory.Corollary3().check(tr, d=0.0).status == "violated"
    tr.meta["qset"] = "levels:1,3"
    assert (
        "a flip moves x by a known amount (binary; ternary with mu = 1)"
        in theory.Corollary3().check(tr, d=0.0).failed_assumptions
    )


def test_flip_constant_cases():
    assert flip_constant("binary", 0.5, 1.0)[0] == pytest.approx(1.0)
    assert flip_constant("levels:3", 1.0, 1.0)[0] == pytest.approx(36.0)
    assert flip_constant("ternary", 1.0, 1.0)[0] == 1.0
    assert flip_constant("ternary", 0.9, 1.0)[0] is None
    assert flip_constant("uniform:3", 1.0, 1.0)[0] is None


def test_theorem2_bound_formula_reduces_to_theorem1_and_eps_is_optimal():
    b1 = Theorem1Sum().bound(L=2.0, f_lower=0.0, lr=0.1, delta=0.3, mu=1.0, f_t0=5.0)
    b2 = Theorem2().bound(L=2.0, f_lower=0.0, lr=0.1, R=1.0, eps=0.0, f_t0=5.0, sum_dmu2=0.0, kappa=0.3)
    assert b1 == pytest.approx(b2)
    F, A, a = 3.0, 0.7, 0.6
    e = best_eps(F, A, a)
    grid = np.linspace(1e-4, a - 1e-4, 20001)
    assert (F + A / e) / (a - e) <= np.min((F + A / grid) / (a - grid)) + 1e-9
    # The original brief's form with d < 0 would credit -d; the proved one uses kappa = max(mu d) <= max(d, 0).
    assert Theorem2().bound(
        L=2.0, f_lower=0.0, lr=0.1, R=1.0, eps=0.1, f_t0=5.0, sum_dmu2=0.1, delta=-0.5
    ) == Theorem2().bound(L=2.0, f_lower=0.0, lr=0.1, R=1.0, eps=0.1, f_t0=5.0, sum_dmu2=0.1, kappa=0.0)


def test_theorem2_on_a_continuation_fake():
    T = 6
    mu = np.linspace(0.2, 0.8, T + 1)
    lr, nd = 0.1, 0.01
    f = 10.0 - 9.0 * nd * np.arange(T + 1)
    tr = Fake(f, mu, [lr] * (T + 1), [nd] * T, [0.0] * T, [0] * T, r_norm=[0.5] * (T + 1))
    r = theory.Theorem2().check(tr, kappa=0.0, R=0.5)
    assert r.status == "holds" and r.details["R"] == 0.5 and r.details["sum_dmu2"] == pytest.approx(6 * 0.1**2)
    assert theory.Theorem2().check(tr, kappa=0.0, R=0.1).failed_assumptions == ["||r_t|| <= R on t >= t0"]
    missing = theory.Theorem2().check(tr).failed_assumptions
    assert any(n.startswith("constant kappa") for n in missing) and any(n.startswith("constant R") for n in missing)
    tr.mu[3] = 0.1
    assert "mu_t non-decreasing, 0 <= mu_t <= 1" in theory.Theorem2().check(tr, kappa=0.0, R=0.5).failed_assumptions


def test_prox_distance_uses_an_independent_projection_and_flags_a_wrong_relaxed_point():
    prob = least_squares(30, 12, "ternary", noise=0.05, seed=1)
    tr = brelax.optimize(prob, "binaryrelax", "ternary", steps=20, lr=0.5 / prob.L, record_every=5)
    r = theory.ProxDistance().check(tr, problem=prob)
    assert r.status == "holds" and r.details["with_x"] >= 4
    assert theory.ProxDistance().check(descending(T=3, mu=0.5)).status == "assumption-not-met"  # nothing to check
    bad = types.SimpleNamespace(
        **{
            k: getattr(tr, k)
            for k in ("f", "mu", "lr", "step_norm2", "aoc", "inner", "flips", "dist_x", "dist_y", "meta", "y")
        }
    )
    bad.iterates = {k: np.array(v, copy=True) for k, v in tr.iterates.items()}
    bad.iterates["x"][2] = bad.iterates["y"][2]  # x formed with mu = 0 instead of mu_t
    assert theory.ProxDistance().check(bad, problem=prob).status == "violated"
    bad.iterates = tr.iterates
    bad.dist_y = np.array(tr.dist_y) * 1.001  # the run's projection is not a nearest point
    assert theory.ProxDistance().check(bad, problem=prob).status == "violated"


def test_moreau_envelope_tests_the_minimisation_over_x_both_ways():
    def half(w, Q, lam):  # below every point: not attained
        return 0.5 * brelax.moreau_envelope(w, Q, lam)

    r = theory.MoreauEnvelope().check(envelope=half, qset="binary", trials=4, lams=(1.0,))
    assert r.status == "violated" and r.details["max_rel_value_below_every_found_point"] > 1e-3
    assert theory.MoreauEnvelope().check(qset="ternary", trials=4, lams=(0.5, 3.0)).status == "holds"


def test_bad_trajectory_shapes_raise():
    tr = descending(T=3)
    tr.f = tr.f[:-1]
    with pytest.raises(ValueError, match="length steps"):
        theory.LemmaB().check(tr)
    with pytest.raises(ValueError, match="t0"):
        theory.Theorem1Sum().check(descending(T=3), t0=9)


# --- real runs ----------------------------------------------------------------------------------


def test_real_run_nothing_violated_and_the_core_identities_hold(lsq_run):
    prob, tr = lsq_run
    for name in theory.TRAJECTORY_RESULTS:
        r = theory.RESULTS[name]().check(tr, problem=prob) if name == "lemma_a" else theory.RESULTS[name]().check(tr)
        assert r.status != "violated", (name, r.measured, r.bound, r.details)
    for name in ("lemma_a", "lemma_b", "fact_c", "prox_distance"):
        r = theory.RESULTS[name]().check(tr, problem=prob) if name == "lemma_a" else theory.RESULTS[name]().check(tr)
        assert r.status == "holds", name
    from theory.lemmas import lemma_b_slack

    assert np.array_equal(
        lemma_b_slack(tr, prob.L), LemmaB.slack(tr.f, tr.mu, tr.lr, tr.step_norm2, tr.inner, tr.cross, prob.L)
    )
    # With noise, Phase II flips one sign back and forth with delta_t near 1: c <= 0, named as such.
    d = theory.estimate_constants(tr, t0=150)["d"]
    r = theory.Theorem1Sum().check(tr, d=d)
    assert r.failed_assumptions == ["c = (1 - gL/2 - mu d)/g > 0"] and r.details["d"] > 0.5


def test_noiseless_run_theorem1_and_corollary3_hold_in_phase2():
    prob = least_squares(80, 40, "binary", noise=0.0, seed=1)
    tr = brelax.optimize(
        prob, "binaryrelax", "binary", steps=300, lr=1 / prob.L, lam0=1.0, rho=1.02, phase2_start=240, seed=1
    )
    cal = brelax.optimize(
        least_squares(80, 40, "binary", noise=0.0, seed=2),
        "binaryrelax",
        "binary",
        steps=300,
        lr=1 / prob.L,
        lam0=1.0,
        rho=1.02,
        phase2_start=240,
        seed=2,
    )
    d = theory.estimate_constants(cal, t0=240)["d"]  # a calibration run of another seed, not the checked one
    for name in ("theorem1", "corollary3"):
        r = theory.RESULTS[name]().check(tr, d=d)
        assert r.status == "holds", (name, r.failed_assumptions)
        assert r.details["t0"] == 240


def test_real_run_lemma_b_with_L_too_small_is_violated(lsq_run):
    prob, tr = lsq_run
    r = theory.LemmaB().check(tr, L=0.1 * prob.L)
    assert r.status == "violated" and r.measured < 0


def test_real_run_gradient_at_y_breaks_lemma_a(lsq_run):
    prob, tr = lsq_run
    it = tr.iterates
    broken = {k: np.array(v, copy=True) for k, v in it.items()}
    X, Y, P, mu = broken["x"], broken["y"], broken["p"], tr.mu
    for t in range(len(X) - 1):  # rebuild the run with grad f(y_t) in place of grad f(x_t)
        Y[t + 1] = Y[t] - tr.lr[t] * prob.grad(Y[t])
        P[t + 1] = brelax.binary().project(Y[t + 1])
        X[t + 1] = Y[t + 1] - mu[t + 1] * (Y[t + 1] - P[t + 1])

    t2 = types.SimpleNamespace()
    for k in ("f", "mu", "lr", "step_norm2", "aoc", "inner", "flips", "meta"):
        setattr(t2, k, getattr(tr, k))
    t2.iterates = broken
    r = theory.LemmaA().check(t2, problem=prob)
    assert r.status == "violated" and r.measured > 1e-6


def test_identity_mu_delta_equals_one_plus_g_grad_dot_D_over_norm(lsq_run):
    """THEORY.md section 8: with mu fixed, mu delta_t = 1 + g <grad f(x_t), D_t>/||D_t||^2."""
    prob, tr = lsq_run
    X = tr.iterates["x"]
    checked = 0
    for t in range(len(X) - 1):
        if tr.mu[t] == tr.mu[t + 1] and tr.step_norm2[t] > 1e-20:
            D = X[t + 1] - X[t]
            rhs = 1 + tr.lr[t] * prob.grad(X[t]) @ D / (D @ D)
            assert tr.mu[t] * tr.aoc[t] == pytest.approx(rhs, abs=1e-6)
            checked += 1
    assert checked > 10
