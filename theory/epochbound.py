r"""Theorem II.10 at the epoch level (THEORY.md, section II.8): the full loss at epoch ends, with probability.

The expected-descent inequality of Theorem II.10, summed over one epoch ``t_e <= t < t_{e+1}`` by the
tower property, bounds ``E[f(x_{t_{e+1}}) | F_{t_e}]``; one run cannot violate a conditional expectation.
What is checked is the high-probability form of THEORY.md (Theorem II.10 (c)), chosen before any run:
with ``mu`` fixed on the epoch, plain SGD, ``g_t L < 2`` and ``E[||xi_t||^2 | F_t] <= sigma_e^2``, pathwise

.. math::

    Y_e := f(x_{t_{e+1}}) - f(x_{t_e}) + \sum_t \frac{2 - g_tL}{4g_t}\|u_t\|^2 - \sum_t \min(\bar E_t, \hat E_t)
    \le N_e := \sum_t \kappa_t \|\xi_t\|^2, \qquad \kappa_t = \frac{g_t}{2 - g_tL},

(``u_t = D^s_t``, the pattern-stable step), and ``N_e >= 0`` has conditional mean at most
``sigma_e^2 sum_t kappa_t``, so by the conditional Markov inequality
``P(Y_e >= sigma_e^2 sum_t kappa_t / delta | F_{t_e}) <= delta``. Where every step of the epoch records
``||xi_t||^2`` (NumPy runs know the full gradient) the pathwise ``Y_e <= N_e`` is checked too.

``sigma_e^2`` is :data:`VAR_MARGIN` times the largest per-epoch mean noise of the *earlier* epochs
(``noise_pair_norm2 / 2`` where recorded: two independent batches at the same point, expectation
``2 sigma^2``; else ``noise_norm2``), a predictable estimate; the epoch's own records must not exceed
it (a hypothesis on the epoch).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import assumptions as A
from .base import TheoryResult
from .context import LAZY_METHODS
from .flipcost import descent_terms, set_info
from .numerics import _tols, f_floor, field, working_eps
from .result import Assumption, intervals

#: The probability of a false alarm per checked epoch (the conditional Markov inequality), fixed in advance.
#: Over ``n`` checked epochs the union bound gives at most ``n * EPOCH_DELTA``.
EPOCH_DELTA = 1e-3
#: ``sigma_e^2`` is this times the largest per-epoch mean noise of the earlier epochs: the variance may double
#: before the epoch's own records contradict it. A design constant of the check, the same for every run
#: (fixed when the check was written, never per run).
VAR_MARGIN = 2.0


def epoch_bounds(traj, T: int, meta: dict, steps_per_epoch=None) -> tuple:
    """The epoch boundaries ``0 = t_0 < t_1 < ... < t_E = T`` of a run, and where they came from.

    In order: ``steps_per_epoch`` (given), the per-step field ``epoch`` (a ``brelax train`` step log: a
    boundary where it changes), ``meta["steps_per_epoch"]``. The last epoch may be partial.

    Returns
    -------
    (ndarray of int or None, str)

    Raises
    ------
    TypeError, ValueError
        ``steps_per_epoch`` is not an int >= 1.
    """
    if steps_per_epoch is not None:
        if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, numbers.Integral):
            raise TypeError(f"steps_per_epoch must be an int, got {steps_per_epoch!r}")
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch!r}")
        return np.unique(np.r_[np.arange(0, T, int(steps_per_epoch)), T]), "given"
    ep = field(traj, "epoch")
    if ep is not None and ep.shape == (T,) and T and np.all(np.isfinite(ep)):
        cut = np.flatnonzero(np.diff(ep) != 0) + 1
        return np.r_[0, cut, T].astype(int), "the step log's epoch column"
    spe = meta.get("steps_per_epoch")
    if isinstance(spe, numbers.Integral) and not isinstance(spe, bool) and spe >= 1:
        return np.unique(np.r_[np.arange(0, T, int(spe)), T]), "meta steps_per_epoch"
    return None, "not recorded (pass steps_per_epoch)"


def _batchnorm(meta) -> tuple:
    bn = meta.get("batchnorm")
    if bn is None and meta.get("source") == "brelax train":
        bn = meta.get("model") != "digits_mlp"  # every other model of brelax.torch.models has BatchNorm
    return not bn, f"model={meta.get('model')!r}, batchnorm={bn}" + (
        ": the eval-mode loss uses running statistics, not the batch statistics SGD descends with" if bn else ""
    )


class EpochBound(TheoryResult):
    r"""The full loss at each epoch end against Theorem II.10 summed over the epoch (THEORY.md, II.10 (b)-(c)).

    Per epoch ``e`` (steps ``t_e <= t < t_{e+1}``): measured ``f(x_{t_{e+1}}) - f(x_{t_e})``; the expectation
    bound of Theorem II.10 summed, ``(L/2) sigma_e^2 sum_t g_t^2 + sum_t E_t`` (``-c'_t ||grad f||^2 <= 0``
    dropped; the flip cost enters as its realised bound ``min(Ebar_t, Ehat_t)``, 0 where ``mu = 0`` or no
    code changed); and the verdict of the high-probability form ``Y_e < sigma_e^2 sum_t kappa_t / delta``
    (module docstring), with the pathwise ``Y_e <= sum_t kappa_t ||xi_t||^2`` where every step records
    ``||xi_t||^2``.

    A guarantee epoch: every hypothesis holds there (with-replacement batches, plain SGD, ``mu`` fixed in
    ``[0, 1]``, ``g_t L < 2``, ``f`` recorded at both ends, the flip cost computable, ``sigma_e^2`` from
    earlier epochs and the epoch's own noise records within it) and the inequalities held. An epoch
    outside the hypotheses is named with the failing hypothesis, never "violated". With an estimated
    ``L`` a failure names the estimate (:func:`proofs_checks.common.as_estimate`).
    """

    name = "epoch_bound"
    label = "Theorem II.10"
    kind = "guarantee"
    statement = (
        "per epoch, mu fixed, plain SGD, with-replacement batches, gL < 2, E||xi||^2 <= sigma_e^2 (earlier epochs): "
        "w.p. >= 1 - delta, f(x_{t_e+1}) - f(x_{t_e}) + sum (2-gL)/(4g) ||u||^2 - sum min(Ebar, Ehat) "
        "< sigma_e^2 sum g/(2-gL) / delta"
    )
    assumptions = [A.L_KNOWN]

    def bound(self, sigma2=None, sum_kappa=None, delta=EPOCH_DELTA, **_) -> float:
        """The threshold ``sigma_e^2 sum_t kappa_t / delta`` on ``Y_e`` (conditional Markov inequality)."""
        return sigma2 * sum_kappa / delta

    def check(self, trajectory, steps_per_epoch=None, delta=EPOCH_DELTA, sigma2=None, L=None, rtol=1e-9, **kw):
        """Check every epoch of a minibatch run.

        Parameters
        ----------
        trajectory : a :class:`brelax.Trajectory` or any object with its fields
        steps_per_epoch : int >= 1 or None
            The epoch length; default the step log's ``epoch`` column or ``meta["steps_per_epoch"]``.
        delta : float in (0, 1)
            False-alarm probability per checked epoch (default :data:`EPOCH_DELTA`).
        sigma2 : float >= 0 or None
            A given bound on ``E[||xi_t||^2 | F_t]`` (e.g. from a calibration run), used on every epoch;
            default the predictable estimate from the earlier epochs.
        L : float or None
            Smoothness constant (default the problem's).

        Returns
        -------
        Result
            ``details["epochs"]``: one entry per epoch (measured, expected, threshold, verdict).

        Raises
        ------
        ValueError
            ``delta`` not in (0, 1), ``sigma2`` negative or not finite, ``steps_per_epoch`` < 1.
        TypeError
            ``steps_per_epoch`` not an int.
        """
        if not 0.0 < float(delta) < 1.0:
            raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
        if sigma2 is not None and not (math.isfinite(float(sigma2)) and float(sigma2) >= 0):
            raise ValueError(f"sigma2 must be a finite number >= 0, got {sigma2!r}")
        delta = float(delta)
        ctx = self.context(trajectory, L=L, **kw)
        T, meta = ctx.T, ctx.meta
        bounds, bsrc = epoch_bounds(trajectory, T, meta, steps_per_epoch)
        Lv = ctx.L if ctx.L is not None else math.nan
        g, mn = ctx.lr[:-1], ctx.mu[1:]
        tm = descent_terms(ctx, Lv)
        # E_t <= min(Ebar_t, Ehat_t, ...) (Lemma II.3, no value of f); 0 where no code changed or mu' = 0
        Eb = np.where((ctx.flips == 0) | (mn == 0), 0.0, tm["Ebest"])
        u2 = tm["u2"]  # ||u_t||^2 = ||D^s_t||^2 with mu fixed
        kappa = g / (2.0 - g * Lv)
        c2 = (2.0 - g * Lv) / (4.0 * g)
        free = set_info(meta)["free_scale"]
        pair = field(trajectory, "noise_pair_norm2", T)
        nz = field(trajectory, "noise_norm2", T)
        if pair is not None and np.isfinite(pair).any():
            rec, rsrc = pair / 2.0, "noise_pair_norm2 / 2 (two independent batches at x_t)"
        elif nz is not None and not ctx.deterministic:
            rec, rsrc = nz, "noise_norm2 = ||G_t - grad f(x_t)||^2"
        else:
            rec, rsrc = np.full(T, np.nan), "none recorded"
        pathwise_nz = nz if nz is not None else np.full(T, np.nan)
        eps = working_eps(meta)
        floor = f_floor(ctx) if math.isfinite(Lv) else np.zeros(T)
        if eps > np.finfo(np.float64).eps:
            rtol = _tols(ctx, rtol, 0.0)[0]

        epochs, hyp_fail = [], {}
        seen_means = []
        guarantee = np.zeros(T, dtype=bool)
        failing = []
        worst = None
        n_bounds = 0 if bounds is None else len(bounds) - 1
        for e in range(n_bounds):
            a, b = int(bounds[e]), int(bounds[e + 1])
            s = slice(a, b)
            r = rec[s]
            have = np.isfinite(r)
            own = float(np.mean(r[have])) if have.any() else math.nan
            s2 = float(sigma2) if sigma2 is not None else (VAR_MARGIN * max(seen_means) if seen_means else math.nan)
            fa, fb = float(ctx.f[a]), float(ctx.f[b])
            ebar = float(np.sum(Eb[s]))
            D = float(np.sum(np.where(np.isfinite(u2[s]), c2[s] * u2[s], 0.0)))  # dropping a term >= 0 is valid
            sk = float(np.sum(kappa[s]))
            y_e = fb - fa + D - ebar
            thr = self.bound(s2, sk, delta) if math.isfinite(s2) else math.nan
            pw = pathwise_nz[s]
            n_e = float(np.sum(kappa[s] * pw)) if np.all(np.isfinite(pw)) else math.nan
            expected = 0.5 * Lv * s2 * float(np.sum(g[s] ** 2)) + ebar
            tol = rtol * (abs(fa) + abs(fb) + abs(D) + abs(ebar) + (abs(n_e) if math.isfinite(n_e) else 0.0))
            tol += 64 * eps * (abs(fa) + abs(fb)) + float(np.nansum(floor[s]))  # rounding of f near a zero minimum
            gl = float(np.max(g[s] * Lv))
            mus = ctx.mu[a : b + 1]
            hyps = {
                "f(x_t) recorded at both epoch ends": (
                    math.isfinite(fa) and math.isfinite(fb),
                    f"f = {fa:.6g}, {fb:.6g}",
                ),
                "mu fixed in [0, 1] on the epoch (continuation adds K_t)": (
                    bool(np.all(mus == mus[0]) and 0 <= mus[0] <= 1),
                    f"mu in [{np.min(mus):.6g}, {np.max(mus):.6g}]",
                ),
                "step size g*L < 2 on the epoch": (gl < 2, f"g*L up to {gl:.3g}"),
                "flip cost E_t <= min(Ebar_t, Ehat_t) computable where a code changed (free-scale Q)": (
                    bool(np.all(np.isfinite(Eb[s]))) and (free or bool(np.all(Eb[s] == 0))),
                    f"{int(np.sum(~np.isfinite(Eb[s])))} flip step(s) without the fields of Lemma II.3"
                    + ("" if free else f"; qset {meta.get('qset')!r} has a fixed scale"),
                ),
                "sigma^2 estimated on earlier epochs": (
                    math.isfinite(s2),
                    "given" if sigma2 is not None else f"{len(seen_means)} earlier epoch(s) with noise records",
                ),
                "the epoch's own noise records within sigma_e^2": (
                    bool(have.any()) and math.isfinite(s2) and own <= s2,
                    f"mean {own:.4g} vs sigma_e^2 = {s2:.4g} ({int(have.sum())} record(s))",
                ),
            }
            ok = all(v[0] for v in hyps.values())
            held_m = math.isfinite(thr) and y_e < thr + tol
            held_p = (not math.isfinite(n_e)) or y_e <= n_e + tol
            if ok:
                for lim, v in ((thr, y_e - thr - tol), (n_e, y_e - n_e - tol)):
                    if math.isfinite(lim):
                        z = v / max(abs(fa) + abs(fb) + abs(D) + abs(ebar), 1e-300)
                        worst = z if worst is None else max(worst, z)
                if not (held_m and held_p):
                    failing.append(e)
                else:
                    guarantee[s] = True
            for hname, (hok, det) in hyps.items():
                if not hok:
                    hyp_fail.setdefault(hname, []).append((a, b, e, det))
            epochs.append(
                {
                    "epoch": e,
                    "steps": [a, b],
                    "measured_df": fb - fa,
                    "expected_bound": expected,
                    "Y": y_e,
                    "threshold": thr,
                    "pathwise_bound": n_e,
                    "sum_Ebar": ebar,
                    "sum_descent": D,
                    "sigma2": s2,
                    "noise_mean": own,
                    "hypotheses_hold": ok,
                    "held": bool(held_m and held_p),
                }
            )
            if have.any():
                seen_means.append(own)

        failed_per_step = {}
        for hname, rows in hyp_fail.items():
            m = np.zeros(T, dtype=bool)
            for a, b, _e, _d in rows:
                m[a:b] = True
            m &= ~guarantee
            if m.any():
                eps_ = [r[2] for r in rows]
                failed_per_step[hname] = {
                    "steps": intervals(m),
                    "count": int(m.sum()),
                    "detail": f"epochs {_ranges(eps_)}: {rows[0][3]}" + (" ..." if len(rows) > 1 else ""),
                }
        if failing:
            m = np.zeros(T, dtype=bool)
            for e in failing:
                m[bounds[e] : bounds[e + 1]] = True
            failed_per_step["the epoch inequality held"] = {
                "steps": intervals(m),
                "count": int(m.sum()),
                "detail": f"epochs {_ranges(failing)}",
            }
        n_ok = sum(1 for ep in epochs if ep["hypotheses_hold"])
        samp = str(meta.get("sampling", "per-epoch reshuffling" if meta.get("batch_size") else "full batch"))
        plain = meta.get("plain_sgd", True) is not False and meta.get("direction") != "anchor step"
        bn_ok, bn_detail = _batchnorm(meta)
        extra = [
            Assumption(
                f"method is one of {', '.join(LAZY_METHODS)}",
                lambda c: (c.method in LAZY_METHODS, f"method={c.method!r}"),
                scope=True,
            ),
            Assumption(
                "minibatch run with epoch boundaries",
                lambda c: (not c.deterministic and bounds is not None, f"batch_size={meta.get('batch_size')}; {bsrc}"),
                scope=True,
            ),
            Assumption("with-replacement sampling", lambda _: (samp == "with_replacement", f"sampling: {samp}")),
            Assumption(
                "G_t = grad f(x_t) + xi_t (plain SGD: no momentum, no weight decay)",
                lambda _: (
                    plain,
                    f"momentum={meta.get('momentum')}, weight_decay={meta.get('weight_decay')}: "
                    "no descent result covers heavy-ball or Adam steps here (THEORY.md, section 15)",
                ),
            ),
            Assumption("f at epoch ends is the function SGD descends (no BatchNorm)", lambda _: (bn_ok, bn_detail)),
            Assumption(
                "at least one epoch where every hypothesis holds",
                lambda _: (n_ok > 0, f"{n_ok} of {n_bounds} epochs"),
            ),
        ]
        ctx.consts.update(
            delta=delta,
            var_margin=VAR_MARGIN,
            noise_source=rsrc,
            epoch_source=bsrc,
            sampling=samp,
        )
        g_steps = int(guarantee.sum())
        det = {
            "epochs": epochs,
            "n_epochs": n_bounds,
            "eligible_epochs": n_ok,
            "guarantee_epochs": n_ok - len(failing),
            "failing_epochs": failing,
            "false_alarm_bound": n_ok * delta,
            "guarantee_steps": g_steps,
            "failed_per_step": failed_per_step,
            "failing_steps": int(sum(bounds[e + 1] - bounds[e] for e in failing)) if failing else 0,
            "first_failing_t": int(bounds[failing[0]]) if failing else None,
        }
        res = self.finish(ctx, worst, 0.0, details=det, extra_assumptions=extra, covered=intervals(guarantee))
        if res.status != "holds":  # a run-level hypothesis failed (or a violation): no epoch carries a guarantee
            res.details.update(guarantee_epochs=0, guarantee_steps=0)
        return res


def _ranges(es) -> str:
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in intervals_ranges(es))


def intervals_ranges(es):
    """Consecutive runs of sorted integers as ``(first, last)`` pairs."""
    out = []
    for e in sorted(es):
        if out and e == out[-1][1] + 1:
            out[-1][1] = e
        else:
            out.append([e, e])
    return [tuple(p) for p in out]
