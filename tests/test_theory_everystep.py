"""Every-step results: every result sees a hand-built broken trajectory as "violated", a correct one as "holds",
and real runs (full batch, SGD, every method) are covered on every step with constants not fitted on them."""

import math
import types

import numpy as np
import pytest

import brelax
import theory
from brelax.problems import least_squares
from theory import (
    AOCFlipBound,
    FlipDescent,
    PLRate,
    ProjectionMonotonicity,
    ProxStepDescent,
    SGDHighProbability,
    StationarityRate,
    descent_terms,
    pl_constant,
)
from theory.flipcost import flip_cost_bound, pattern_gap_bound, set_info
from theory.result import covered_steps, intervals


def traj(T=5, mu=0.0, lr=0.1, L=1.0, method="gd", qset="binary", **fields):
    """A hand-built trajectory (only the field names), gd-like by default: D_t = -g G_t exactly."""
    g2 = fields.pop("sgrad_norm2", np.ones(T))
    mu_a = np.full(T + 1, float(mu)) if np.isscalar(mu) else np.asarray(mu, float)
    lr_a = np.full(T + 1, float(lr))
    c = lr * (1 - mu_a[1:]) * (1 - lr * L * (1 - mu_a[1:]) / 2)
    f = 10.0 - np.concatenate([[0.0], np.cumsum(c * g2)])
    ns = types.SimpleNamespace(
        f=f,
        mu=mu_a,
        lr=lr_a,
        step_norm2=lr * lr * g2,
        aoc=np.zeros(T),
        inner=np.zeros(T),
        cross=np.zeros(T),
        flips=np.zeros(T, dtype=np.int64),
        r_norm=np.zeros(T + 1),
        scale_min=np.ones(T + 1),
        scale_max=np.ones(T + 1),
        grad_norm2=np.append(g2, 1.0),
        sgrad_norm2=np.asarray(g2, float),
        noise_norm2=np.zeros(T),
        sg_dot_D=-lr * np.asarray(g2, float),
        sg_dot_r=np.zeros(T),
        dist_x=np.zeros(T + 1),
        meta={
            "method": method,
            "qset": qset,
            "batch_size": None,
            "L": L,
            "f_lower": 0.0,
            "problem": {"name": "fake"},
            "levels": [1.0],
            "row_min": 4,
            "n_quantized": 4,
        },
    )
    for k, v in fields.items():
        setattr(ns, k, np.asarray(v, float) if k != "meta" else v)
    return ns


def consistent(tr):
    """Set ``inner`` (and ``aoc``) so that the step identity g<G, D> = -||D||^2 + mu'<r - r', D> - Dmu <r, D> holds."""
    g, mn, dmu = tr.lr[:-1], tr.mu[1:], np.diff(tr.mu)
    tr.inner = (g * tr.sg_dot_D + tr.step_norm2 + dmu * tr.cross) / mn
    tr.aoc = tr.inner / tr.step_norm2
    return tr


# --- Result.covered --------------------------------------------------------------------------------


def test_intervals_and_covered_steps():
    assert intervals([True, True, False, True], offset=10) == [[10, 12], [13, 14]]
    assert intervals([]) == [] and intervals([False]) == []
    assert covered_steps([[0, 3], [2, 5]]) == 5


def test_covered_is_dropped_unless_the_result_holds():
    r = theory.result.make_result("x", "s", {}, 2.0, 1.0, covered=[[0, 3]])
    assert r.status == "violated" and r.covered == []
    r = theory.result.make_result("x", "s", {}, 0.0, 1.0, covered=[[0, 3]])
    assert r.covered == [[0, 3]] and theory.Result.from_dict(r.to_dict()).covered == [[0, 3]]


def test_lazy_methods_are_the_lazy_steps_and_gd_whose_x_is_y():
    from brelax.steps import METHODS

    assert set(theory.context.LAZY_METHODS) == {n for n, m in METHODS.items() if m.lazy} | {"gd"}
    s = METHODS["gd"].update(METHODS["gd"].init(np.ones(3), 0.0, np.sign), np.arange(3.0), 0.1, 0.0, np.sign)
    assert np.array_equal(s.x, s.y)  # gd is the lazy rule with mu = 0
    assert set(theory.context.PROX_METHODS) == {"pgd", "proxquant"}


