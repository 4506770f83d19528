"""Scripts that regenerate every figure of brelax from scratch, deterministically from a seed.

Each figure is one module ``figures.<name>`` with ``make(out, quick, seed)``
and a ``main`` (``python -m figures.<name> --out DIR [--quick] [--seed S]``);
``brelax figures --out DIR`` runs them all (:mod:`figures.cli`). Every figure
writes ``NAME.png``, ``NAME.pdf`` and the data behind it (``NAME.csv`` or
``NAME.json``). See ``figures/README.md``.
"""

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
)
