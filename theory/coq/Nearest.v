(* Theorem II.1: every nearest-point map onto any set is monotone (no convexity); Proposition 4.1
   (F1): a projection onto a cone is orthogonal to its residual. *)
From mathcomp Require Import all_ssreflect all_algebra.
From mathcomp Require Import ring.
From Brelax Require Import Euclid.
Import Order.TTheory GRing.Theory Num.Theory.

Set Implicit Arguments.
Unset Strict Implicit.
Unset Printing Implicit Defensive.
Open Scope ring_scope.

Section Nearest.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.

(* Q is any set and P any nearest-point map onto it (any tie rule). *)
Variable Q : vec -> Prop.
Variable P : vec -> vec.
Hypothesis P_in : forall y, Q (P y).
Hypothesis P_nearest : forall y q, Q q -> << y - P y, y - P y >> <= << y - q, y - q >>.

(* Theorem II.1: <P y' - P y, y' - y> >= 0, by adding the two optimality inequalities. *)
Theorem nearest_point_monotone y y' : 0 <= << P y' - P y, y' - y >>.
Proof.
have h1 := P_nearest y (P_in y'); have h2 := P_nearest y' (P_in y).
have := ler_add h1 h2; rewrite -subr_ge0 => h.
have e : << P y' - P y, y' - y >> + << P y' - P y, y' - y >> =
         << y - P y', y - P y' >> + << y' - P y, y' - P y >> -
         (<< y - P y, y - P y >> + << y' - P y', y' - P y' >>).
  ip_ring.
by rewrite -(pmulr_rge0 _ (ltr0Sn R 1)) mulr_natl mulr2n e.
Qed.

(* P y is a subgradient of phi(y) = 1/2 ||y||^2 - 1/2 d_Q(y)^2 (the convex potential of II.1),
   written with phi(y) = <y, P y> - 1/2 ||P y||^2. *)
Theorem nearest_point_subgradient y y' :
  << y', P y' >> - << P y', P y' >> / 2%:R >=
  << y, P y >> - << P y, P y >> / 2%:R + << P y, y' - y >>.
Proof.
have h := P_nearest y' (P_in y); rewrite -subr_ge0.
have e : << y', P y' >> - << P y', P y' >> / 2%:R -
         (<< y, P y >> - << P y, P y >> / 2%:R + << P y, y' - y >>) =
         (<< y' - P y, y' - P y >> - << y' - P y', y' - P y' >>) / 2%:R.
  ip_field.
by rewrite e divr_ge0 ?ler0n // subr_ge0.
Qed.

End Nearest.


Section Ray.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.

(* Proposition 4.1 (F1): if p = s q minimises ||y - a q|| over the ray a >= 0 (which holds for every
   projection onto a free-scale set: its scale is optimal for its own pattern), then
   <y - p, p> = 0, hence ||y||^2 = ||p||^2 + ||y - p||^2. Only optimality along the ray is used. *)
Theorem cone_orthogonality (y q : vec) (s : R) :
  0 <= s ->
  (forall a, 0 <= a -> << y - s *: q, y - s *: q >> <= << y - a *: q, y - a *: q >>) ->
  << y - s *: q, s *: q >> = 0 /\ << y, y >> = << s *: q, s *: q >> + << y - s *: q, y - s *: q >>.
Proof.
move=> s0 hopt.
set c := << y - s *: q, q >>; set w := << q, q >>.
have w0 : 0 <= w := ip_ge0 q.
have w1 : 0 < w + 1 by rewrite ltr_paddl ?ltr01.
have key : forall t, 0 <= s + t -> 0 <= t * (t * w - c - c).
  move=> t ht; have h := hopt _ ht; rewrite -subr_ge0 in h.
  have e : << y - (s + t) *: q, y - (s + t) *: q >> - << y - s *: q, y - s *: q >> = t * (t * w - c - c).
    by rewrite /c /w; ip_ring.
  by rewrite -e.
have sc : s * c = 0.
  case: (ltrgtP c 0) => hc; last by rewrite hc mulr0.
  - (* c < 0: move back towards 0 by m = min(s, -c / (w + 1)) *)
    move: s0; rewrite le_eqVlt => /orP[/eqP <-|hs]; first by rewrite mul0r.
    have hcw : 0 < - c / (w + 1) by rewrite divr_gt0 // oppr_gt0.
    have hlt : - c / (w + 1) * w < - c.
      by rewrite mulrAC ltr_pdivr_mulr // ltr_pmul2l ?oppr_gt0 // ltr_addl ltr01.
    suff [m [m0 [ms mw]]] : exists m, 0 < m /\ m <= s /\ m * w < - c.
      have := key (- m); rewrite subr_ge0 => /(_ ms).
      rewrite mulNr -mulrN pmulr_rge0 // => h.
      have hneg : - (- m * w - c - c) < 0.
        have e2 : - (- m * w - c - c) = (m * w - - c) + c by ring.
        have mw' : m * w - - c < 0 by rewrite subr_lt0.
        by rewrite e2; have := ltr_add mw' hc; rewrite addr0.
      by move: hneg; rewrite ltNge h.
    case: (lerP s (- c / (w + 1))) => hm.
      exists s; split => //; split => //; apply: le_lt_trans hlt.
      by rewrite ler_wpmul2r.
    by exists (- c / (w + 1)); split => //; split => //; exact: ltW.
  - (* c > 0: move away from 0 by t = c / (w + 1) *)
    have ht : 0 < c / (w + 1) by rewrite divr_gt0.
    have h := key (c / (w + 1)) (addr_ge0 s0 (ltW ht)).
    rewrite pmulr_rge0 // in h.
    have hlt : c / (w + 1) * w < c by rewrite mulrAC ltr_pdivr_mulr // ltr_pmul2l // ltr_addl ltr01.
    have hneg : c / (w + 1) * w - c - c < 0.
      have tw : c / (w + 1) * w - c < 0 by rewrite subr_lt0.
      by have := ltr_add tw (_ : - c < 0); rewrite addr0; apply; rewrite oppr_lt0.
    by move: hneg; rewrite ltNge h.
have orth : << y - s *: q, s *: q >> = 0 by rewrite ipZr -/c sc.
split => //.
apply/eqP; rewrite -subr_eq0.
have -> : << y, y >> - (<< s *: q, s *: q >> + << y - s *: q, y - s *: q >>) =
          << y - s *: q, s *: q >> + << y - s *: q, s *: q >> by ip_ring.
by rewrite orth addr0.
Qed.

End Ray.

Section Cone.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.
(* Q is a cone (closed under scaling by a >= 0), as every free-scale set of section 2. *)
Variable Q : vec -> Prop.
Hypothesis Q_cone : forall a q, 0 <= a -> Q q -> Q (a *: q).
Variable P : vec -> vec.
Hypothesis P_in : forall y, Q (P y).
Hypothesis P_nearest : forall y q, Q q -> << y - P y, y - P y >> <= << y - q, y - q >>.

(* Proposition 4.1 for any nearest-point map onto a cone: <y - P y, P y> = 0 and
   ||y||^2 = ||P y||^2 + d_Q(y)^2. *)
Theorem cone_projection_orthogonal (y : vec) :
  << y - P y, P y >> = 0 /\ << y, y >> = << P y, P y >> + << y - P y, y - P y >>.
Proof.
have h := @cone_orthogonality R n y (P y) 1 ler01.
rewrite !scale1r in h; apply: h => a a0.
by apply: P_nearest; apply: Q_cone => //; exact: P_in.
Qed.

End Cone.
