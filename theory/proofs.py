"""Which results of THEORY.md are machine-checked in Coq (``theory/coq/``), and the check itself.

:data:`PROOFS` maps every result label of ``theory/THEORY.md`` ("Lemma A", "Theorem II.4", ...) to a
:class:`Proof`: ``kind="coq"`` names the file of ``theory/coq/`` and its theorems, ``kind="hand"`` says
why the result stays hand-proved.

The Coq development works over an arbitrary real closed field ``R`` and the space ``'rV[R]_n`` of
row vectors with the Euclidean inner product; ``f``, its gradient, the projection maps and every
hypothesis of a statement are section variables. Closing a section generalizes each theorem over
them, so ``Print Assumptions`` reports "Closed under the global context": no axiom is used (the
standard library's real numbers are avoided because they carry axioms).

``python3 theory/proofs.py`` (``make proofs``) builds the development and fails when a source
contains ``Admitted``, ``admit``, ``Axiom``, ``Parameter`` or ``Conjecture``, or when
``Print Assumptions`` of a theorem listed here shows anything but a closed context; it prints the
number of theorems checked. ``python3 theory/proofs.py --table`` prints the table of
``docs/proofs.md``. This module imports only the standard library, so that the proofs build
without the project's environment.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: The Coq development.
COQ_DIR = Path(__file__).resolve().parent / "coq"
#: Its logical root: ``From Brelax Require Import Steps``.
COQ_ROOT = "Brelax"
#: Escape hatches: a proof that uses one of them proves nothing.
FORBIDDEN = re.compile(r"\b(Admitted|admit|Axioms?|Parameters?|Conjecture|give_up)\b")
#: Declarations that Coq checks (every one of them compiles in ``make proofs``).
DECLARATION = re.compile(r"^\s*(?:Theorem|Lemma)\s+([A-Za-z_][A-Za-z0-9_']*)", re.MULTILINE)
#: What ``Print Assumptions`` says of a theorem that uses no axiom and no section variable.
CLOSED = "Closed under the global context"
#: The labels of THEORY.md's results: the bold name that opens each statement.
LABEL = re.compile(r"\*\*((?:Theorem|Lemma|Proposition|Corollary|Fact) [A-Z0-9]+(?:\.[0-9]+)?)[ .(*]")


@dataclass(frozen=True)
class Proof:
    """How one result of THEORY.md is proved.

    Parameters
    ----------
    kind : str
        ``"coq"`` (machine-checked) or ``"hand"``.
    file : str
        For ``"coq"``: the file of ``theory/coq/`` holding the theorems, e.g. ``"Steps.v"``.
    theorems : tuple of str
        For ``"coq"``: the Coq theorems that state the result (several parts allowed).
    reason : str
        For ``"hand"``: why it is not machine-checked. For ``"coq"``: which part, if any, is still
        hand-proved (empty when the whole statement is checked).

    Raises
    ------
    ValueError
        When ``kind`` is neither, a ``"coq"`` proof names no file or theorem, or a ``"hand"`` proof
        gives no reason.

    Examples
    --------
    >>> Proof("coq", "Steps.v", ("lemma_a",)).kind
    'coq'
    """

    kind: str
    file: str = ""
    theorems: tuple[str, ...] = ()
    reason: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("coq", "hand"):
            raise ValueError(f"kind must be 'coq' or 'hand', got {self.kind!r}")
        if self.kind == "coq" and (not self.file.endswith(".v") or not self.theorems):
            raise ValueError(
                f"a coq proof needs a .v file and theorems, got file={self.file!r} theorems={self.theorems!r}"
            )
        if self.kind == "hand" and not self.reason:
            raise ValueError("a hand proof needs a reason, got reason=''")

    def qualified(self) -> tuple[str, ...]:
        """The theorems' full Coq names, e.g. ``Brelax.Steps.lemma_a`` (empty for a hand proof)."""
        module = self.file.removesuffix(".v")
        return tuple(f"{COQ_ROOT}.{module}.{t}" for t in self.theorems)


def _coq(file: str, *theorems: str, partial: str = "") -> Proof:
    return Proof("coq", file, theorems, partial)


def _hand(reason: str) -> Proof:
    return Proof("hand", reason=reason)