# --- Theorem II.2: monotonicity --------------------------------------------------------------------


def test_monotonicity_holds_with_equality_for_gd_and_covers_every_step():
    r = ProjectionMonotonicity().check(traj())
    assert r.status == "holds" and r.covered == [[0, 5]]


def test_monotonicity_violated_when_the_step_is_shorter_than_the_recorded_lr_says():
    tr = traj()
    tr.sg_dot_D[2] *= 0.99  # the step used lr 1% below the recorded one
    r = ProjectionMonotonicity().check(tr)
    assert r.status == "violated" and r.details["failing_steps"] == 1 and r.details["first_failing_t"] == 2


def test_monotonicity_mu_delta_above_one_on_a_fixed_mu_step_is_violated():
    tr = traj(mu=0.5)
    tr.sg_dot_D = -0.5 * 0.1 * tr.sgrad_norm2 - 0.01  # mu' <P'-P, y'-y> > 0: fine
    tr.step_norm2 = np.full(5, 0.004)
    consistent(tr)
    assert ProjectionMonotonicity().check(tr).status == "holds"
    tr.aoc[1] = 2.5  # mu delta = 1.25 > 1
    r = ProjectionMonotonicity().check(tr)
    assert r.status == "violated" and r.details["mu_delta_over_1_steps"] == 1


def test_monotonicity_varying_mu_uses_the_continuation_term():
    mu = np.array([0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    tr = traj(mu=mu)
    tr.sg_dot_r = np.full(5, -2.0)
    tr.sg_dot_D = -(1 - mu[1:]) * 0.1 * tr.sgrad_norm2 + 0.1 * 2.0  # equality: <G, D + Dmu r> = -(1-mu') g ||G||^2
    consistent(tr)
    assert ProjectionMonotonicity().check(tr).status == "holds"
    tr.sg_dot_r = np.full(5, 2.0)  # same D, continuation term of the other sign
    assert ProjectionMonotonicity().check(tr).status == "violated"


def test_step_identity_catches_a_step_longer_than_the_recorded_lr():
    tr = consistent(traj(mu=0.5, sg_dot_D=np.full(5, -0.06), step_norm2=np.full(5, 0.004)))
    assert ProjectionMonotonicity().check(tr).status == "holds"
    tr.sg_dot_D[3] *= 1.01  # the inequality still holds (more negative), but not the identity with the recorded g
    r = ProjectionMonotonicity().check(tr)
    assert r.status == "violated" and r.details["identity_failing_steps"] == 1


def test_monotonicity_needs_a_lazy_method_and_its_fields():
    assert ProjectionMonotonicity().check(traj(method="pgd")).status == "assumption-not-met"
    tr = traj()
    del tr.sg_dot_D
    r = ProjectionMonotonicity().check(tr)
    assert r.status == "assumption-not-met" and "diagnostic fields recorded" in r.failed_assumptions


# --- Theorem II.6: PGD and ProxQuant -----------------------------------------------------------------


def test_prox_step_descent_pgd_holds_and_a_step_against_the_gradient_is_violated():
    tr = traj(mu=1.0, method="pgd")
    tr.f = 10.0 - 0.05 * np.arange(6)  # f(x') <= f(x) - (1/(2g) - L/2) ||D||^2 = f - 4.5 * 0.01
    r = ProxStepDescent().check(tr)
    assert r.status == "holds" and r.covered == [[0, 5]] and r.details["descent_checked"]
    tr.sg_dot_D[3] = +0.05
    assert ProxStepDescent().check(tr).status == "violated"
    tr.meta["plain_sgd"] = False  # momentum: z is not x - g G, the theorem says nothing
    assert ProxStepDescent().check(tr).status == "assumption-not-met"


def test_prox_step_descent_f_increase_beyond_the_smoothness_bound_is_violated():
    tr = traj(mu=1.0, method="pgd")
    tr.f = 10.0 - 0.05 * np.arange(6)
    tr.f[4] = tr.f[3] + 0.01
    r = ProxStepDescent().check(tr)
    assert r.status == "violated" and r.details["descent_failing_steps"] == 1


def test_prox_step_descent_proxquant_distance_term():
    # mu' = 0.5 (lam' = 1): (1 - mu')(g<G,D> + ||D||^2/2) <= (mu'/2)(d_t^2 - d_{t+1}^2)
    tr = traj(mu=0.5, method="proxquant", dist_x=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5])
    tr.f = 10.0 - 0.05 * np.arange(6)
    assert ProxStepDescent().check(tr).status == "holds"
    tr.dist_x = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 1.0]) * 3  # distance grows: the prox objective went up
    tr.sg_dot_D = np.full(5, -0.06)
    assert ProxStepDescent().check(tr).status == "violated"


