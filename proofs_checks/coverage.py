"""Coverage: per trajectory, on how many steps the record conforms, a guarantee holds, f is certified not to rise.

Three classes of result (:data:`theory.result.KINDS`), counted separately and never mixed:

* **conformance** steps: some conformance result (Lemma A, Theorem II.2, Fact C, the prox distance,
  Proposition II.9, Theorem II.6 (i)) held there. These identities hold for any correct record of
  the algorithm, whatever f does, so they catch implementation bugs and say nothing about convergence.
* **guarantee** steps: some descent or rate result (Theorems II.4, II.6 (ii), II.7, II.8, II.11,
  Theorems 1-2) applied there with every hypothesis holding, a positive descent coefficient
  included, and held.
* **certified** steps: guarantee steps where the guarantee's right-hand side is at most f(x_t) plus
  rounding: f provably did not go up.

``checked_steps`` are the steps whose record holds what the descent checks need: every step of a
NumPy run; for a ``brelax train`` run the steps the run entry says (the sampled steps).
``failed_hypotheses`` maps each hypothesis of a per-step guarantee that failed to the number of
steps without a guarantee where it failed; ``no_guarantee`` has the step ranges and what was
measured there, which ``brelax verify`` prints.

Which trajectory a Result belongs to is recorded in ``details["run"]`` by
:func:`proofs_checks.suite.label` (the embedded runs) and by
:func:`proofs_checks.run_file.verify_run` (a saved run: its path).
"""

from __future__ import annotations

import numpy as np

from theory import TRAJECTORY_RESULTS


def intervals_of(ivs) -> list:
    """A list of ``[start, stop)`` pairs as int tuples (empty ones dropped)."""
    out = []
    for iv in ivs or []:
        a, b = int(iv[0]), int(iv[1])
        if b > a:
            out.append((a, b))
    return out


def _mask(ivs, steps: int) -> np.ndarray:
    m = np.zeros(int(steps), dtype=bool)
    for a, b in intervals_of(ivs):
        m[max(a, 0) : min(b, steps)] = True
    return m


def covered_mask(results, steps: int, kind: str | None = None) -> np.ndarray:
    """The steps covered by some "holds" trajectory result of ``results`` (of ``kind``, if given)."""
    mask = np.zeros(int(steps), dtype=bool)
    for r in results:
        if r.status != "holds" or r.name not in TRAJECTORY_RESULTS or (kind is not None and r.kind != kind):
            continue
        mask |= _mask(r.covered, steps)
    return mask


def conformance_mask(results, steps: int) -> np.ndarray:
    """Steps where a conformance result held (with the conformance parts of guarantee results)."""
    mask = covered_mask(results, steps, "conformance")
    for r in results:
        if r.name in TRAJECTORY_RESULTS:
            mask |= _mask(getattr(r, "conforming", None), steps)
    return mask


def certified_mask(results, steps: int) -> np.ndarray:
    mask = np.zeros(int(steps), dtype=bool)
    for r in results:
        if r.status == "holds" and r.kind == "guarantee":
            mask |= _mask(getattr(r, "certified", None), steps)
    return mask


def _steps_text(ivs) -> str:
    return ", ".join(f"{a}-{b - 1}" if b - a > 1 else f"{a}" for a, b in intervals_of(ivs))


def _no_guarantee(rs, steps, guaranteed) -> tuple[dict, list]:
    """``({hypothesis: steps}, [{"hypothesis", "detail", "steps"}])`` over the steps without a guarantee."""
    counts, lines = {}, []
    free = ~guaranteed
    for r in rs:
        if r.kind != "guarantee" or r.details.get("guarantee_steps") is None:
            continue  # only the per-step guarantees say which step lacks what
        if any(r.assumptions[k].get("scope") for k in r.failed_assumptions):
            continue  # the run is not the kind this result is about (another method, problem or record)
        per_step = dict(r.details.get("failed_per_step") or {})
        if r.status in ("assumption-not-met", "aoc-exceeded-calibration"):
            for name in r.failed_assumptions:
                if name.startswith("at least one step"):
                    continue
                per_step[name] = {"steps": [[0, steps]], "detail": r.assumptions[name]["detail"]}
        for name, f in per_step.items():
            m = _mask(f["steps"], steps) & free
            if not m.any():
                continue
            counts[name] = max(counts.get(name, 0), int(m.sum()))
            from theory.result import intervals

            lines.append({"hypothesis": name, "detail": f.get("detail", ""), "steps": intervals(m), "result": r.name})
    seen, unique = set(), []
    for ln in lines:
        key = (ln["hypothesis"], ln["detail"], str(ln["steps"]))
        if key not in seen:
            seen.add(key)
            unique.append(ln)
    return counts, unique


