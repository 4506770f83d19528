(* The Euclidean space R^n of THEORY.md section 1, over an arbitrary real closed field R.

   Vectors are mathcomp row vectors 'rV[R]_n.  Nothing here is an axiom: R and n are section
   variables, so every theorem below (and in the files that import this one) is generalized over
   them when the section closes, and `Print Assumptions` reports "Closed under the global
   context".  The standard library's Reals are avoided on purpose: their construction carries
   the axioms ClassicalDedekindReals.* and functional extensionality. *)
From mathcomp Require Import all_ssreflect all_algebra.
From mathcomp Require Import ring.
Import Order.TTheory GRing.Theory Num.Theory.

Set Implicit Arguments.
Unset Strict Implicit.
Unset Printing Implicit Defensive.

Open Scope ring_scope.

(* An identity between vectors, checked entrywise by `ring`.  The entries are named first:
   the same entry can occur with two convertible but syntactically different type annotations,
   which `ring` would otherwise read as two different atoms. *)
Ltac vec_ring := apply/matrixP => ? ?; rewrite !mxE;
  repeat match goal with |- context [@fun_of_matrix _ _ _ ?u ?j ?i] =>
    let a := fresh "a" in set a := @fun_of_matrix _ _ _ u j i; clearbody a end; ring.

(* x <= y from x^2 <= y^2 and y >= 0. *)
Lemma le_of_sq (R : rcfType) (x y : R) : 0 <= y -> x ^+ 2 <= y ^+ 2 -> x <= y.
Proof.
move=> y0 h; case: (lerP 0 x) => x0; last by apply: le_trans y0; exact: ltW.
by rewrite -(ler_sqr x0 y0).
Qed.

(* 0 <= x - y from y <= x, in the direction used in proofs. *)
Lemma ge0_sub (R : numDomainType) (x y : R) : y <= x -> 0 <= x - y.
Proof. by rewrite subr_ge0. Qed.

Section Euclid.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.

Definition ip (u v : vec) : R := \sum_i u 0 i * v 0 i.
Definition nrm (u : vec) : R := Num.sqrt (ip u u).

Lemma ipC u v : ip u v = ip v u.
Proof. by apply: eq_bigr => i _; rewrite mulrC. Qed.

Lemma ipDl u v w : ip (u + v) w = ip u w + ip v w.
Proof. by rewrite /ip -big_split; apply: eq_bigr => i _; rewrite mxE mulrDl. Qed.

Lemma ipZl c u v : ip (c *: u) v = c * ip u v.
Proof. by rewrite /ip mulr_sumr; apply: eq_bigr => i _; rewrite mxE mulrA. Qed.

Lemma ipNl u v : ip (- u) v = - ip u v.
Proof. by rewrite -scaleN1r ipZl mulN1r. Qed.

Lemma ipDr u v w : ip w (u + v) = ip w u + ip w v.
Proof. by rewrite ipC ipDl ![ip _ w]ipC. Qed.

Lemma ipZr c u v : ip v (c *: u) = c * ip v u.
Proof. by rewrite ipC ipZl ipC. Qed.

Lemma ipNr u v : ip v (- u) = - ip v u.
Proof. by rewrite ipC ipNl ipC. Qed.

Lemma ip0l v : ip 0 v = 0.
Proof. by rewrite /ip big1 // => i _; rewrite mxE mul0r. Qed.

Lemma ip_ge0 u : 0 <= ip u u.
Proof. by apply: sumr_ge0 => i _; rewrite -expr2 sqr_ge0. Qed.

(* Expand inner products of sums, differences and multiples into inner products of atoms. *)
Ltac ip_expand := rewrite ?(ipDl, ipDr, ipNl, ipNr, ipZl, ipZr).

(* Cauchy-Schwarz, squared form: no square root needed. *)
Lemma cs2 u v : ip u v ^+ 2 <= ip u u * ip v v.
Proof.
rewrite -subr_ge0.
have [vv0|] := boolP (0 < ip v v).
  have e : ip v v * (ip u u * ip v v - ip u v ^+ 2) =
           ip (ip v v *: u - ip u v *: v) (ip v v *: u - ip u v *: v).
    ip_expand; rewrite [ip v u]ipC; ring.
  by rewrite -(pmulr_rge0 _ vv0) e ip_ge0.
