"""heavy_ball: Theorem II.12 (heavy-ball momentum and weight decay on a lazy method) on recorded steps.

The runs here are torch's SGD recursion written out in NumPy on a least-squares problem (full batch, so
``f_B = f`` and ``L`` is known exactly), recorded through the same :mod:`brelax.diagnostics` functions
QuantOptimizer uses; a torch run on the digits checks the recording end to end.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from brelax import diagnostics as dg
from brelax import problems as P
from brelax.sets import get_set
from brelax.trajectory import Trajectory, fill_missing
from theory import HeavyBall
from theory.heavyball import kappa


def heavy_ball_run(prob, lr, beta, wd, steps=150, mu0=0.5, dmu=0.004, beta_recorded=None, lr_recorded=None):
    """BinaryRelax with torch's SGD momentum on ``prob``: m = beta m + G + wd y, y -= lr m, x = y - mu r."""
    Q = get_set("binary")
    y = prob.init(np.random.default_rng(0))
    m = np.zeros_like(y)
    rows: list[dict] = []
    f, mus = [], []
    for t in range(steps):
        mu, mu_n = min(1.0, mu0 + dmu * t), min(1.0, mu0 + dmu * (t + 1))
        p = Q.project(y)
        r = y - p
        x = y - mu * r
        G = prob.grad(x)
        m = beta * m + G + wd * y
        y_n = y - lr * m
        p_n = Q.project(y_n)
        r_n = y_n - p_n
        x_n = y_n - mu_n * r_n
        ps = dg.stable_projection(y_n, p)
        xs = y_n - mu_n * (y_n - ps)
        codes, codes_n = np.sign(p), np.sign(p_n)
        st = dg.step_fields(dg.step_sums(x, x_n, r, r_n, codes, codes_n, m, None, xs, p_n, ps))
        st.update(zip(dg.MOMENTUM_SUMS, dg.momentum_sums(y, y_n, r, p_n, ps, G).tolist(), strict=True))
        Gn = prob.grad(x_n)
        dn = math.sqrt(st["step_norm2"])
        st.update(
            batch_f=prob.f(x),
            batch_f_next=prob.f(x_n),
            batch_L_local=float(np.linalg.norm(Gn - G)) / dn if dn > 0 else math.nan,
            r_norm=float(np.linalg.norm(r)),
            scale_max=float(np.mean(np.abs(p))),
        )
        rows.append(st)
        f.append(prob.f(x))
        mus.append(mu)
        y = y_n
    mus.append(min(1.0, mu0 + dmu * steps))
    arrays = {k: np.array([r[k] for r in rows]) for k in rows[0] if k not in ("r_norm", "scale_max")}
    arrays["flips"] = arrays["flips"].astype(np.int64)
    p = Q.project(y)
    arrays["r_norm"] = np.array([r["r_norm"] for r in rows] + [float(np.linalg.norm(y - p))])
    arrays["scale_max"] = np.array([r["scale_max"] for r in rows] + [float(np.mean(np.abs(p)))])
    arrays["mu"] = np.array(mus)
    arrays["lr"] = np.array([lr if lr_recorded is None else lr_recorded] * steps + [math.nan])
    arrays["f"] = np.array(f + [math.nan])
    fill_missing(arrays, {})
    meta = {
        "method": "binaryrelax",
        "qset": "binary",
        "momentum": beta if beta_recorded is None else beta_recorded,
        "weight_decay": wd,
        "plain_sgd": False,
        "direction": "anchor step",
        "base_optimizer": "SGD",
        "nesterov": False,
        "dampening": 0.0,
        "batch_size": 64,
        "row_min": prob.dim,
        "n_quantized": prob.dim,
        "levels": [1.0],
    }
    return Trajectory(arrays, np.zeros(0), y, meta)


@pytest.fixture(scope="module")
def lsq():
    return P.least_squares(80, 40, "binary", seed=1)


def test_kappa_is_the_classical_heavy_ball_condition_at_a_constant_step():
    L, beta = 2.0, 0.9
    assert kappa(0.099 / L * 2, 0.099 / L * 2, beta, L) > 0  # g L = 0.198 < 2 (1 - beta)
    assert kappa(0.101 / L * 2, 0.101 / L * 2, beta, L) < 0
    assert float(kappa(1.0, np.nan, 0.0, 1.0)) == pytest.approx(0.5)  # beta = 0: 1/g - L/2


def test_a_correct_run_inside_the_step_condition_is_guaranteed_and_mostly_certified(lsq):
    L = lsq.L
    tr = heavy_ball_run(lsq, 0.15 / L, 0.9, 1e-3)
    r = HeavyBall().check(tr, L=L)
    assert r.status == "holds"
    d = r.details
    assert d["failing_steps"] == 0
    assert d["guarantee_steps"] == d["checked_after_burn_in"] > 100
    assert d["certified_steps"] >= 0.5 * d["guarantee_steps"]


