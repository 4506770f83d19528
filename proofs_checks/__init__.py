"""Evidence for every result of ``theory/``: embedded default problems, runs, and ``brelax verify``.

One module per result (``check_*.py``) builds that result's evidence on the
default problems (planted least squares at several m/n and noise levels,
logistic regression and an MLP on scikit-learn's digits) with every method
the result applies to, and returns :class:`theory.Result` objects.
:mod:`proofs_checks.cli` runs them all and writes the reports with the
coverage of every trajectory (:mod:`proofs_checks.coverage`);
:func:`verify_run` checks a run someone saved (:mod:`proofs_checks.run_file`);
:mod:`proofs_checks.mutants` holds the seeded defects the checks must catch.
"""


def verify_run(traj_or_path, **kw):
    """Every trajectory result on one saved run; see :func:`proofs_checks.run_file.verify_run`."""
    from .run_file import verify_run as _verify_run

    return _verify_run(traj_or_path, **kw)


__all__ = ["verify_run"]