_COORDINATES = "coordinate-level (entries, signs, level patterns), outside the inner-product development"

#: Every result of THEORY.md, by its label (a test keeps the keys equal to the document's labels).
PROOFS: dict[str, Proof] = {
    "Proposition 2.1": _hand("topology (closedness, existence of a minimiser by compactness)"),
    "Lemma 3.1": _hand(_COORDINATES),
    "Lemma 3.2": _hand(_COORDINATES + "; a one-variable quadratic"),
    "Lemma 3.3": _hand(_COORDINATES + "; nearest-level patterns"),
    "Proposition 4.1": _coq(
        "Nearest.v",
        "cone_orthogonality",
        "cone_projection_orthogonal",
        partial="the remark that F1 fails for fixed-scale sets, and idempotence (F3)",
    ),
    "Proposition 5.1": _coq(
        "Prox.v",
        "psi_split",
        "prox_lemma",
        partial="the converse inclusion (every minimiser has this form when lambda > 0)",
    ),
    "Proposition 5.2": _coq(
        "Prox.v",
        "relaxed_keeps_projection",
        partial="uniqueness of the projection of w for mu > 0 (the equality case of the triangle inequality)",
    ),
    "Lemma A": _coq("Steps.v", "lemma_a"),
    "Lemma B": _coq("Steps.v", "step_inner_identity", "lemma_b"),
    "Proposition 9.1": _coq("Steps.v", "fact_c", "fact_c_delta"),
    "Proposition 9.2": _hand(_COORDINATES),
    "Theorem 1": _coq(
        "Telescope.v",
        "theorem1_step",
        "theorem1_sum",
        "theorem1_min",
        partial="the closing remark that f(x_t) converges (a monotone bounded sequence)",
    ),
    "Theorem 2": _coq(
        "Telescope.v",
        "theorem2_step",
        "theorem2_sum",
        "theorem2_mu_sum",
        partial="the optimal epsilon of the correction box (a root of a quadratic, used by the code)",
    ),
    "Corollary 3": _hand(_COORDINATES + " (counting sign flips)"),
    "Theorem II.1": _coq("Nearest.v", "nearest_point_monotone", "nearest_point_subgradient"),
    "Theorem II.2": _coq("Steps.v", "lazy_step_identity", "lazy_step_against_gradient", "aoc_mu_delta_le1"),
    "Lemma II.3": _coq(
        "Descent.v",
        "convex_projection_firm",
        "stable_step_norm",
        "stable_norm_bound",
        "pattern_gap_row",
        "flip_excess_bound",
        "flip_excess_apriori",
        "recorded_flip_cost",
        "recorded_flip_excess",
        partial="(b) summed over the scale rows and the binary bound (c), which count code changes "
        "entry by entry (coordinate-level), and the segment bound (f) for softmax models (a bound on the "
        "softmax log-partition along a segment, outside the inner-product development)",
    ),
    "Theorem II.4": _coq(
        "Descent.v",
        "flip_descent_ct",
        "flip_descent_u",
        "stable_part",
        "flip_descent",
        "flip_descent_uform",
        "flip_descent_apriori",
        "flip_descent_recorded",
        partial="the bound B_t on the pattern gap that Ebar_t takes (Lemma II.3(b)-(c))",
    ),
    "Corollary II.5": _coq("Telescope.v", "telescope_sum", "flip_descent_sum"),
    "Theorem II.6": _coq(
        "Prox.v",
        "prox_step_descent_relaxed",
        "prox_step_descent_pgd",
        "prox_descent_relaxed",
        "prox_descent_pgd",
    ),
    "Theorem II.7": _coq("Telescope.v", "stationarity_constant", "window_min", "stationarity_rate"),
    "Theorem II.8": _coq(
        "Telescope.v",
        "pl_step",
        "pl_unrolled",
        partial="the PL inequality of least squares (the smallest nonzero eigenvalue of A^T A)",
    ),
    "Proposition II.9": _coq(
        "Descent.v",
        "aoc_flip_bound",
        partial="the lower bound mu l (a_t + a_t+1) sqrt(k) on the step's norm from the flipped entries, "
        + _COORDINATES,
    ),
    "Theorem II.12": _coq(
        "HeavyBall.v",
        "W_nonneg",
        "W_contract",
        "W_young",
        "heavy_ball_geometry",
        "heavy_ball_stable_excess",
        "heavy_ball_step",
        "heavy_ball_first_step",
        "heavy_ball_step_min",
        "heavy_ball_first_step_min",
        "heavy_ball_iterates",
        "heavy_ball_kappa_pos",
        "heavy_ball_descent",
        partial="that M_t is linear, symmetric and idempotent with M_t y_t = P_t (the orthogonal projector "
        "of the pattern and the best scale, Lemma 3.2), and the bound B_t on the flip e_t that Ebar_t takes "
        "(Lemma II.3(b)-(c) when no row turns against q_t), " + _COORDINATES,
    ),
    "Theorem II.10": _hand("conditional expectations of minibatch gradients; probability is not formalized"),
    "Theorem II.11": _hand("the Azuma-Hoeffding inequality for martingales; probability is not formalized"),
}