# --- Theorem II.4: every-step descent with a flip cost ------------------------------------------------


def test_flip_descent_holds_on_a_consistent_gd_trajectory_and_fails_when_f_rises():
    tr = traj()
    r = FlipDescent().check(tr)
    assert r.status == "holds" and r.covered == [[0, 5]] and r.measured <= r.bound + 1e-12
    tr.f[3] += 1e-3
    r = FlipDescent().check(tr)
    assert r.status == "violated" and r.details["first_failing_t"] == 2


def test_flip_descent_flip_cost_pays_for_an_increase_only_up_to_its_bound():
    tr = traj(mu=1.0, method="binaryconnect")  # c_t = 0: f may rise by at most Ebar_t
    tr.flips[2] = 1
    tm = descent_terms(theory.context.Context(tr), 1.0)
    assert tm["Ebar"][2] > 0 and tm["Ebar"][1] == 0
    tr.f[3:] += 0.999 * tm["Ebar"][2]
    assert FlipDescent().check(tr).status == "holds"
    tr.f[3:] += 0.01 * tm["Ebar"][2]
    assert FlipDescent().check(tr).status == "violated"


def test_flip_descent_measured_forms_pattern_gap_above_its_a_priori_bound_is_violated():
    tr = traj(mu=1.0, method="binaryconnect")
    tr.f_stable = tr.f[1:].copy()  # mu = 1, the stable step stays on the ray: D^s = 0 here
    tr.stable_g_dot_D = np.zeros(5)
    tr.stable_norm2 = np.zeros(5)
    tr.pattern_gap = np.zeros(5)
    assert FlipDescent().check(tr).status == "holds"
    tr.f_stable[2] += 1e-3  # f(x^s) above the descent lemma's bound
    assert FlipDescent().check(tr).details["descent_lemma_at_stable_failing"] == 1
    tr.f_stable[2] -= 1e-3
    tr.pattern_gap[1] = 1e-3  # the projection changed although no code changed (a stale or wrong P)
    r = FlipDescent().check(tr)
    assert r.status == "violated" and r.details["pattern_gap_over_B_failing"] == 1


def test_flip_descent_too_small_L_or_unknown_L():
    tr = traj(L=1.0)
    assert FlipDescent().check(tr, L=0.2).status == "violated"  # c_t too large for the recorded decrease
    r = FlipDescent().check(tr, L=0.2, L_source="estimate: calibration run")  # an estimate is not a theorem's L
    assert r.status == "assumption-not-met" and "L known (exact smoothness constant)" in r.failed_assumptions
    tr.meta["L"] = None
    assert "L known (exact smoothness constant)" in FlipDescent().check(tr).failed_assumptions


def test_pattern_gap_bound_binary_formula_and_zero_without_flips():
    info = set_info({"qset": "binary", "levels": [1.0], "row_min": 16})
    B = pattern_gap_bound(
        np.array([0, 4]),
        np.array([1.0, 1.0]),
        np.array([1.0, 1.0]),
        np.array([2.0, 2.0]),
        np.array([0.1, 0.1]),
        np.array([5.0, 5.0]),
        info,
    )
    assert B[0] == 0 and B[1] == pytest.approx(min(2 * 2 * (1 + 2 * 0.1 * 2 / 4), 2 * math.sqrt(4 * 4 + 2 * 2 * 5)))
    assert flip_cost_bound(0.0, 1.0, 1.0, 1.0, 0.1, 0.0, 1.0, 1.0) == 0.0


