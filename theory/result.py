"""The outcome of checking one result, PEPit style :cite:`goujaud2024pepit`: ``(measured, bound)`` and a status.

A :class:`Result` says what was measured, what the theory bounds it by, and
whether the theory's assumptions held along the evidence. The status is

* ``"holds"``: every assumption held and the measured value satisfies the bound;
* ``"violated"``: every assumption held and the bound failed; this is a bug
  (in the code that produced the evidence, or in the theory) and fails
  ``brelax verify``;
* ``"assumption-not-met"``: some assumption failed (it is named in
  ``assumptions``); the numbers are still reported, but the theory claims
  nothing about them;
* ``"aoc-exceeded-calibration"``: Part I's theorems only: the run's measured AOC constant
  ``sup delta_t`` exceeds the one calibrated on another run. Not a violation (the theory
  claims nothing), but not an ordinary unmet assumption either: a defect can show up this
  way, and one present in both runs cannot be seen at all (THEORY.md, section 13).

Every result has a *kind* (:data:`KINDS`): ``"conformance"`` (the record agrees with the
algorithm: identities and inequalities that hold for any correct record, whatever f does; they
catch implementation bugs and never count as convergence), ``"guarantee"`` (a descent or rate
result; its ``covered`` steps are those where every hypothesis held, a positive descent
coefficient included, and the inequality held; ``certified`` the subset where its right-hand
side is at most ``f(x_t)`` plus the tolerance, so f provably did not go up) or ``"projector"``
(checks of a projector or prox, no trajectory).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

STATUSES = ("holds", "violated", "assumption-not-met", "aoc-exceeded-calibration")
#: What a result says about a run (see the module docstring).
KINDS = ("conformance", "guarantee", "projector")


@dataclass
class Assumption:
    """A named, checkable predicate: ``predicate(ctx) -> (ok, detail)``."""

    name: str
    predicate: Callable
    #: True when the assumption says which runs the result is about (a method class, a problem class,
    #: what the record holds): a run outside that scope is not the result's business, and the report
    #: does not list it among the reasons a step lacks a guarantee.
    scope: bool = False

    def __call__(self, ctx) -> tuple:
        ok, detail = self.predicate(ctx)
        return bool(ok), str(detail)


@dataclass
class Result:
    """One check of one result on one piece of evidence.

    Attributes
    ----------
    name, statement : str
        The result's short name (``"lemma_b"``) and its one-line statement.
    problem, method : str
        What the evidence came from (empty for problem-free checks).
    measured, bound : float or None
        The measured quantity and the theory's bound on it; ``relation`` says
        which way (``measured <= bound`` or ``measured >= bound``).
    ratio : float or None
        ``measured / bound`` when the bound is finite and non-zero.
    holds : bool or None
        Whether ``measured relation bound`` held (within ``tolerance``); None if
        it could not be evaluated.
    status : one of :data:`STATUSES`
    assumptions : dict
        ``{name: {"ok": bool, "detail": str}}``.
    details : dict
        Anything else measured (JSON-serialisable after :meth:`to_dict`).
    covered : list of [start, stop)
        Half-open step intervals on which this result's assumptions held *and*
        its per-step inequality held with a finite bound (see :func:`intervals`).
        Empty for problem-free results and for whole-run results without a
        per-step inequality. For a guarantee these are the *guarantee steps*.
    kind : one of :data:`KINDS`
    certified : list of [start, stop)
        Guarantee results: the covered steps whose right-hand side is at most ``f(x_t)`` plus the
        tolerance (f provably did not increase there).
    conforming : list of [start, stop)
        A guarantee with a conformance part (Theorem II.6 (i)): the steps where that part held.
    """

    name: str
    statement: str
    problem: str = ""
    method: str = ""
    measured: float | None = None
    bound: float | None = None
    ratio: float | None = None
    holds: bool | None = None
    status: str = "assumption-not-met"
    assumptions: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    relation: str = "<="
    tolerance: float = 0.0
    covered: list = field(default_factory=list)
    kind: str = ""
    certified: list = field(default_factory=list)
    conforming: list = field(default_factory=list)

    @property
    def failed_assumptions(self) -> list:
        return [k for k, v in self.assumptions.items() if not v["ok"]]

    def to_dict(self) -> dict:
        """A JSON-safe dict: numpy scalars become Python numbers, NaN becomes None, inf ``"inf"``."""
        return _jsonable(asdict(self))

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, **kw)

    @classmethod
    def from_dict(cls, d: dict) -> Result:
        d = dict(d)
        for k in ("measured", "bound", "ratio", "tolerance"):
            if isinstance(d.get(k), str):
                d[k] = float(d[k])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return [_jsonable(v) for v in o.tolist()]
    if isinstance(o, (np.bool_, bool)):
        return bool(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        v = float(o)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    return o


def compare(measured, bound, relation: str = "<=", tolerance: float = 0.0):
    """``measured <= bound + tolerance`` (or ``>= bound - tolerance``); None if either is missing."""
    if measured is None or bound is None:
        return None
    m, b = float(measured), float(bound)
    if math.isnan(m) or math.isnan(b):
        return None
    if relation == "<=":
        return bool(m <= b + tolerance)
    if relation == ">=":
        return bool(m >= b - tolerance)
    raise ValueError(f"relation must be '<=' or '>=', got {relation!r}")


def intervals(mask, offset: int = 0) -> list:
    """The runs of True in a boolean array as half-open intervals ``[[start, stop), ...]``.

    Parameters
    ----------
    mask : array of bool, one entry per step
    offset : int
        Added to every index (the step number of ``mask[0]``).

    Returns
    -------
    list of [int, int]
    """
    m = np.asarray(mask, dtype=bool).ravel()
    if m.size == 0:
        return []
    d = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [[int(a) + offset, int(b) + offset] for a, b in zip(starts, stops, strict=True)]


def covered_steps(covered) -> int:
    """The number of steps in a list of half-open intervals (overlaps counted once)."""
    steps = set()
    for a, b in covered:
        steps.update(range(int(a), int(b)))
    return len(steps)


def ratio_of(measured, bound):
    if measured is None or bound is None:
        return None
    m, b = float(measured), float(bound)
    if not (math.isfinite(m) and math.isfinite(b)) or b == 0:
        return None
    return m / b


def make_result(
    name,
    statement,
    assumptions: dict,
    measured,
    bound,
    relation="<=",
    tolerance=0.0,
    problem="",
    method="",
    details=None,
    covered=None,
    kind="",
    certified=None,
    conforming=None,
) -> Result:
    """Assemble a Result and decide its status from the assumptions and the comparison.

    Any failed assumption gives ``"assumption-not-met"`` whatever the numbers
    say; a comparison that cannot be evaluated with every assumption met is
    reported as ``"assumption-not-met"`` under the extra assumption
    ``"bound computable"`` rather than passed silently. ``covered`` (step
    intervals) is kept only when the status is ``"holds"``.
    """
    assumptions = dict(assumptions)
    holds = compare(measured, bound, relation, tolerance)
    if holds is None and all(v["ok"] for v in assumptions.values()):
        assumptions["bound computable"] = {"ok": False, "detail": f"measured={measured}, bound={bound}"}
    if not all(v["ok"] for v in assumptions.values()):
        status = "assumption-not-met"
    else:
        status = "holds" if holds else "violated"
    return Result(
        name=name,
        statement=statement,
        problem=problem,
        method=method,
        measured=None if measured is None else float(measured),
        bound=None if bound is None else float(bound),
        ratio=ratio_of(measured, bound),
        holds=holds,
        status=status,
        assumptions=assumptions,
        details=dict(details or {}),
        relation=relation,
        tolerance=float(tolerance),
        covered=_ivs(covered) if status == "holds" else [],
        kind=kind,
        certified=_ivs(certified) if status == "holds" else [],
        conforming=_ivs(conforming) if status in ("holds", "assumption-not-met") else [],
    )


def _ivs(ivs) -> list:
    return [list(map(int, iv)) for iv in (ivs or [])]


def evaluate(assumptions, ctx) -> dict:
    """Run every :class:`Assumption` on ``ctx``: ``{name: {"ok", "detail"}}``."""
    out = {}
    for a in assumptions:
        ok, detail = a(ctx)
        out[a.name] = {"ok": ok, "detail": detail, "scope": a.scope}
    return out


def summarize(results) -> dict:
    """Counts by status, and ``ok``: no result is ``"violated"``."""
    counts = {s: 0 for s in STATUSES}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    names = sorted({r.name for r in results})
    return {
        "total": len(results),
        "counts": counts,
        "distinct_results": len(names),
        "names": names,
        "ok": counts["violated"] == 0,
    }
