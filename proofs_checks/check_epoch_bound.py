"""Evidence for ``epoch_bound``: Theorem II.10 summed over each epoch, the full loss at epoch ends.

The minibatch runs record ``f(x_t)`` at every point (the driver knows the full objective), so the
loss at each epoch end is there. The epoch length is the sampler's, ``ceil(n_samples / batch_size)``
batches (with replacement: blocks of that many batches), from the problem and the run's spec, known
before the run. ``sigma_e^2`` is estimated inside the check on the earlier epochs only; the per-epoch
false-alarm probability is ``theory.epochbound.EPOCH_DELTA``, fixed in advance. Only the run drawn
with replacement can carry a guarantee; the reshuffled runs report that hypothesis as not met.
"""

from __future__ import annotations

import math

from theory.epochbound import EpochBound

from .suite import BC_SGD, BR_SGD, BR_SGD_WR, label

RESULTS = ("epoch_bound",)


def steps_per_epoch(problem, spec) -> int:
    """Batches per epoch of the run's sampler (:class:`brelax.problems.MinibatchSampler`, ``drop_last=False``)."""
    return math.ceil(problem.n_samples / spec.batch_size)


def run(suite, projectors=None):
    out = []
    for prob, traj, pspec, spec in suite.runs((BR_SGD, BC_SGD, BR_SGD_WR)):
        r = label(EpochBound().check(traj, steps_per_epoch=steps_per_epoch(prob, spec)), pspec, spec)
        r.details.setdefault("window", "whole run, epoch by epoch (epoch 0 only estimates sigma^2)")
        out.append(r)
    return out