@pytest.mark.parametrize("qset,n", [("binary", 6), ("ternary", 6), ("levels:1,3", 5)])
def test_pattern_gap_bound_holds_on_random_steps_against_brute_force(qset, n):
    """||P(y') - P^s|| <= B on random steps, with P from theory.brute (independent of brelax)."""
    from theory import brute

    Q = brelax.get_set(qset)
    info = set_info({"qset": qset, "levels": list(Q.levels), "row_min": n})
    pats = brute.patterns(Q.table, n)
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(150):
        y = rng.standard_normal(n)
        G = rng.standard_normal(n) * rng.uniform(0.1, 3)
        g = rng.uniform(0.05, 1.0)
        yn = y - g * G
        p, q = brute.project(y, Q.table, pats)
        pn, qn = brute.project(yn, Q.table, pats)
        a = max(yn @ q, 0.0) / (q @ q) if q @ q > 0 else 0.0
        ps = a * q
        k = int(np.sum(np.sign(q) * np.abs(q) != np.sign(qn) * np.abs(qn)))

        def sc(pp, qq):
            return float(np.abs(pp).max() / np.abs(qq).max()) if np.abs(qq).max() > 0 else 0.0

        B = pattern_gap_bound(
            np.array([k]),
            np.array([sc(p, q)]),
            np.array([sc(pn, qn)]),
            np.array([np.linalg.norm(G)]),
            np.array([g]),
            np.array([np.linalg.norm(yn - pn)]),
            info,
        )[0]
        gap = np.linalg.norm(pn - ps)
        assert gap <= B * (1 + 1e-9) + 1e-12, (y, G, g, gap, B)
        worst = max(worst, gap / B if B > 0 else 0.0)
    assert worst > 0.05  # the bound is not vacuous on these steps


# --- rates -----------------------------------------------------------------------------------------


def test_stationarity_rate_holds_and_a_gradient_that_never_shrinks_is_violated():
    tr = traj(T=20, mu=0.5)
    r = StationarityRate().check(tr)
    assert r.status == "holds" and r.details["loglog_slope_bound"] == -1.0
    tr.f = np.full(21, 10.0) - 1e-6 * np.arange(21)  # f barely moves but ||grad f|| stays 1
    tr.meta["f_lower"] = 9.9999
    assert StationarityRate().check(tr, t1=20).status == "violated"


def test_pl_rate_needs_m_pl_and_a_too_large_m_pl_is_violated():
    tr = traj(T=6)
    tr.meta["problem"] = {"name": "lsq(m=2,n=1)"}
    assert any(n.startswith("m_PL given") for n in PLRate().check(tr).failed_assumptions)
    # f - f_* = 10 - ..., ||G||^2 = 1: PL holds with m <= 1/20; claim m = 5
    assert PLRate().check(tr, m_pl=0.04).status == "holds"
    assert PLRate().check(tr, m_pl=5.0).status == "violated"


def test_pl_constant_is_the_smallest_nonzero_eigenvalue():
    A = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    assert pl_constant(A) == pytest.approx(1.0)
    assert pl_constant(np.array([[1.0, 1.0], [1.0, 1.0]])) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="zero"):
        pl_constant(np.zeros((2, 2)))


# --- Theorem II.11: minibatches with high probability ----------------------------------------------


def sgd_traj(T=40):
    tr = traj(T=T, mu=0.5, lr=0.5, L=1.0, method="binaryrelax", noise_norm2=np.full(T, 0.04))
    tr.grad_norm2 = np.ones(T + 1)
    tr.meta.update(batch_size=8, sampling="with_replacement")
    return tr