@pytest.mark.parametrize("scale", [0.5, 1.5, 3.0])
def test_steps_outside_kappa_positive_get_no_guarantee_and_no_violation(lsq, scale):
    """g L >= 2 (1 - beta): correct code, no guarantee (even when the run diverges), never violated."""
    L = lsq.L
    tr = heavy_ball_run(lsq, scale / L, 0.9, 0.0, steps=120)
    r = HeavyBall().check(tr, L=L)
    assert r.status != "violated"
    assert r.details["failing_steps"] == 0
    # only the first step may be guaranteed: m_(-1) = 0, kappa_0 = (1 - beta/2)/g - L/2 > 0 at g L = 0.5
    assert r.details["guarantee_steps"] == (1 if scale < 1.1 else 0)
    assert "kappa_t > 0: g L_B < 2 - beta (1 + g_t/g_(t-1))" in r.details["failed_per_step"]


def test_a_momentum_recorded_lower_than_it_ran_is_a_violation(lsq):
    L = lsq.L
    tr = heavy_ball_run(lsq, 0.15 / L, 0.9, 0.0, beta_recorded=0.5)
    r = HeavyBall().check(tr, L=L)
    assert r.status == "violated"


def test_a_step_size_recorded_larger_than_it_ran_is_a_violation(lsq):
    L = lsq.L
    tr = heavy_ball_run(lsq, 0.15 / L, 0.9, 0.0, lr_recorded=0.3 / L)
    assert HeavyBall().check(tr, L=L).status == "violated"


def test_a_raised_loss_is_a_violation_with_a_given_L_and_a_named_estimate_otherwise(lsq):
    L = lsq.L
    tr = heavy_ball_run(lsq, 0.15 / L, 0.9, 1e-3)
    tr.arrays["batch_f_next"][100] += 0.05 * abs(tr.arrays["batch_f"][100]) + 1e-3
    assert HeavyBall().check(tr, L=L).status == "violated"
    est = HeavyBall().check(tr)
    assert est.status == "holds"
    assert [100, 101] in est.details["failed_per_step"]["the inequality with the estimated L_B held"]["steps"]


def test_plain_sgd_and_numpy_runs_are_outside_its_scope(lsq):
    import brelax

    tr = brelax.optimize(lsq, qset="binary", steps=30, lr=1.0 / lsq.L, method="binaryrelax", batch_size=32, seed=0)
    r = HeavyBall().check(tr)
    assert r.status == "assumption-not-met"
    scope = {k for k, a in r.assumptions.items() if a["scope"] and not a["ok"]}
    assert any(k.startswith("torch SGD recursion") for k in scope)
    assert any(k.startswith("same-batch records and the anchor-step sums") for k in scope)


def test_the_momentum_sums_follow_their_definitions():
    rng = np.random.default_rng(3)
    y, y_n = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    Q = get_set("binary")
    p, p_n = Q.project(y, axis=0), Q.project(y_n, axis=0)
    r = y - p
    G = rng.standard_normal((4, 5))
    ps = dg.stable_projection(y_n, p, 0)
    s = dict(zip(dg.MOMENTUM_SUMS, dg.momentum_sums(y, y_n, r, p_n, ps, G, axis=0).tolist(), strict=True))
    a = y_n - y

    def proj2(v, q):  # ||M v||^2, M the projector onto the lines of q's rows (rows indexed by axis 0)
        return sum(float(v[i] @ q[i]) ** 2 / float(q[i] @ q[i]) for i in range(q.shape[0]) if q[i] @ q[i] > 0)

    assert s["ystep_norm2"] == pytest.approx(float(np.sum(a * a)))
    assert s["ystep_old2"] == pytest.approx(proj2(a, p))
    assert s["ystep_new2"] == pytest.approx(proj2(a, p_n))
    assert s["p_dot_ystep"] == pytest.approx(float(np.sum(p * a)))
    assert s["r_dot_ystep"] == pytest.approx(float(np.sum(r * a)))
    assert s["raw_dot_gap"] == pytest.approx(float(np.sum(G * (p_n - ps))))
    assert s["stable_clamped"] == sum(float(y_n[i] @ p[i]) < 0 for i in range(4))
    f = dict(zip(dg.MOMENTUM_SUMS, dg.momentum_sums(y, y_n, np.zeros_like(y), g_raw=G).tolist(), strict=True))
    assert f["ystep_old2"] == f["ystep_new2"] == f["ystep_norm2"]  # a float block: M = I


def test_an_adam_run_gets_no_guarantee_and_batch_descent_says_why(lsq):
    from theory import BatchDescent

    tr = heavy_ball_run(lsq, 0.15 / lsq.L, 0.9, 0.0)
    tr.meta["base_optimizer"] = "Adam"
    hb, bd = HeavyBall().check(tr), BatchDescent().check(tr)
    assert hb.status == bd.status == "assumption-not-met"
    assert all(hb.assumptions[k]["scope"] for k in hb.failed_assumptions if k.startswith("torch SGD"))
    plain = bd.assumptions["G_t = grad f_B(x_t) (plain SGD: no momentum, no weight decay)"]
    assert not plain["ok"] and not plain["scope"] and "no result covers Adam" in plain["detail"]
    tr.meta["base_optimizer"] = "SGD"  # heavy-ball SGD: heavy_ball's run, out of batch_descent's scope
    assert (
        BatchDescent().check(tr).assumptions["G_t = grad f_B(x_t) (plain SGD: no momentum, no weight decay)"]["scope"]
    )
