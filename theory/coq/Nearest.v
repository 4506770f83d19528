(* Theorem II.1: every nearest-point map onto any set is monotone (no convexity). *)
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