def coverage(results, runs) -> list:
    """One coverage entry per trajectory.

    Parameters
    ----------
    results : list of theory.Result
        Every result of the verify run; those of one trajectory carry its key in ``details["run"]``.
    runs : list of dict
        ``{"key", "problem", "method", "steps"}`` per trajectory checked, in report order, and
        optionally ``"checked_steps"`` (default: ``steps``) and ``"checked_mask"`` (bool per step: which
        steps those are; guarantee and certified steps are counted among them).

    Returns
    -------
    list of dict
        ``{"problem", "method", "steps", "checked_steps", "conformance_steps", "guarantee_steps",
        "certified_steps", "failed_hypotheses", "no_guarantee", "by"}``; ``by`` maps a guarantee
        result's name to the steps it alone covers.
    """
    by_run = {}
    for r in results:
        by_run.setdefault(r.details.get("run"), []).append(r)
    out = []
    for run in runs:
        rs = by_run.get(run["key"], [])
        steps = int(run["steps"])
        checked = int(run.get("checked_steps", steps))
        # the checked steps, where given (a torch run: the steps with a same-batch record): a guarantee that
        # covers whole epochs (epoch_bound) counts on those steps only, so the fractions stay fractions
        mask = run.get("checked_mask")
        mask = np.ones(steps, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        g = covered_mask(rs, steps, "guarantee") & mask
        failed, lines = _no_guarantee(rs, steps, g | ~mask)
        by = {}
        for r in rs:
            if r.kind == "guarantee":
                m = covered_mask([r], steps) & mask
                if m.any():
                    by[r.name] = int(max(by.get(r.name, 0), m.sum()))
        out.append(
            {
                "problem": run["problem"],
                "method": run["method"],
                "steps": steps,
                "checked_steps": checked,
                "conformance_steps": int(conformance_mask(rs, steps).sum()),
                "guarantee_steps": int(g.sum()),
                "certified_steps": int((certified_mask(rs, steps) & mask).sum()),
                "failed_hypotheses": failed,
                "no_guarantee": lines,
                "by": by,
            }
        )
    return out


def _frac(n, d) -> float:
    return n / d if d else 0.0


def table(cov) -> str:
    """One line per trajectory: checked steps, then conformance, guarantee and certified steps."""
    lines = [
        f"{'problem':28s} {'method':30s} {'checked':>7s} {'conformance':>11s} {'guarantee':>15s} {'certified':>15s}",
        "-" * 112,
    ]
    for c in cov:
        n = c["checked_steps"]
        lines.append(
            f"{c['problem'][:28]:28s} {c['method'][:30]:30s} {n:7d} {c['conformance_steps']:11d} "
            f"{c['guarantee_steps']:6d} ({_frac(c['guarantee_steps'], n):5.3f}) "
            f"{c['certified_steps']:6d} ({_frac(c['certified_steps'], n):5.3f})"
        )
    return "\n".join(lines)


def no_guarantee_lines(cov) -> list:
    """``"run: detail on steps a-b: no descent guarantee"`` for every run with steps left without a guarantee."""
    out = []
    for c in cov:
        if c["guarantee_steps"] >= c["checked_steps"]:
            continue
        for ln in c["no_guarantee"]:
            out.append(
                f"{c['problem']} | {c['method']}: {ln['detail'] or ln['hypothesis']} on steps "
                f"{_steps_text(ln['steps'])}: no descent guarantee ({ln['result']}: {ln['hypothesis']})"
            )
    return out


def short(cov) -> str:
    """The headline: guarantee and certified coverage over all checked steps, and the lowest run."""
    if not cov:
        return "no trajectories checked"
    n = sum(c["checked_steps"] for c in cov)
    g = sum(c["guarantee_steps"] for c in cov)
    k = sum(c["certified_steps"] for c in cov)
    low = min(cov, key=lambda c: _frac(c["guarantee_steps"], c["checked_steps"]))
    return (
        f"guarantee on {g} of {n} checked steps ({_frac(g, n):.3f}), certified on {k} ({_frac(k, n):.3f}); "
        f"lowest guarantee {_frac(low['guarantee_steps'], low['checked_steps']):.3f} "
        f"({low['problem']}, {low['method']})"
    )