rewrite -leNgt => vvle; have vv0 : ip v v = 0 by apply/eqP; rewrite eq_le vvle ip_ge0.
have [uu0|] := boolP (0 < ip u u).
  have e : ip u u * (ip u u * ip v v - ip u v ^+ 2) =
           ip (ip u u *: v - ip u v *: u) (ip u u *: v - ip u v *: u).
    ip_expand; rewrite [ip v u]ipC; ring.
  by rewrite -(pmulr_rge0 _ uu0) e ip_ge0.
rewrite -leNgt => uule; have uu0 : ip u u = 0 by apply/eqP; rewrite eq_le uule ip_ge0.
have e1 : ip (u + v) (u + v) = 2 * ip u v by ip_expand; rewrite [ip v u]ipC uu0 vv0; ring.
have e2 : ip (u - v) (u - v) = - (2 * ip u v) by ip_expand; rewrite [ip v u]ipC uu0 vv0; ring.
have h : 2 * ip u v = 0 by apply/eqP; rewrite eq_le -oppr_ge0 -e2 ip_ge0 -e1 ip_ge0.
have -> : ip u v = 0 by move/eqP: h; rewrite mulf_eq0 pnatr_eq0 orFb => /eqP.
by rewrite uu0 mul0r expr2 mul0r subr0.
Qed.

Lemma nrm_ge0 u : 0 <= nrm u.
Proof. exact: sqrtr_ge0. Qed.

Lemma nrm_sq u : nrm u ^+ 2 = ip u u.
Proof. by rewrite sqr_sqrtr // ip_ge0. Qed.

(* Cauchy-Schwarz. *)
Lemma cs u v : ip u v <= nrm u * nrm v.
Proof.
apply: le_of_sq; first by rewrite mulr_ge0 ?nrm_ge0.
by rewrite exprMn !nrm_sq cs2.
Qed.

Lemma cs_abs u v : `|ip u v| <= nrm u * nrm v.
Proof.
apply: le_of_sq; first by rewrite mulr_ge0 ?nrm_ge0.
by rewrite exprMn !nrm_sq real_normK ?num_real // cs2.
Qed.

Lemma nrm_triangle u v : nrm (u + v) <= nrm u + nrm v.
Proof.
apply: le_of_sq; first by rewrite addr_ge0 ?nrm_ge0.
rewrite nrm_sq; ip_expand; rewrite [ip v u]ipC.
rewrite -subr_ge0.
have -> : (nrm u + nrm v) ^+ 2 - (ip u u + ip u v + (ip u v + ip v v)) =
          (nrm u * nrm v - ip u v) + (nrm u * nrm v - ip u v) + (nrm u ^+ 2 - ip u u) + (nrm v ^+ 2 - ip v v) by ring.
by rewrite !nrm_sq !subrr !addr0 addr_ge0 // subr_ge0 cs.
Qed.

Lemma nrmZ c u : nrm (c *: u) = `|c| * nrm u.
Proof. by rewrite /nrm ipZl ipZr mulrA -expr2 sqrtrM ?sqr_ge0 // sqrtr_sqr. Qed.

Lemma nrmN u : nrm (- u) = nrm u.
Proof. by rewrite /nrm ipNl ipNr opprK. Qed.

Lemma nrmB_sym u v : nrm (u - v) = nrm (v - u).
Proof. by rewrite -nrmN opprB. Qed.

(* <a, b> >= ||b||^2 implies <a, b> <= ||a||^2 (both from Cauchy-Schwarz, without square roots). *)
Lemma ip_le_sq a b : ip b b <= ip a b -> ip a b <= ip a a.
Proof.
move=> hb; have [ab0|] := boolP (0 < ip a b); last first.
  by rewrite -leNgt => h; apply: le_trans h (ip_ge0 a).
rewrite -(ler_pmul2r ab0) -expr2; apply: le_trans (cs2 a b) _.
by rewrite ler_wpmul2l // ip_ge0.
Qed.

End Euclid.

Notation "<< u , v >>" := (ip u v) (format "<< u ,  v >>").

Lemma eq_le_ (R : numDomainType) (x y : R) : x = y -> x <= y.
Proof. by move->. Qed.

Ltac ip_expand := rewrite ?(ipDl, ipDr, ipNl, ipNr, ipZl, ipZr).

(* Orient every pair <a, b>, <b, a> the same way, so that `ring` sees one atom. *)
Ltac ip_sym := repeat match goal with
  |- context [ip ?a ?b] => match goal with |- context [ip b a] =>
       tryif constr_eq a b then fail else rewrite [ip b a]ipC end end.

Ltac ip_ring := ip_expand; ip_sym; ring.
Ltac ip_field := ip_expand; ip_sym; field; try done.
