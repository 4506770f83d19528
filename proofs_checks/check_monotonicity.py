"""Evidence for ``projection_monotonicity``: every step of every lazy run, minibatch runs included.

Monotonicity of the exact projection gives ``<G_t, D_t + (mu_(t+1) - mu_t) r_t> <= -(1 - mu_(t+1)) g ||G_t||^2``
on every step, whatever the flips, with the gradient the step actually used; with mu fixed also
``mu delta_t <= 1``. It needs no constant, so nothing is estimated; the window is the whole run.
"""

from __future__ import annotations

from theory import ProjectionMonotonicity

from .common import over_runs
from .suite import HEAVY_BALL_SPECS, LAZY_SPECS

RESULTS = ("projection_monotonicity",)


def run(suite, projectors=None):
    # heavy-ball runs too: Theorem II.2 holds for any recorded direction, here the anchor step m_t
    return over_runs(ProjectionMonotonicity(), suite.runs(LAZY_SPECS + HEAVY_BALL_SPECS))
