"""Scripts that regenerate every figure of brelax from scratch, deterministically from a seed.

Each figure is one module ``figures.<name>`` with ``make(out, quick, seed)``
and a ``main`` (``python -m figures.<name> --out DIR [--quick] [--seed S]``);
``brelax figures --out DIR`` runs them all (:mod:`figures.cli`). Every figure
writes ``NAME.png``, ``NAME.pdf`` and the data behind it (``NAME.csv`` or
``NAME.json``). See ``figures/README.md``.
"""

import os

# The problems here are tiny: one BLAS thread is faster and reproducible. This only takes effect
# when numpy is not imported yet (``python -m figures.NAME``); style.single_thread_blas covers the rest.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

#: The figures in the order of the issue, as module names.
FIGURES = (
    "objective",
    "aoc",
    "rate",
    "lemma_b",
    "recovery",
    "prox_map",
    "projection_error",
    "weight_histograms",
    "digits_mlp",
    "cifar_curves",
    "flip_excess",
)
