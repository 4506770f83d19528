"""``brelax bench``: speed and memory of brelax, as ratios to baselines measured in the same run.

The machine this runs on is shared and noisy, so no figure is an absolute
time: every speed figure is the median over repeats of ``t(subject) /
t(baseline)``, the two timed back to back in each repeat (so a slow spell
hits both). Sections (one module each):

* :mod:`bench.kernels` -- exact ternary (per tensor, per channel), level sets
  against Lloyd's heuristic, peak memory;
* :mod:`bench.backends` -- torch against NumPy for the same projections;
* :mod:`bench.training` -- optimizer overhead in a ResNet-20 training step,
  against plain SGD and torchao PARQ;
* :mod:`bench.convergence` -- steps and time to the planted objective.

A section whose dependencies do not import reports ``"not available: ..."``
instead of rows; that is a result, not an error.
"""
