"""Evidence for every result of ``theory/``: embedded default problems, runs, and ``brelax verify``.

One module per result (``check_*.py``) builds that result's evidence on the
default problems (planted least squares at several m/n and noise levels,
logistic regression and an MLP on scikit-learn's digits) with every method
the result applies to, and returns :class:`theory.Result` objects.
:mod:`proofs_checks.cli` runs them all and writes the reports.
"""