def theory_labels(text: str) -> list[str]:
    """The result labels of THEORY.md's ``text``, in order, each once.

    Parameters
    ----------
    text : str
        The document.

    Returns
    -------
    list of str
        Labels such as ``"Lemma A"``, ``"Theorem II.4"``: the bold names that open statements.

    Examples
    --------
    >>> theory_labels("**Lemma A.** x. **Theorem II.4 (descent).** y. **Lemma A.**")
    ['Lemma A', 'Theorem II.4']
    """
    return list(dict.fromkeys(LABEL.findall(text)))


def strip_comments(text: str) -> str:
    """Coq source ``text`` without its (possibly nested) ``(* ... *)`` comments and strings."""
    out: list[str] = []
    depth, i, in_string = 0, 0, False
    while i < len(text):
        pair = text[i : i + 2]
        if in_string:
            in_string = text[i] != '"'
            i += 1
        elif pair == "(*":
            depth, i = depth + 1, i + 2
        elif pair == "*)" and depth:
            depth, i = depth - 1, i + 2
        elif depth:
            i += 1
        elif text[i] == '"':
            in_string, i = True, i + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def escape_hatches(coq_dir: Path = COQ_DIR) -> list[str]:
    """``"File.v:line: word"`` for every forbidden word in the code (not the comments) of ``coq_dir``."""
    found = []
    for path in sorted(coq_dir.glob("*.v")):
        code = strip_comments(path.read_text())
        for m in FORBIDDEN.finditer(code):
            line = code.count("\n", 0, m.start()) + 1
            found.append(f"{path.name}:{line}: {m.group(0)}")
    return found


def declarations(coq_dir: Path = COQ_DIR) -> dict[str, list[str]]:
    """The ``Theorem`` and ``Lemma`` names of each file of ``coq_dir`` (comments excluded)."""
    return {p.name: DECLARATION.findall(strip_comments(p.read_text())) for p in sorted(coq_dir.glob("*.v"))}


class ProofError(RuntimeError):
    """The development does not build, uses an escape hatch, or a theorem depends on an axiom."""


