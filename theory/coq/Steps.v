(* One step of a lazy method (BinaryRelax, BinaryConnect, gd): Lemma A, Lemma B,
   Theorem II.2 and Proposition 9.1 (Fact C).  Notation of THEORY.md: y' = y - g G, r = y - P, x = y - mu r, and the
   primed quantities at t+1. *)
From mathcomp Require Import all_ssreflect all_algebra.
From mathcomp Require Import ring.
From Brelax Require Import Euclid Nearest.
Import Order.TTheory GRing.Theory Num.Theory.

Set Implicit Arguments.
Unset Strict Implicit.
Unset Printing Implicit Defensive.
Open Scope ring_scope.

Section Steps.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.

(* Lemma A (varying mu): D = -(1 - mu') g G + mu' (P' - P) + (mu - mu') r. *)
Theorem lemma_a (y y' G P P' : vec) (g mu mu' : R) :
  y' = y - g *: G ->
  let x := y - mu *: (y - P) in let x' := y' - mu' *: (y' - P') in
  x' - x = - ((1 - mu') * g) *: G + mu' *: (P' - P) + (mu - mu') *: (y - P).
Proof. by move=> -> x x'; rewrite /x /x'; vec_ring. Qed.

(* Theorem II.2(a): D + Delta r = (1 - mu') a + mu' (P' - P), a = y' - y, Delta = mu' - mu. *)
Theorem lazy_step_identity (y y' P P' : vec) (mu mu' : R) :
  let x := y - mu *: (y - P) in let x' := y' - mu' *: (y' - P') in
  (x' - x) + (mu' - mu) *: (y - P) = (1 - mu') *: (y' - y) + mu' *: (P' - P).
Proof. by move=> x x'; rewrite /x /x'; vec_ring. Qed.

(* Identity (b) of section 7, for any direction G with y' = y - g G:
   g <G, D> = -||D||^2 + mu' <r - r', D> - (mu' - mu) <r, D>. *)
Lemma step_inner_identity (y y' G P P' : vec) (g mu mu' : R) :
  y' = y - g *: G ->
  let r := y - P in let r' := y' - P' in
  let D := (y' - mu' *: r') - (y - mu *: r) in
  g * << G, D >> = - << D, D >> + mu' * << r - r', D >> - (mu' - mu) * << r, D >>.
Proof.
move=> hy r r' D.
have e : g *: G = - D + mu' *: (r - r') - (mu' - mu) *: r.
  by rewrite /D /r /r' hy; vec_ring.
by rewrite -ipZl e; ip_ring.
Qed.

Variable f : vec -> R.
Variable grad : vec -> vec.
Variable L : R.
(* The descent lemma of an L-smooth f (section 7(a)). *)
Hypothesis descent : forall x D, f (x + D) <= f x + << grad x, D >> + L / 2%:R * << D, D >>.

(* Lemma B: the exact one-step inequality, any mu, mu'. *)
Theorem lemma_b (y y' P P' : vec) (g mu mu' : R) :
  0 < g ->
  let r := y - P in let r' := y' - P' in
  let x := y - mu *: r in let x' := y' - mu' *: r' in let D := x' - x in
  y' = y - g *: grad x ->
  f x' <= f x - 1 / g * (1 - g * L / 2%:R) * << D, D >>
          + mu' / g * << r - r', D >> - (mu' - mu) / g * << r, D >>.
Proof.
move=> g0 r r' x x' D hy.
have hid := @step_inner_identity y y' (grad x) P P' g mu mu' hy.
have hx : x' = x + D by rewrite /D addrC subrK.
rewrite hx; apply: le_trans (descent x D) _; apply: eq_le_.
have gn0 : g != 0 by rewrite gt_eqF.
apply: (@mulfI _ g) => //.
rewrite !mulrDr !mulrN [g * << _, _ >>]hid /D /x' /x /r' /r; field; done.
Qed.

End Steps.

Section Against.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.
Variable Q : vec -> Prop.
Variable P : vec -> vec.
Hypothesis P_in : forall y, Q (P y).
Hypothesis P_nearest : forall y q, Q q -> << y - P y, y - P y >> <= << y - q, y - q >>.

(* Theorem II.2(b): <G, D + Delta r> <= -(1 - mu') g ||G||^2 for any G, any mu, mu' >= 0,
   P any nearest-point map. *)
Theorem lazy_step_against_gradient (y G : vec) (g mu mu' : R) :
  0 < g -> 0 <= mu' ->
  let y' := y - g *: G in
  let x := y - mu *: (y - P y) in let x' := y' - mu' *: (y' - P y') in
  is_true (<< G, (x' - x) + (mu' - mu) *: (y - P y) >> <= - ((1 - mu') * g) * << G, G >>).
Proof.
move=> g0 m0 y' x x'.
rewrite lazy_step_identity -(ler_pmul2l g0) -subr_ge0.
have mono := nearest_point_monotone P_in P_nearest y y'.
have -> : g * (- ((1 - mu') * g) * << G, G >>) -
          g * << G, (1 - mu') *: (y' - y) + mu' *: (P y' - P y) >> = mu' * << P y' - P y, y' - y >>.
  by rewrite /y'; ip_ring.
exact: mulr_ge0.
Qed.

(* Theorem II.2(c): mu fixed, mu <= 1, D <> 0: mu delta = 1 + g <G, D>/||D||^2
   <= 1 - (1 - mu) g^2 ||G||^2 / ||D||^2 <= 1, with delta = <r - r', D>/||D||^2. *)
Theorem aoc_mu_delta_le1 (y G : vec) (g mu : R) :
  0 < g -> 0 <= mu <= 1 ->
  let y' := y - g *: G in
  let r := y - P y in let r' := y' - P y' in
  let D := (y' - mu *: r') - (y - mu *: r) in
  0 < << D, D >> ->
  let delta := << r - r', D >> / << D, D >> in
  mu * delta = 1 + g * << G, D >> / << D, D >> /\
  mu * delta <= 1 - (1 - mu) * g ^+ 2 * << G, G >> / << D, D >> /\
  mu * delta <= 1.
Proof.
move=> g0 /andP[m0 m1] y' r r' D D0 delta.
have hid : g * << G, D >> = - << D, D >> + mu * << r - r', D >> - (mu - mu) * << r, D >>
  by exact: (@step_inner_identity _ _ y y' G (P y) (P y') g mu mu (erefl y')).
have Dn0 : << D, D >> != 0 by rewrite gt_eqF.
have e : mu * delta = 1 + g * << G, D >> / << D, D >>.
  rewrite /delta mulrA [g * << G, _ >>]hid; field; done.
have hb := @lazy_step_against_gradient y G g mu mu g0 m0.
rewrite /= subrr scale0r addr0 -/y' -/r -/r' in hb.
have hb' : g * << G, D >> <= - ((1 - mu) * g ^+ 2 * << G, G >>).
  by rewrite -(ler_pmul2l g0) in hb; apply: le_trans hb _; apply: eq_le_; rewrite /D /r /r'; ring.
have le1 : mu * delta <= 1 - (1 - mu) * g ^+ 2 * << G, G >> / << D, D >>.
  rewrite e -subr_ge0.
  have -> : 1 - (1 - mu) * g ^+ 2 * << G, G >> / << D, D >> - (1 + g * << G, D >> / << D, D >>) =
            (- ((1 - mu) * g ^+ 2 * << G, G >>) - g * << G, D >>) / << D, D >> by field; done.
  by apply: divr_ge0; [rewrite subr_ge0 | exact: ltW].
split => //; split => //; apply: le_trans le1 _.
rewrite ler_subl_addr ler_addl; apply: divr_ge0; last exact: ltW.
apply: mulr_ge0; last exact: ip_ge0.
by apply: mulr_ge0; [rewrite subr_ge0 | exact: sqr_ge0].
Qed.

End Against.

Section FactC.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.

(* An orthogonal projector: linear, self-adjoint and idempotent. *)
Variable Pi : vec -> vec.
Hypothesis PiD : forall u v, Pi (u + v) = Pi u + Pi v.
Hypothesis PiZ : forall c u, Pi (c *: u) = c *: Pi u.
Hypothesis Pi_sym : forall u v, << Pi u, v >> = << u, Pi v >>.
Hypothesis Pi_idem : forall u, Pi (Pi u) = Pi u.

(* Proposition 9.1 (Fact C, general form): mu fixed, y' = y - g G, P' - P = Pi (y' - y).  With
   a = ||(I - Pi) G||^2 and b = ||Pi G||^2: D = -g [(1 - mu)(I - Pi) + Pi] G,
   <r - r', D> = -g^2 (1 - mu) a <= 0 (for mu <= 1), ||D||^2 = g^2 ((1 - mu)^2 a + b). *)
Theorem fact_c (y G P P' : vec) (g mu : R) :
  let y' := y - g *: G in
  P' - P = Pi (y' - y) ->
  let r := y - P in let r' := y' - P' in
  let D := (y' - mu *: r') - (y - mu *: r) in
  let a := << G - Pi G, G - Pi G >> in let b := << Pi G, Pi G >> in
  D = - g *: ((1 - mu) *: (G - Pi G) + Pi G) /\
  << r - r', D >> = - (g ^+ 2 * (1 - mu) * a) /\
  << D, D >> = g ^+ 2 * ((1 - mu) ^+ 2 * a + b).
Proof.
move=> y' hP r r' D a b.
have hPi : Pi (y' - y) = - g *: Pi G.
  by rewrite /y' -PiZ; congr Pi; vec_ring.
have hP' : P' = P - g *: Pi G by rewrite -[P'](subrK P) hP hPi; vec_ring.
have hD : D = - g *: ((1 - mu) *: (G - Pi G) + Pi G) by rewrite /D /r' /r /y' hP'; vec_ring.
have hr : r - r' = g *: (G - Pi G) by rewrite /r /r' /y' hP'; vec_ring.
have hPP : << Pi G, Pi G >> = << G, Pi G >> by rewrite Pi_sym Pi_idem.
split => //; split.
  rewrite hr hD /a; ip_expand; rewrite hPP; ip_sym; ring.
rewrite hD /a /b; ip_expand; rewrite hPP; ip_sym; ring.
Qed.

(* Proposition 9.1, the range of delta: for 0 <= mu < 1 and D <> 0,
   -1/(1 - mu) <= delta = <r - r', D> / ||D||^2 <= 0. *)
Theorem fact_c_delta (y G P P' : vec) (g mu : R) :
  0 <= mu < 1 ->
  let y' := y - g *: G in
  P' - P = Pi (y' - y) ->
  let r := y - P in let r' := y' - P' in
  let D := (y' - mu *: r') - (y - mu *: r) in
  0 < << D, D >> ->
  - (1 - mu)^-1 <= << r - r', D >> / << D, D >> /\ << r - r', D >> / << D, D >> <= 0.
Proof.
move=> /andP[m0 m1] y' hP r r' D D0.
have [_ [hi hn]] := @fact_c y G P P' g mu hP.
rewrite -/y' -/r -/r' -/D in hi hn.
have a0 := ip_ge0 (G - Pi G); have b0 := ip_ge0 (Pi G).
have m1' : 0 < 1 - mu by rewrite subr_gt0.
have hg : 0 <= g ^+ 2 := sqr_ge0 g.
split; last first.
  rewrite hi; apply: mulr_le0_ge0; last by rewrite invr_ge0 ltW.
  by rewrite oppr_le0 mulr_ge0 // mulr_ge0 // ltW.
rewrite ler_oppl -mulNr ler_pdivr_mulr // hi opprK hn.
rewrite -subr_ge0.
have mn0 : 1 - mu != 0 by rewrite gt_eqF.
have -> : (1 - mu)^-1 * (g ^+ 2 * ((1 - mu) ^+ 2 * << G - Pi G, G - Pi G >> + << Pi G, Pi G >>)) -
          g ^+ 2 * (1 - mu) * << G - Pi G, G - Pi G >> = g ^+ 2 * << Pi G, Pi G >> / (1 - mu) by field.
by apply: divr_ge0; [exact: mulr_ge0 | exact: ltW].
Qed.

End FactC.