def test_sgd_high_probability_holds_needs_its_constants_and_with_replacement_sampling():
    tr = sgd_traj()
    r = SGDHighProbability().check(tr, Xi=0.25, Gamma=1.5)
    assert r.status == "holds" and r.measured == pytest.approx(40 * 0.5 * 0.75 * 0.5)
    assert "constants Xi and Gamma given (from a calibration run)" in SGDHighProbability().check(tr).failed_assumptions
    assert (
        "||xi_t|| <= Xi and ||grad f(x_t)|| <= Gamma on the window"
        in SGDHighProbability().check(tr, Xi=0.1, Gamma=1.5).failed_assumptions
    )
    tr.meta["sampling"] = "per-epoch reshuffling"
    assert "with-replacement sampling" in SGDHighProbability().check(tr, Xi=0.25, Gamma=1.5).failed_assumptions


def test_sgd_high_probability_a_gradient_too_large_for_the_decrease_is_violated():
    tr = sgd_traj()
    tr.meta["f_lower"] = 9.0  # f falls by 7.5 but never below 9: sum c ||grad f||^2 = 7.5 > 1 + noise terms
    tr.f = 10.0 - np.linspace(0, 0.9, 41)
    assert SGDHighProbability().check(tr, Xi=0.25, Gamma=1.5, delta=0.01).status == "violated"


# --- Proposition II.9 ------------------------------------------------------------------------------


def test_aoc_flip_bound_small_gradient_on_a_c_positive_flip_step_is_violated():
    tr = traj(mu=0.5, method="binaryrelax", sgrad_norm2=np.full(5, 4.0))
    tr.flips[2] = 1  # threshold (L/2) mu l (a_t + a_t+1) sqrt(k) = 0.5; ||G|| = 2; delta = 0: c_t > 0
    r = AOCFlipBound().check(tr)
    assert r.status == "holds" and r.covered == [[2, 3]]
    tr.sgrad_norm2[2] = 0.01
    r = AOCFlipBound().check(tr)
    assert r.status == "violated" and r.details["flip_steps_with_gradient_below_threshold"] == 1
    assert theory.AOCFraction is AOCFlipBound


# --- real runs: coverage on every step, constants not fitted ------------------------------------------


@pytest.fixture(scope="module")
def lsq():
    return least_squares(60, 30, "binary", noise=0.05, seed=3)


@pytest.mark.parametrize(
    "method,kw",
    [
        ("binaryrelax", dict(phase2_start=150, lam0=0.2, rho=1.03)),
        ("binaryrelax", dict(phase2_start=150, batch_size=10)),
        ("binaryconnect", {}),
        ("gd", {}),
        ("pgd", {}),
        ("proxquant", dict(lam0=0.2, rho=1.03)),
    ],
)
def test_real_runs_are_covered_on_every_step_and_nothing_is_violated(lsq, method, kw):
    tr = brelax.optimize(lsq, method, "binary", steps=200, lr=0.5 / lsq.L, seed=1, **kw)
    covered = set()
    for name in theory.EVERY_STEP_RESULTS:
        extra = {"m_pl": pl_constant(lsq.A)} if name == "pl_rate" else {}
        r = theory.RESULTS[name]().check(tr, **extra)
        assert r.status != "violated", (name, r.details)
        for a, b in r.covered:
            covered.update(range(a, b))
    assert len(covered) >= 0.95 * tr.steps, (method, len(covered))


def test_real_run_too_small_L_is_caught_by_the_flip_descent(lsq):
    tr = brelax.optimize(lsq, "binaryrelax", "binary", steps=150, lr=0.5 / lsq.L, phase2_start=100, seed=1)
    assert FlipDescent().check(tr).status == "holds"
    assert FlipDescent().check(tr, L=0.2 * lsq.L).status == "violated"
    assert PLRate().check(tr, m_pl=pl_constant(lsq.A)).status == "holds"
    assert PLRate().check(tr, m_pl=50 * pl_constant(lsq.A)).status == "violated"


