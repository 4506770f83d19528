(* Lemma II.3(a),(e), Theorem II.4 (both descent forms and the full per-step inequality) and
   Proposition II.9.  Notation of THEORY.md Part II: a = y' - y = -g G, b = P^s' - P,
   u = (1 - mu') a + mu' b, D^s = u - Delta r, xi = G - grad f(x). *)
From mathcomp Require Import all_ssreflect all_algebra.
From mathcomp Require Import ring.
From Brelax Require Import Euclid.
Import Order.TTheory GRing.Theory Num.Theory.

Set Implicit Arguments.
Unset Strict Implicit.
Unset Printing Implicit Defensive.
Open Scope ring_scope.

Section Convex.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.

(* A projection onto a closed convex set C, given by its variational inequality. *)
Variable C : vec -> Prop.
Variable Pc : vec -> vec.
Hypothesis Pc_in : forall y, C (Pc y).
Hypothesis Pc_vi : forall y z, C z -> << y - Pc y, z - Pc y >> <= 0.

(* Firm nonexpansiveness: <Pc y' - Pc y, y' - y> >= ||Pc y' - Pc y||^2 (Lemma II.3(a)). *)
Theorem convex_projection_firm y y' :
  << Pc y' - Pc y, Pc y' - Pc y >> <= << Pc y' - Pc y, y' - y >>.
Proof.
have h1 := Pc_vi y (Pc_in y'); have h2 := Pc_vi y' (Pc_in y).
rewrite -subr_ge0.
have e : << Pc y' - Pc y, y' - y >> - << Pc y' - Pc y, Pc y' - Pc y >> =
         - (<< y - Pc y, Pc y' - Pc y >> + << y' - Pc y', Pc y - Pc y' >>).
  ip_ring.
by rewrite e oppr_ge0 -(addr0 0) ler_add.
Qed.

(* Lemma II.3(b), one scale row: P^s = Pc y' projects y' onto the convex cone C, z is in C,
   P' (the new projection) is at distance d from y' and at most e from z, and no point of C is
   nearer to y' than d (P^s lies in Q and P' is a nearest point).  Then
   ||P' - P^s||^2 <= 4 e^2 + 4 e d. *)
Theorem pattern_gap_row (y' P' z : vec) (d e : R) :
  C z -> nrm (y' - P') = d -> nrm (P' - z) <= e -> d <= nrm (y' - Pc y') ->
  << P' - Pc y', P' - Pc y' >> <= 4%:R * e ^+ 2 + 4%:R * e * d.
Proof.
move=> hz hd he hn.
set ps := Pc y'.
have d0 : 0 <= d by rewrite -hd nrm_ge0.
have e0 : 0 <= e := le_trans (nrm_ge0 _) he.
have hvi := Pc_vi y' hz; rewrite -/ps in hvi.
(* ||z - P^s||^2 <= ||z - y'||^2 - ||P^s - y'||^2 <= (d + e)^2 - d^2 *)
have hzy : nrm (z - y') <= d + e.
  have -> : z - y' = - (y' - P') + - (P' - z) by vec_ring.
  by apply: le_trans (nrm_triangle _ _) _; rewrite !nrmN hd ler_add2l.
have hw2 : << z - ps, z - ps >> <= e ^+ 2 + 2%:R * e * d.
  have h1 : << z - ps, z - ps >> <= << z - y', z - y' >> - << y' - ps, y' - ps >>.
    rewrite -subr_ge0.
    have -> : << z - y', z - y' >> - << y' - ps, y' - ps >> - << z - ps, z - ps >> =
              - (2%:R * << y' - ps, z - ps >>) by ip_ring.
    by rewrite oppr_ge0 mulr_ge0_le0 ?ler0n.
  apply: le_trans h1 _.
  have h2 : << z - y', z - y' >> <= (d + e) ^+ 2.
    by rewrite -nrm_sq ler_sqr ?nnegrE ?nrm_ge0 ?addr_ge0.
  have h3 : d ^+ 2 <= << y' - ps, y' - ps >>.
    by rewrite -nrm_sq ler_sqr ?nnegrE ?nrm_ge0.
  apply: le_trans (ler_sub h2 h3) _; apply: eq_le_; ring.
have hw : nrm (z - ps) <= e + d.
  apply: le_of_sq; first by rewrite addr_ge0.
  apply: le_trans _ (le_trans hw2 _); first by rewrite nrm_sq.
  rewrite -subr_ge0; have -> : (e + d) ^+ 2 - (e ^+ 2 + 2%:R * e * d) = d ^+ 2 by ring.
  exact: sqr_ge0.
have hg : nrm (P' - ps) <= e + nrm (z - ps).
  have -> : P' - ps = (P' - z) + (z - ps) by vec_ring.
  by apply: le_trans (nrm_triangle _ _) _; rewrite ler_add2r.
rewrite -nrm_sq; apply: le_trans (_ : _ <= (e + nrm (z - ps)) ^+ 2) _.
  by rewrite ler_sqr ?nnegrE ?nrm_ge0 ?addr_ge0 ?nrm_ge0.
rewrite -subr_ge0.
have -> : 4%:R * e ^+ 2 + 4%:R * e * d - (e + nrm (z - ps)) ^+ 2 =
          (e ^+ 2 + 2%:R * e * d - nrm (z - ps) ^+ 2) + 2%:R * e * (e + d - nrm (z - ps)) by ring.
apply: addr_ge0; first by rewrite subr_ge0 nrm_sq.
by apply: mulr_ge0; [apply: mulr_ge0 => //; exact: ler0n | rewrite subr_ge0].
Qed.

End Convex.

Section Descent.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.

(* c <x, y> <= |c| ||x|| ||y|| *)
Lemma scaled_cs (c : R) (u v : vec) : c * << u, v >> <= `|c| * (nrm u * nrm v).
Proof.
apply: le_trans (ler_norm _) _; rewrite normrM ler_wpmul2l //; exact: cs_abs.
Qed.

(* Lemma II.3(a), second half: <a, b> >= ||b||^2 and 0 <= mu' <= 1 give ||u||^2 <= ||a||^2. *)
Theorem stable_step_norm (a b : vec) (mu' : R) :
  0 <= mu' <= 1 -> << b, b >> <= << a, b >> ->
  let u := (1 - mu') *: a + mu' *: b in is_true (<< u, u >> <= << a, a >>).
Proof.
move=> /andP[m0 m1] hb u.
have hab := ip_le_sq hb.
rewrite -subr_ge0.
have -> : << a, a >> - << u, u >> =
          mu' * (1 - mu') * (<< a, a >> - << a, b >>) + mu' * (<< a, a >> - << a, b >>)
          + mu' ^+ 2 * (<< a, b >> - << b, b >>) by rewrite /u; ip_ring.
have h1 : 0 <= << a, a >> - << a, b >> by rewrite subr_ge0.
have h2 : 0 <= << a, b >> - << b, b >> by rewrite subr_ge0.
by rewrite !addr_ge0 // ?mulr_ge0 // ?sqr_ge0 // subr_ge0.
Qed.

(* Lemma II.3(a), the norm bound: ||u|| <= ||a|| = g ||G|| and ||D^s|| <= g ||G|| + |Delta| ||r||
   for D^s = u - Delta r. *)
Theorem stable_norm_bound (G b r : vec) (g mu' Dl : R) :
  0 < g -> 0 <= mu' <= 1 ->
  let a := - (g *: G) in
  << b, b >> <= << a, b >> ->
  let u := (1 - mu') *: a + mu' *: b in
  nrm u <= g * nrm G /\ nrm (u - Dl *: r) <= g * nrm G + `|Dl| * nrm r.
Proof.
move=> g0 hm a hb u.
have nu : nrm u <= g * nrm G.
  apply: le_of_sq; first by rewrite mulr_ge0 ?nrm_ge0 // ltW.
  rewrite nrm_sq exprMn nrm_sq; apply: le_trans (stable_step_norm hm hb) _.
  by apply: eq_le_; rewrite /a; ip_ring.
split => //; apply: le_trans (nrm_triangle _ _) _.
by rewrite nrmN nrmZ ler_add2r.
Qed.

(* Theorem II.4 (i), the c_t form: -(1/g) <a, u> + L/2 ||u||^2 <= -c_t ||G||^2,
   c_t = g (1 - mu') (1 - g L (1 - mu') / 2), when mu' = 0 or g L (2 - mu') <= 2. *)
Theorem flip_descent_ct (G b : vec) (g L mu' : R) :
  0 < g -> 0 <= L -> 0 <= mu' -> (mu' = 0 \/ g * L * (2%:R - mu') <= 2%:R) ->
  let a := - (g *: G) in
  << b, b >> <= << a, b >> ->
  let u := (1 - mu') *: a + mu' *: b in
  let ct := g * (1 - mu') * (1 - g * L * (1 - mu') / 2%:R) in
  is_true (- (1 / g) * << a, u >> + L / 2%:R * << u, u >> <= - ct * << G, G >>).
Proof.
move=> g0 L0 m0 hc a hb u ct.
have gn0 : g != 0 by rewrite gt_eqF.
have bb0 := ip_ge0 b.
have ab0 : 0 <= << a, b >> := le_trans bb0 hb.
rewrite -subr_ge0.
have -> : - ct * << G, G >> - (- (1 / g) * << a, u >> + L / 2%:R * << u, u >>) =
          L / 2%:R * mu' ^+ 2 * (<< a, b >> - << b, b >>)
          + mu' / g * << a, b >> * (1 - g * L * (2%:R - mu') / 2%:R).
  by rewrite /ct /u /a; ip_field.
apply: addr_ge0.
  have k0 : 0 <= L / 2%:R by rewrite divr_ge0 // ler0n.
  by apply: mulr_ge0; [apply: mulr_ge0 => //; exact: sqr_ge0 | rewrite subr_ge0].
case: hc => [->|hc]; first by rewrite mul0r mul0r mul0r.
apply: mulr_ge0; first by apply: mulr_ge0 => //; apply: divr_ge0 => //; exact: ltW.
by rewrite subr_ge0 ler_pdivr_mulr ?ltr0n // mul1r.
Qed.

(* Theorem II.4 (ii), the u form: ||u||^2 <= <a, u>, hence
   -(1/g) <a, u> + L/2 ||u||^2 <= -(1/g - L/2) ||u||^2 (a descent when g L <= 2). *)
Theorem flip_descent_u (a b : vec) (g L mu' : R) :
  0 < g -> 0 <= mu' <= 1 -> << b, b >> <= << a, b >> ->
  let u := (1 - mu') *: a + mu' *: b in
  << u, u >> <= << a, u >> /\
  - (1 / g) * << a, u >> + L / 2%:R * << u, u >> <= - (1 / g - L / 2%:R) * << u, u >>.
Proof.
move=> g0 /andP[m0 m1] hb u.
have gn0 : g != 0 by rewrite gt_eqF.
have hab := ip_le_sq hb.
have hu : << u, u >> <= << a, u >>.
  rewrite -subr_ge0.
  have -> : << a, u >> - << u, u >> =
            mu' * (1 - mu') * (<< a, a >> - << a, b >>) + mu' ^+ 2 * (<< a, b >> - << b, b >>).
    by rewrite /u; ip_ring.
  apply: addr_ge0; last by apply: mulr_ge0; [exact: sqr_ge0 | rewrite subr_ge0].
  by apply: mulr_ge0; [apply: mulr_ge0 => //; rewrite subr_ge0 | rewrite subr_ge0].
split => //.
rewrite -subr_ge0.
have -> : - (1 / g - L / 2%:R) * << u, u >> - (- (1 / g) * << a, u >> + L / 2%:R * << u, u >>) =
          (<< a, u >> - << u, u >>) / g by field.
by apply: divr_ge0; [rewrite subr_ge0 | exact: ltW].
Qed.

(* The stable part of Theorem II.4: for any gradient gx = G - xi,
   <gx, D^s> + L/2 ||D^s||^2 <= -(1/g) <a, u> + L/2 ||u||^2 + K + N. *)
Theorem stable_part (G xi b r : vec) (g L mu' Dl : R) :
  0 < g -> 0 <= L -> 0 <= mu' <= 1 ->
  let a := - (g *: G) in
  << b, b >> <= << a, b >> ->
  let u := (1 - mu') *: a + mu' *: b in
  let Ds := u - Dl *: r in
  let K := - Dl * << G, r >> + L * `|Dl| * g * nrm G * nrm r + L / 2%:R * Dl ^+ 2 * << r, r >> in
  let N := nrm xi * (g * nrm G + `|Dl| * nrm r) in
  is_true (<< G - xi, Ds >> + L / 2%:R * << Ds, Ds >> <=
  - (1 / g) * << a, u >> + L / 2%:R * << u, u >> + K + N).
Proof.
move=> g0 L0 hm a hb u Ds K N.
have gn0 : g != 0 by rewrite gt_eqF.
have nu : nrm u <= g * nrm G.
  apply: le_of_sq; first by rewrite mulr_ge0 ?nrm_ge0 // ltW.
  rewrite nrm_sq exprMn nrm_sq; apply: le_trans (stable_step_norm hm hb) _.
  by apply: eq_le_; rewrite /a; ip_ring.
have t1 : 0 <= nrm xi * nrm u + << xi, u >>.
  by rewrite -ler_subl_addr sub0r -mulN1r; apply: le_trans (scaled_cs _ _ _) _; rewrite normrN1 mul1r.
have t2 : 0 <= `|Dl| * (nrm xi * nrm r) - Dl * << xi, r >> by rewrite subr_ge0 scaled_cs.
have t3 : 0 <= `|Dl| * (nrm u * nrm r) + Dl * << u, r >>.
  rewrite -ler_subl_addr sub0r -mulNr; apply: le_trans (scaled_cs _ _ _) _; rewrite normrN.
  exact: lexx.
have t4 : 0 <= g * nrm G - nrm u by rewrite subr_ge0.
rewrite -subr_ge0.
have -> : - (1 / g) * << a, u >> + L / 2%:R * << u, u >> + K + N -
          (<< G - xi, Ds >> + L / 2%:R * << Ds, Ds >>) =
          (nrm xi * nrm u + << xi, u >>) + nrm xi * (g * nrm G - nrm u)
          + (`|Dl| * (nrm xi * nrm r) - Dl * << xi, r >>)
          + L * (`|Dl| * (nrm u * nrm r) + Dl * << u, r >>)
          + L * `|Dl| * nrm r * (g * nrm G - nrm u).
  by rewrite /K /N /Ds /u /a; ip_field.
have n1 := nrm_ge0 xi; have n2 := nrm_ge0 r; have n3 := normr_ge0 Dl.
apply: addr_ge0; last by apply: mulr_ge0 => //; apply: mulr_ge0 => //; apply: mulr_ge0.
apply: addr_ge0; last exact: mulr_ge0.
apply: addr_ge0 => //; apply: addr_ge0 => //; exact: mulr_ge0.
Qed.

Variable f : vec -> R.
Variable grad : vec -> vec.
Variable L : R.
Hypothesis L0 : 0 <= L.
(* The descent lemma of an L-smooth f. *)
Hypothesis descent : forall x D, f (x + D) <= f x + << grad x, D >> + L / 2%:R * << D, D >>.

(* Theorem II.4 at the pattern-stable point x^s' = x + D^s, c_t form:
   f(x^s') <= f(x) - c_t ||G||^2 + K + N, for any gradient G (xi = G - grad f(x)). *)
Theorem flip_descent (x G b r : vec) (g mu' Dl : R) :
  0 < g -> 0 <= mu' <= 1 -> (mu' = 0 \/ g * L * (2%:R - mu') <= 2%:R) ->
  let a := - (g *: G) in
  << b, b >> <= << a, b >> ->
  let u := (1 - mu') *: a + mu' *: b in
  let Ds := u - Dl *: r in
  let xi := G - grad x in
  let ct := g * (1 - mu') * (1 - g * L * (1 - mu') / 2%:R) in
  let K := - Dl * << G, r >> + L * `|Dl| * g * nrm G * nrm r + L / 2%:R * Dl ^+ 2 * << r, r >> in
  let N := nrm xi * (g * nrm G + `|Dl| * nrm r) in
  is_true (f (x + Ds) <= f x - ct * << G, G >> + K + N).
Proof.
move=> g0 hm hc a hb u Ds xi ct K N.
have m0 : 0 <= mu' by case/andP: hm.
apply: le_trans (descent x Ds) _.
have hs : << G - xi, Ds >> + L / 2%:R * << Ds, Ds >> <=
          - (1 / g) * << a, u >> + L / 2%:R * << u, u >> + K + N
  by exact: (stable_part xi r Dl g0 L0 hm hb).
have hgx : grad x = G - xi by rewrite /xi opprB addrC subrK.
rewrite -addrA hgx; apply: le_trans (ler_add (lexx _) hs) _.
have hct : - (1 / g) * << a, u >> + L / 2%:R * << u, u >> <= - ct * << G, G >>
  by exact: (flip_descent_ct g0 L0 m0 hc hb).
apply: le_trans (ler_add (lexx _) (ler_add (ler_add hct (lexx K)) (lexx N))) _.
by apply: eq_le_; ring.
Qed.

(* The same with the u form of the descent term (Theorem II.4 (ii)). *)
Theorem flip_descent_uform (x G b r : vec) (g mu' Dl : R) :
  0 < g -> 0 <= mu' <= 1 ->
  let a := - (g *: G) in
  << b, b >> <= << a, b >> ->
  let u := (1 - mu') *: a + mu' *: b in
  let Ds := u - Dl *: r in
  let xi := G - grad x in
  let K := - Dl * << G, r >> + L * `|Dl| * g * nrm G * nrm r + L / 2%:R * Dl ^+ 2 * << r, r >> in
  let N := nrm xi * (g * nrm G + `|Dl| * nrm r) in
  is_true (f (x + Ds) <= f x - (1 / g - L / 2%:R) * << u, u >> + K + N).
Proof.
move=> g0 hm a hb u Ds xi K N.
apply: le_trans (descent x Ds) _.
have hs : << G - xi, Ds >> + L / 2%:R * << Ds, Ds >> <=
          - (1 / g) * << a, u >> + L / 2%:R * << u, u >> + K + N
  by exact: (stable_part xi r Dl g0 L0 hm hb).
have hgx : grad x = G - xi by rewrite /xi opprB addrC subrK.
rewrite -addrA hgx; apply: le_trans (ler_add (lexx _) hs) _.
have hu : - (1 / g) * << a, u >> + L / 2%:R * << u, u >> <= - (1 / g - L / 2%:R) * << u, u >>
  by have [_ hu] := flip_descent_u L g0 hm hb; exact: hu.
apply: le_trans (ler_add (lexx _) (ler_add (ler_add hu (lexx K)) (lexx N))) _.
by apply: eq_le_; ring.
Qed.

(* The gradient is L-Lipschitz (used by Lemma II.3(d) only). *)
Hypothesis grad_lipschitz : forall x z, nrm (grad z - grad x) <= L * nrm (z - x).

(* Lemma II.3(d), first inequality: the flip excess E = f(x^s + mu' e) - f(x^s), x^s = x + D^s,
   is at most mu' (||grad f(x)|| + L ||D^s||) ||e|| + L/2 mu'^2 ||e||^2. *)
Theorem flip_excess_bound (x Ds e : vec) (mu' : R) :
  0 <= mu' ->
  f (x + Ds + mu' *: e) - f (x + Ds) <=
  mu' * (nrm (grad x) + L * nrm Ds) * nrm e + L / 2%:R * mu' ^+ 2 * << e, e >>.
Proof.
move=> m0; rewrite ler_subl_addl.
apply: le_trans (descent (x + Ds) (mu' *: e)) _.
rewrite -addrA ler_add2l ipZr ipZl ipZr.
have hg : nrm (grad (x + Ds)) <= nrm (grad x) + L * nrm Ds.
  have -> : grad (x + Ds) = grad x + (grad (x + Ds) - grad x) by rewrite [grad x + _]addrC subrK.
  apply: le_trans (nrm_triangle _ _) _; rewrite ler_add2l.
  by have := grad_lipschitz x (x + Ds); rewrite [x + Ds]addrC addrK.
have hc : mu' * << grad (x + Ds), e >> <= mu' * (nrm (grad x) + L * nrm Ds) * nrm e.
  rewrite -mulrA ler_wpmul2l //; apply: le_trans (cs _ _) _.
  by rewrite ler_wpmul2r ?nrm_ge0.
apply: le_trans (ler_add hc (lexx _)) _; apply: eq_le_; ring.
Qed.

(* Lemma II.3(d), the a-priori bound: with ||e|| <= B and ||D^s|| <= g ||G|| + |Delta| ||r||,
   E <= Ebar = mu' (||grad f(x)|| + L (g ||G|| + |Delta| ||r||)) B + L/2 mu'^2 B^2. *)
Theorem flip_excess_apriori (x Ds e : vec) (mu' B gG rD : R) :
  0 <= mu' -> nrm e <= B -> nrm Ds <= gG + rD ->
  f (x + Ds + mu' *: e) - f (x + Ds) <=
  mu' * (nrm (grad x) + L * (gG + rD)) * B + L / 2%:R * mu' ^+ 2 * B ^+ 2.
Proof.
move=> m0 he hD; apply: le_trans (flip_excess_bound x Ds e m0) _.
have B0 : 0 <= B := le_trans (nrm_ge0 e) he.
have k0 : 0 <= L / 2%:R by rewrite divr_ge0 // ler0n.
apply: ler_add.
  apply: le_trans (ler_wpmul2l _ he) _.
    by apply: mulr_ge0 => //; apply: addr_ge0; [exact: nrm_ge0 | apply: mulr_ge0 => //; exact: nrm_ge0].
  apply: ler_wpmul2r => //; apply: ler_wpmul2l => //; rewrite ler_add2l; exact: ler_wpmul2l.
apply: ler_wpmul2l; first by apply: mulr_ge0 => //; exact: sqr_ge0.
by rewrite -nrm_sq ler_sqr ?nnegrE ?nrm_ge0.
Qed.

(* Theorem II.4 with the a-priori flip cost Ebar (Lemma II.3(d)): for x' = x^s + mu' e, ||e|| <= B,
   f(x') <= f(x) - c_t ||G||^2 + K + N + Ebar. *)
Theorem flip_descent_apriori (x G b r e : vec) (g mu' Dl B : R) :
  0 < g -> 0 <= mu' <= 1 -> (mu' = 0 \/ g * L * (2%:R - mu') <= 2%:R) -> nrm e <= B ->
  let a := - (g *: G) in
  << b, b >> <= << a, b >> ->
  let u := (1 - mu') *: a + mu' *: b in
  let Ds := u - Dl *: r in
  let xi := G - grad x in
  let ct := g * (1 - mu') * (1 - g * L * (1 - mu') / 2%:R) in
  let K := - Dl * << G, r >> + L * `|Dl| * g * nrm G * nrm r + L / 2%:R * Dl ^+ 2 * << r, r >> in
  let N := nrm xi * (g * nrm G + `|Dl| * nrm r) in
  let Ebar := mu' * (nrm (grad x) + L * (g * nrm G + `|Dl| * nrm r)) * B + L / 2%:R * mu' ^+ 2 * B ^+ 2 in
  is_true (f (x + Ds + mu' *: e) <= f x - ct * << G, G >> + K + N + Ebar).
Proof.
move=> g0 hm hc he a hb u Ds xi ct K N Ebar.
have m0 : 0 <= mu' by case/andP: hm.
have hs : f (x + Ds) <= f x - ct * << G, G >> + K + N by exact: (@flip_descent x G b r g mu' Dl g0 hm hc hb).
have hD : nrm Ds <= g * nrm G + `|Dl| * nrm r by have [_ h] := @stable_norm_bound G b r g mu' Dl g0 hm hb; exact: h.
have hE := @flip_excess_apriori x Ds e mu' B (g * nrm G) (`|Dl| * nrm r) m0 he hD.
rewrite -/Ebar ler_subl_addl in hE; apply: le_trans hE _.
by rewrite ler_add2r.
Qed.

End Descent.

Section RecordedFlip.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.
Variable f : vec -> R.
Variable grad : vec -> vec.
Variable L : R.
Hypothesis L0 : 0 <= L.
(* A quadratic majorant with a symmetric bilinear form h, 0 <= h(v, v) <= L ||v||^2
   (h = L <.,.> for L-smooth f; h(v, w) = <A v, A w> for least squares, with equality). *)
Variable h : vec -> vec -> R.
Hypothesis hDl : forall u v w, h (u + v) w = h u w + h v w.
Hypothesis hZl : forall c u v, h (c *: u) v = c * h u v.
Hypothesis hC : forall u v, h u v = h v u.
Hypothesis h_le : forall v, h v v <= L * << v, v >>.
Hypothesis majorant : forall x D, f (x + D) <= f x + << grad x, D >> + h D D / 2%:R.

(* Lemma II.3(e), the recorded-flip cost: with D = D^s + mu' e (e = P' - P^s'),
   f(x') <= f(x) + <grad f(x), D^s> + h(D^s, D^s)/2 + Ehat,
   Ehat = mu' (<grad f(x), e> + h(D^s, e)) + mu'^2 h(e, e) / 2. *)
Theorem recorded_flip_cost (x Ds e : vec) (mu' : R) :
  let Ehat := mu' * (<< grad x, e >> + h Ds e) + mu' ^+ 2 * h e e / 2%:R in
  is_true (f (x + (Ds + mu' *: e)) <= f x + << grad x, Ds >> + h Ds Ds / 2%:R + Ehat).
Proof.
move=> Ehat; apply: le_trans (majorant x _) _; apply: eq_le_.
have hDr : forall u v w, h w (u + v) = h w u + h w v by move=> u v w; rewrite hC hDl ![h _ w]hC.
have hZr : forall c u v, h v (c *: u) = c * h v u by move=> c u v; rewrite hC hZl hC.
rewrite /Ehat hDl !hDr !hZl !hZr [h e Ds]hC; ip_field.
Qed.

(* Lemma II.3(e), second form: E = f(x^s + mu' e) - f(x^s) <= mu' <grad f(x^s), e> + mu'^2 h(e, e) / 2. *)
Theorem recorded_flip_excess (xs e : vec) (mu' : R) :
  f (xs + mu' *: e) - f xs <= mu' * << grad xs, e >> + mu' ^+ 2 * h e e / 2%:R.
Proof.
rewrite ler_subl_addl; apply: le_trans (majorant xs _) _; apply: eq_le_.
have hZr : forall c u v, h v (c *: u) = c * h v u by move=> c u v; rewrite hC hZl hC.
by rewrite hZl hZr ipZr; ring.
Qed.

(* Theorem II.4 with the recorded-flip cost Ehat in place of Ebar. *)
Theorem flip_descent_recorded (x G b r e : vec) (g mu' Dl : R) :
  0 < g -> 0 <= mu' <= 1 -> (mu' = 0 \/ g * L * (2%:R - mu') <= 2%:R) ->
  let a := - (g *: G) in
  << b, b >> <= << a, b >> ->
  let u := (1 - mu') *: a + mu' *: b in
  let Ds := u - Dl *: r in
  let xi := G - grad x in
  let ct := g * (1 - mu') * (1 - g * L * (1 - mu') / 2%:R) in
  let K := - Dl * << G, r >> + L * `|Dl| * g * nrm G * nrm r + L / 2%:R * Dl ^+ 2 * << r, r >> in
  let N := nrm xi * (g * nrm G + `|Dl| * nrm r) in
  let Ehat := mu' * (<< grad x, e >> + h Ds e) + mu' ^+ 2 * h e e / 2%:R in
  is_true (f (x + (Ds + mu' *: e)) <= f x - ct * << G, G >> + K + N + Ehat).
Proof.
move=> g0 hm hc a hb u Ds xi ct K N Ehat.
have m0 : 0 <= mu' by case/andP: hm.
apply: le_trans (recorded_flip_cost x Ds e mu') _; rewrite -/Ehat ler_add2r.
have hs : << G - xi, Ds >> + L / 2%:R * << Ds, Ds >> <=
          - (1 / g) * << a, u >> + L / 2%:R * << u, u >> + K + N
  by exact: (stable_part xi r Dl g0 L0 hm hb).
have hgx : grad x = G - xi by rewrite /xi opprB addrC subrK.
have hh : h Ds Ds / 2%:R <= L / 2%:R * << Ds, Ds >>.
  rewrite -subr_ge0.
  have -> : L / 2%:R * << Ds, Ds >> - h Ds Ds / 2%:R = (L * << Ds, Ds >> - h Ds Ds) / 2%:R by field.
  by rewrite divr_ge0 ?ler0n // subr_ge0 h_le.
apply: le_trans (ler_add (lexx _) hh) _.
rewrite hgx -[X in X <= _]addrA; apply: le_trans (ler_add (lexx _) hs) _.
have hct : - (1 / g) * << a, u >> + L / 2%:R * << u, u >> <= - ct * << G, G >>
  by exact: (flip_descent_ct g0 L0 m0 hc hb).
apply: le_trans (ler_add (lexx _) (ler_add (ler_add hct (lexx K)) (lexx N))) _.
by apply: eq_le_; ring.
Qed.

End RecordedFlip.

Section FlipBound.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.

(* Proposition II.9, the norm part: if the step decreases the quadratic model
   (-<G, D> > L/2 ||D||^2, i.e. c_t > 0) then ||G|| > L/2 ||D||, so ||G|| > L/2 * dmin for any
   lower bound dmin <= ||D|| (the coordinate bound ||D|| >= mu l (a_t + a_t') sqrt k is hand-proved). *)
Theorem aoc_flip_bound (G D : vec) (L dmin : R) :
  0 <= L -> 0 <= dmin -> dmin <= nrm D ->
  L / 2%:R * << D, D >> < - << G, D >> -> L / 2%:R * dmin < nrm G.
Proof.
move=> L0 d0 hd hc.
have k0 : 0 <= L / 2%:R by rewrite divr_ge0 // ler0n.
have hGD : - << G, D >> <= nrm G * nrm D.
  by rewrite -mulN1r; apply: le_trans (scaled_cs _ _ _) _; rewrite normrN1 mul1r.
have nD : 0 < nrm D.
  rewrite lt_neqAle nrm_ge0 andbT; apply/negP => /eqP hD.
  have hDD : << D, D >> = 0 by rewrite -nrm_sq -hD expr0n.
  move: hc; rewrite hDD mulr0 => hc.
  by have := lt_le_trans hc hGD; rewrite -hD mulr0 ltxx.
have : L / 2%:R * nrm D < nrm G.
  rewrite -(ltr_pmul2r nD); apply: (lt_le_trans _ hGD).
  by have -> : L / 2%:R * nrm D * nrm D = L / 2%:R * << D, D >> by rewrite -nrm_sq; ring.
apply: le_lt_trans; exact: ler_wpmul2l.
Qed.

End FlipBound.
