"""The Coq index (theory/proofs.py) against THEORY.md, the Coq sources, the docs page and the build."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import theory
from theory import proofs
from theory.proofs import PROOFS, Proof

ROOT = Path(__file__).resolve().parents[1]
THEORY_MD = (ROOT / "theory" / "THEORY.md").read_text()


def statement(label: str) -> str:
    """THEORY.md's text from the bold ``label`` to its proof (or to the next result when none)."""
    start = THEORY_MD.index(f"**{label}")
    rest = THEORY_MD[start + len(label) + 2 :]
    ends = [m.start() for m in (re.search(r"\*Proof\.\*", rest), proofs.LABEL.search(rest)) if m is not None]
    return rest[: min(ends)] if ends else rest


def block(label: str) -> str:
    """THEORY.md's text from the bold ``label`` to the next result's label or the next heading."""
    start = THEORY_MD.index(f"**{label}")
    rest = THEORY_MD[start + len(label) + 2 :]
    ends = [m.start() for m in (proofs.LABEL.search(rest), re.search(r"^#", rest, re.MULTILINE)) if m is not None]
    return rest[: min(ends)] if ends else rest


def test_every_label_of_theory_md_is_indexed_and_nothing_else():
    labels = proofs.theory_labels(THEORY_MD)
    assert "Theorem II.8" in labels and "Lemma A" in labels  # the label parser reads the document
    assert sorted(set(labels) - set(PROOFS)) == []
    assert sorted(set(PROOFS) - set(labels)) == []


def test_every_registered_result_has_a_proof_entry():
    # A result of the theory registry without a Coq theorem must be marked hand-proved with a reason.
    for name, cls in theory.RESULTS.items():
        if cls.label:
            assert cls.label in PROOFS, f"{name}: label {cls.label!r} not in theory.proofs.PROOFS"
            p = PROOFS[cls.label]
            assert p.kind == "coq" or p.reason, name
            assert theory.proof_of(cls.label) == p.kind


def test_coq_entries_name_declared_theorems():
    decls = proofs.declarations()
    coq = {label: p for label, p in PROOFS.items() if p.kind == "coq"}
    assert len(coq) >= 10  # the bar: at least 10 results machine-checked
    for label, p in coq.items():
        text = (proofs.COQ_DIR / p.file).read_text()
        for name in p.theorems:
            assert re.search(rf"^\s*(Theorem|Lemma) {re.escape(name)}\b", text, re.MULTILINE), (label, name)
            assert name in decls[p.file]


def test_no_escape_hatch_in_the_coq_sources():
    assert sorted(proofs.COQ_DIR.glob("*.v")), "no Coq sources"
    assert proofs.escape_hatches() == []
    for path in proofs.COQ_DIR.glob("*.v"):
        code = proofs.strip_comments(path.read_text())
        assert not re.search(r"\b(Admitted|admit|Axiom|Parameter)\b", code), path.name


def test_escape_hatches_are_found_in_code_not_in_comments(tmp_path):
    (tmp_path / "A.v").write_text(
        "(* Admitted in a (* nested *) comment *)\nLemma x : True.\nProof. admit.\nAdmitted.\n"
    )
    (tmp_path / "B.v").write_text('Axiom ax : False.\nDefinition s := "Parameter".\n')
    assert proofs.escape_hatches(tmp_path) == ["A.v:3: admit", "A.v:4: Admitted", "B.v:1: Axiom"]
    assert proofs.declarations(tmp_path) == {"A.v": ["x"], "B.v": []}


def test_assumptions_are_parsed_per_theorem():
    script = proofs.assumptions_script({"X": Proof("coq", "Steps.v", ("a", "b"))})
    assert script.splitlines()[0] == "From Brelax Require Import Steps."
    assert "Print Assumptions Brelax.Steps.b." in script
    out = "@@ Brelax.Steps.a\nClosed under the global context\n@@ Brelax.Steps.b\nAxioms:\nax : False\n"
    assert proofs.parse_assumptions(out) == {
        "Brelax.Steps.a": proofs.CLOSED,
        "Brelax.Steps.b": "Axioms:\nax : False",
    }


def test_proof_entries_are_validated():
    with pytest.raises(ValueError, match="reason"):
        Proof("hand")
    with pytest.raises(ValueError, match="kind"):
        Proof("paper", reason="x")
    with pytest.raises(ValueError, match="theorems"):
        Proof("coq", "Steps.v")
    assert Proof("coq", "Steps.v", ("lemma_a",)).qualified() == ("Brelax.Steps.lemma_a",)


def test_theorem_ii8_states_the_ct_nonnegativity_hypothesis():
    # Without c_t >= 0 the PL substitution points the wrong way (gd at g = 3/L is a counterexample).
    assert r"c_t \ge 0" in statement("Theorem II.8"), statement("Theorem II.8")
    assert "c_t >= 0" in theory.RESULTS["pl_rate"].statement
    coq = (proofs.COQ_DIR / PROOFS["Theorem II.8"].file).read_text()
    assert re.search(r"Theorem pl_step[^.]*0 <= c ->", coq)


def test_theory_md_links_each_result_to_its_proof():
    for label, p in PROOFS.items():
        text = block(label)
        assert proofs.theory_line(label) in text, label
        assert ("*Checked:* theory/coq/" in text) == (p.kind == "coq"), label


def test_docs_page_carries_the_generated_table():
    page = (ROOT / "docs" / "proofs.md").read_text()
    assert proofs.table() in page
    assert "make proofs" in page
    assert "proofs" in (ROOT / "docs" / "index.md").read_text()


@pytest.mark.slow
def test_make_proofs_builds_the_development():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^proofs:", makefile, re.MULTILINE)
    assert "make proofs" in (ROOT / ".ci" / "run").read_text()
    if shutil.which("coqc") is None:
        print("coqc not found: the Coq build was not run here (CI installs Coq and runs it)")
        return
    done = subprocess.run(["make", "proofs"], cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    n_main = sum(len(p.theorems) for p in PROOFS.values())
    assert f"{n_main} main theorems" in done.stdout
    assert "closed under the global context" in done.stdout