def test_real_ternary_run_measured_pattern_gap_within_the_a_priori_bound():
    prob = least_squares(60, 30, "ternary", noise=0.05, seed=3)
    tr = brelax.optimize(prob, "binaryrelax", "ternary", steps=200, lr=0.5 / prob.L, phase2_start=150, seed=1)
    r = FlipDescent().check(tr)
    assert r.status == "holds" and r.details["stable_fields"] and r.details["flip_steps"] > 0
    assert r.details["max_pattern_gap_over_B"] <= 1.0


def _mutant_run(prob, make_update, **kw):
    from brelax import steps

    base = steps.get_method("binaryrelax")
    steps.METHODS["mutant_a1"] = base._replace(update=make_update(base))
    try:
        return brelax.optimize(
            prob, method="mutant_a1", steps=120, lr=0.5 / prob.L, phase2_start=90, lam0=0.3, rho=1.03, **kw
        )
    finally:
        steps.METHODS.pop("mutant_a1", None)


def _stale(base):
    from brelax import steps
    from brelax.prox import relax

    count = {"t": 0}

    def update(state, grad, lr, mu_next, project):
        count["t"] += 1
        y = state.y - lr * grad
        p = project(y) if count["t"] % 4 == 0 else state.p
        return steps.State(relax(y, p, mu_next), y, p)

    return update


def _lr_off(base):
    return lambda state, grad, lr, mu_next, project: base.update(state, grad, 1.01 * lr, mu_next, project)


@pytest.mark.parametrize(
    "defect,result", [(_stale, "flip_descent"), (_lr_off, "projection_monotonicity"), (None, None)]
)
def test_real_run_defects_are_caught_and_the_clean_run_is_not(defect, result):
    prob = least_squares(40, 20, "binary", seed=0)
    tr = _mutant_run(prob, defect or (lambda base: base.update))
    statuses = {n: theory.RESULTS[n]().check(tr).status for n in ("projection_monotonicity", "flip_descent")}
    if defect is None:
        assert set(statuses.values()) == {"holds"}
    else:
        assert statuses[result] == "violated", statuses


def test_float32_runs_get_float32_tolerances_and_still_catch_a_one_percent_lr_error():
    from theory.numerics import working_eps

    assert working_eps({"source": "brelax train"}) == np.finfo(np.float32).eps
    assert working_eps({"dtype": "torch.float64"}) == np.finfo(np.float64).eps
    assert working_eps({}) == np.finfo(np.float64).eps
    tr = consistent(traj(mu=0.5, sg_dot_D=np.full(5, -0.06), step_norm2=np.full(5, 0.004)))
    tr.inner = tr.inner * (1 + 3e-8)  # float32 rounding of the sums: not a defect in a float32 run
    assert ProjectionMonotonicity().check(tr).status == "violated"
    tr.meta["source"] = "brelax train"
    assert ProjectionMonotonicity().check(tr).status == "holds"
    tr.sg_dot_D[1] *= 1.01
    assert ProjectionMonotonicity().check(tr).status == "violated"


def test_estimate_constants_on_a_calibration_window_and_bad_windows():
    tr = traj(T=6, mu=0.5)
    tr.aoc = np.array([0.1, -0.2, 0.3, 0.0, 0.05, 0.2])
    tr.r_norm = np.arange(7.0)
    tr.L_local = np.full(6, 0.7)
    c = theory.estimate_constants(tr, t0=0, t1=3)
    assert c["d"] == pytest.approx(0.3) and c["kappa"] == pytest.approx(0.15) and c["R"] == 3.0
    assert c["L"] == 0.7 and c["L_source"].startswith("estimate") and math.isnan(c["sigma2"])
    with pytest.raises(ValueError, match="calibration window"):
        theory.estimate_constants(tr, t0=4, t1=2)


def test_estimate_constants_sigma2_from_torch_noise_pairs():
    tr = traj(T=4)
    tr.meta["batch_size"] = 8
    del tr.noise_norm2
    tr.noise_pair_norm2 = np.array([np.nan, 2.0, np.nan, 6.0])  # every other step measured
    c = theory.estimate_constants(tr)
    assert c["sigma2"] == pytest.approx(2.0) and c["noise_max"] == pytest.approx(math.sqrt(3.0))