def _run(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ProofError(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def assumptions_script(proofs: dict[str, Proof]) -> str:
    """A Coq file printing the assumptions of every theorem of ``proofs``, each after a ``@@ name`` marker."""
    modules = sorted({p.file.removesuffix(".v") for p in proofs.values() if p.kind == "coq"})
    lines = [f"From {COQ_ROOT} Require Import {' '.join(modules)}."]
    for p in proofs.values():
        for name in p.qualified():
            lines += [f'Goal True. idtac "@@ {name}". Abort.', f"Print Assumptions {name}."]
    return "\n".join(lines) + "\n"


def parse_assumptions(output: str) -> dict[str, str]:
    """Map each theorem of an :func:`assumptions_script` run to what ``Print Assumptions`` printed."""
    found: dict[str, str] = {}
    for chunk in output.split("@@ ")[1:]:
        name, _, rest = chunk.partition("\n")
        found[name.strip()] = rest.strip()
    return found


def build(coq_dir: Path = COQ_DIR, proofs: dict[str, Proof] | None = None) -> str:
    """Build the development and check it; return the one-line summary.

    Parameters
    ----------
    coq_dir : Path
        The directory with ``_CoqProject`` and the ``.v`` files.
    proofs : dict, optional
        The index to check (default :data:`PROOFS`).

    Returns
    -------
    str
        The number of theorems checked, and of main theorems closed under the global context.

    Raises
    ------
    ProofError
        On an escape hatch, a build error, a listed theorem that does not exist, or an axiom.
    FileNotFoundError
        When ``coqc`` or ``coq_makefile`` is not installed.
    """
    proofs = PROOFS if proofs is None else proofs
    for tool in ("coqc", "coq_makefile"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(
                f"{tool} not found: install Coq (apt-get install coq libcoq-mathcomp-algebra-tactics)"
            )
    hatches = escape_hatches(coq_dir)
    if hatches:
        raise ProofError("escape hatches in the Coq sources: " + "; ".join(hatches))
    decls = declarations(coq_dir)
    for label, p in proofs.items():
        missing = [t for t in p.theorems if t not in decls.get(p.file, [])]
        if p.kind == "coq" and missing:
            raise ProofError(f"{label}: {p.file} has no Theorem or Lemma {', '.join(missing)}")
    makefile = coq_dir / "CoqMakefile"
    # Regenerating the makefile makes every file look stale: only when _CoqProject changed.
    if not makefile.exists() or makefile.stat().st_mtime < (coq_dir / "_CoqProject").stat().st_mtime:
        _run(["coq_makefile", "-f", "_CoqProject", "-o", "CoqMakefile"], coq_dir)
    _run(["make", "-s", "-f", "CoqMakefile"], coq_dir)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "Assumptions.v"
        script.write_text(assumptions_script(proofs))
        printed = parse_assumptions(_run(["coqc", "-Q", str(coq_dir), COQ_ROOT, str(script)], Path(tmp)))
    main = [name for p in proofs.values() for name in p.qualified()]
    open_ = {name: printed.get(name, "(not printed)") for name in main if printed.get(name) != CLOSED}
    if open_:
        raise ProofError("Print Assumptions is not closed for: " + "; ".join(f"{k}: {v}" for k, v in open_.items()))
    n_decl = sum(len(v) for v in decls.values())
    n_labels = sum(p.kind == "coq" for p in proofs.values())
    return (
        f"make proofs: {n_decl} theorems and lemmas in {len(decls)} files checked by Coq; {len(main)} main theorems "
        f"for {n_labels} of {len(proofs)} THEORY.md results, each {CLOSED.lower()} (no axiom, no Admitted)"
    )


def theory_line(label: str, proofs: dict[str, Proof] | None = None) -> str:
    """The line THEORY.md carries under the statement of ``label``: where it is checked, or why by hand.

    Examples
    --------
    >>> theory_line("Lemma A")
    '*Checked:* theory/coq/Steps.v, lemma_a'
    """
    p = (PROOFS if proofs is None else proofs)[label]
    if p.kind == "hand":
        return f"*Hand-proved:* {p.reason}."
    line = f"*Checked:* theory/coq/{p.file}, {', '.join(p.theorems)}"
    return f"{line}; hand-proved: {p.reason}." if p.reason else line


def table(proofs: dict[str, Proof] | None = None) -> str:
    """The Markdown table of ``docs/proofs.md``: each result, its Coq theorems or why it is hand-proved."""
    proofs = PROOFS if proofs is None else proofs
    rows = ["| result | proof | where | notes |", "|---|---|---|---|"]
    for label, p in proofs.items():
        where = f"`theory/coq/{p.file}`: " + ", ".join(f"`{t}`" for t in p.theorems) if p.kind == "coq" else ""
        note = p.reason.replace("|", "\\|")  # a bar would end the cell
        rows.append(f"| {label} | {p.kind} | {where} | {note} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``make proofs``: build and check the development (exit 0), or print :func:`table` (``--table``)."""
    parser = argparse.ArgumentParser(prog="theory/proofs.py", description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the table of docs/proofs.md and exit")
    args = parser.parse_args(argv)
    if args.table:
        sys.stdout.write(table())
        return 0
    try:
        print(build())
    except FileNotFoundError as e:
        print(f"make proofs: {e}", file=sys.stderr)
        return 2
    except ProofError as e:
        print(f"make proofs: FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
