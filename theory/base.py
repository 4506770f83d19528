"""The shape every result shares: a name, a statement, assumptions, a bound and a check."""

from __future__ import annotations

from .assumptions import AOC, WEIGHTED_AOC
from .context import Context
from .result import Result, evaluate, make_result

#: Part I's AOC hypotheses: when only these fail, the status is "aoc-exceeded-calibration".
AOC_ASSUMPTIONS = {AOC.name, WEIGHTED_AOC.name}


class TheoryResult:
    """A result of ``theory/THEORY.md`` as code.

    Subclasses set ``name``, ``statement`` (one line), ``assumptions`` (a list
    of :class:`~theory.result.Assumption`, the hypotheses its proof uses),
    ``relation`` (``"<="``: measured must not exceed the bound; ``">="``: must
    not fall below it), ``label``, ``kind`` and implement :meth:`check`. A result whose
    claim compares the measurement with one formula of the constants also has ``bound``,
    and its check computes the right side through it (so ``bound`` is what is checked);
    results without such a formula (identities, enumerations) have none.
    """

    name = ""
    #: The result's label in THEORY.md ("Theorem II.4"): the key of :data:`theory.proofs.PROOFS`.
    label = ""
    #: "conformance", "guarantee" or "projector" (:data:`theory.result.KINDS`).
    kind = "conformance"
    #: True for a claim made step by step (it fills ``covered`` step by step).
    stepwise = False
    statement = ""
    assumptions: list = []
    relation = "<="
    t0_rule = "any"  # how the default window start is chosen: "any" (0) or "constant" (mu, g fixed)

    def check(self, trajectory, **kw) -> Result:  # pragma: no cover - interface
        """Check the result on one piece of evidence.

        Parameters
        ----------
        trajectory : a :class:`brelax.Trajectory` or any object with its fields
            (projection and prox results take a projector instead).
        **kw : constants overriding the defaults: ``L``, ``f_lower``, ``t0``, ``d``,
            and per result ``R``, ``eps``, ``kappa``, ``tol``, ``problem``, ...

        Returns
        -------
        Result
            ``measured``, ``bound``, ``ratio``, ``holds``, ``status`` and the
            evaluated assumptions.

        Raises
        ------
        ValueError
            A required trajectory field is missing, the arrays have inconsistent
            lengths, or ``t0`` is outside ``0..T``.
        """
        raise NotImplementedError

    def context(self, trajectory, **kw) -> Context:
        ctx = trajectory if isinstance(trajectory, Context) else Context(trajectory, **kw)
        ctx.t0 = ctx.default_t0(self.t0_rule) if ctx.t0 is None else ctx.t0
        ctx.consts = {}
        return ctx

    def finish(
        self,
        ctx,
        measured,
        bound,
        tolerance=0.0,
        details=None,
        extra_assumptions=(),
        covered=None,
        certified=None,
        conforming=None,
    ) -> Result:
        """Evaluate the assumptions on ``ctx`` and assemble the Result."""
        assumptions = evaluate(list(self.assumptions) + list(extra_assumptions), ctx)
        det = {"t0": ctx.t0, "T": ctx.T, "L": ctx.L, "L_source": ctx.L_source, "f_lower": ctx.f_lower}
        det.update(ctx.consts)
        det.update(details or {})
        res = make_result(
            self.name,
            self.statement,
            assumptions,
            measured,
            bound,
            self.relation,
            tolerance,
            problem=ctx.problem_name,
            method=ctx.method,
            details=det,
            covered=covered,
            kind=self.kind,
            certified=certified,
            conforming=conforming,
        )
        failed = res.failed_assumptions
        if failed and res.status == "assumption-not-met" and set(failed) <= AOC_ASSUMPTIONS:
            # A calibrated AOC constant exceeded: shown with both numbers, apart from ordinary unmet hypotheses.
            res.status = "aoc-exceeded-calibration"
            res.details["aoc_measured_vs_calibrated"] = "; ".join(res.assumptions[k]["detail"] for k in failed)
        return res

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.statement}>"
