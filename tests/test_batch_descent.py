"""batch_descent: Theorem II.4 on the step's own minibatch, with L_B estimated on earlier steps only."""

from __future__ import annotations

import numpy as np
import pytest

import brelax
from brelax import problems as P
from theory import BatchDescent
from theory.batchdescent import MARGIN


@pytest.fixture(scope="module")
def sgd_run():
    prob = P.least_squares(100, 50, "binary", seed=0)
    return brelax.optimize(
        prob, qset="binary", steps=200, lr=1.0 / prob.L, method="binaryrelax", batch_size=64, seed=0, phase2_start=160
    )


def test_plain_sgd_steps_are_guaranteed_after_the_burn_in(sgd_run):
    r = BatchDescent().check(sgd_run)
    assert r.status == "holds"
    assert r.details["recorded_steps"] == 200 and r.details["burn_in_steps"] == 40
    assert r.details["guarantee_fraction_after_burn_in"] >= 0.9
    burn = r.details["failed_per_step"]["checked after the burn-in (L_B estimated there)"]
    assert burn["steps"] == [[0, 40]]


def test_the_estimate_reads_only_earlier_steps(sgd_run):
    """Inflating one step's secant changes L_B of the later steps only (a predictable estimate)."""
    a = BatchDescent().check(sgd_run)
    sec = sgd_run.batch_L_local.copy()
    sgd_run.arrays["batch_L_local"] = sec.copy()
    sgd_run.arrays["batch_L_local"][150] = 1e6
    try:
        b = BatchDescent().check(sgd_run)
    finally:
        sgd_run.arrays["batch_L_local"] = sec
    fails = b.details["failed_per_step"]
    # step 150 itself fails its secant hypothesis; the steps after it get L_B = 1.25e6, so g L_B >= 2 there
    assert fails["secant of grad f_B <= L_B on the step"]["steps"] == [[150, 151]]
    assert fails["step size g*L_B < 2"]["steps"] == [[151, 200]]
    assert b.details["guarantee_steps"] < a.details["guarantee_steps"]
    assert MARGIN == 1.25


def test_a_raised_batch_loss_is_a_violation_with_a_given_L_and_a_named_estimate_otherwise(sgd_run):
    nxt = sgd_run.batch_f_next.copy()
    sgd_run.arrays["batch_f_next"] = nxt.copy()
    sgd_run.arrays["batch_f_next"][120] += 10.0 * abs(nxt[120]) + 1.0
    try:
        given = BatchDescent().check(sgd_run, L=float(np.nanmax(sgd_run.batch_L_local)))
        est = BatchDescent().check(sgd_run)
    finally:
        sgd_run.arrays["batch_f_next"] = nxt
    assert given.status == "violated" and given.details["first_failing_t"] == 120
    assert est.status == "holds"  # an estimated L_B cannot convict: the step is named instead
    assert est.details["failed_per_step"]["the inequality with the estimated L_B held"]["steps"] == [[120, 121]]


def test_full_batch_runs_have_no_same_batch_record():
    prob = P.least_squares(40, 20, "binary", seed=1)
    traj = brelax.optimize(prob, qset="binary", steps=20, lr=1.0 / prob.L, method="binaryrelax", seed=0)
    r = BatchDescent().check(traj)
    assert r.status == "assumption-not-met" and r.covered == []
    assert r.assumptions["same-batch records (f_B(x_t), f_B(x_(t+1)), secant)"]["scope"] is True
