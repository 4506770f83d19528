(* Theorem II.6: one step of ProxQuant (mu' < 1) and of PGD (mu' = 1), for any direction G;
   with full gradients and an L-smooth f, the descent form (ii).  Propositions 5.1 and 5.2: the prox
   of (lam/2) d_Q^2 for any set Q. *)
From mathcomp Require Import all_ssreflect all_algebra.
From mathcomp Require Import ring.
From Brelax Require Import Euclid.
Import Order.TTheory GRing.Theory Num.Theory.

Set Implicit Arguments.
Unset Strict Implicit.
Unset Printing Implicit Defensive.
Open Scope ring_scope.

Section Prox.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.

(* d2 u stands for d_Q(u)^2; the proof of (i) only compares the minimiser x' of
   J(u) = 1/2 ||u - z||^2 + lam/2 d2(u) with the competitor u = x, so J(x') <= J(x) is the hypothesis. *)
Variable d2 : vec -> R.

(* Theorem II.6 (i), mu' < 1 (ProxQuant): with z = x - g G, lam = mu' / (1 - mu'),
   (1 - mu') (g <G, D> + 1/2 ||D||^2) <= mu'/2 (d_t^2 - d_{t+1}^2), D = x' - x. *)
Theorem prox_step_descent_relaxed (x x' G : vec) (g mu' : R) :
  mu' < 1 ->
  let z := x - g *: G in let lam := mu' / (1 - mu') in
  << x' - z, x' - z >> / 2%:R + lam / 2%:R * d2 x' <= << x - z, x - z >> / 2%:R + lam / 2%:R * d2 x ->
  (1 - mu') * (g * << G, x' - x >> + << x' - x, x' - x >> / 2%:R) <= mu' / 2%:R * (d2 x - d2 x').
Proof.
move=> m1 z lam hJ.
have m1' : 0 < 1 - mu' by rewrite subr_gt0.
have mn0 : 1 - mu' != 0 by rewrite gt_eqF.
rewrite -subr_ge0.
have -> : mu' / 2%:R * (d2 x - d2 x') - (1 - mu') * (g * << G, x' - x >> + << x' - x, x' - x >> / 2%:R) =
          (1 - mu') * (<< x - z, x - z >> / 2%:R + lam / 2%:R * d2 x -
                       (<< x' - z, x' - z >> / 2%:R + lam / 2%:R * d2 x')).
  rewrite /z /lam; ip_field.
by apply: mulr_ge0; [exact: ltW | rewrite subr_ge0].
Qed.

(* Q any set, x' a nearest point of z in Q, p a point of Q at distance d_t from x. *)
Variable Q : vec -> Prop.

(* Theorem II.6 (i), mu' = 1 (PGD): g <G, D> + 1/2 ||D||^2 <= d_t g ||G|| + 1/2 d_t^2. *)
Theorem prox_step_descent_pgd (x x' p G : vec) (g dt : R) :
  0 < g -> Q p -> nrm (x - p) = dt ->
  (forall q, Q q -> nrm (x - g *: G - x') <= nrm (x - g *: G - q)) ->
  g * << G, x' - x >> + << x' - x, x' - x >> / 2%:R <= dt * g * nrm G + dt ^+ 2 / 2%:R.
Proof.
move=> g0 hp hd hnear.
have h1 := hnear p hp.
have h2 : nrm (x - g *: G - p) <= g * nrm G + dt.
  have -> : x - g *: G - p = - (g *: G) + (x - p) by vec_ring.
  by apply: le_trans (nrm_triangle _ _) _; rewrite nrmN nrmZ gtr0_norm // hd.
have h3 := le_trans h1 h2.
have h4 : << x - g *: G - x', x - g *: G - x' >> <= (g * nrm G + dt) ^+ 2.
  have b0 : 0 <= g * nrm G + dt := le_trans (nrm_ge0 _) h3.
  by rewrite -nrm_sq ler_sqr ?nnegrE ?nrm_ge0.
rewrite -subr_ge0.
have -> : dt * g * nrm G + dt ^+ 2 / 2%:R - (g * << G, x' - x >> + << x' - x, x' - x >> / 2%:R) =
          ((g * nrm G + dt) ^+ 2 - << x - g *: G - x', x - g *: G - x' >>) / 2%:R
          + g ^+ 2 * (<< G, G >> - nrm G ^+ 2) / 2%:R.
  by ip_field.
by rewrite nrm_sq subrr mulr0 mul0r addr0 divr_ge0 ?ler0n // subr_ge0.
Qed.

Variable f : vec -> R.
Variable grad : vec -> vec.
Variable L : R.
Hypothesis descent : forall x D, f (x + D) <= f x + << grad x, D >> + L / 2%:R * << D, D >>.

(* Theorem II.6 (ii), mu' < 1: f(x') <= f(x) - (1/(2g) - L/2) ||D||^2 + lam/(2g) (d_t^2 - d_{t+1}^2). *)
Theorem prox_descent_relaxed (x x' : vec) (g mu' : R) :
  0 < g -> mu' < 1 ->
  let z := x - g *: grad x in let lam := mu' / (1 - mu') in
  << x' - z, x' - z >> / 2%:R + lam / 2%:R * d2 x' <= << x - z, x - z >> / 2%:R + lam / 2%:R * d2 x ->
  f x' <= f x - (1 / (2%:R * g) - L / 2%:R) * << x' - x, x' - x >> + lam / (2%:R * g) * (d2 x - d2 x').
Proof.
move=> g0 m1 z lam hJ.
have m1' : 0 < 1 - mu' by rewrite subr_gt0.
have mn0 : 1 - mu' != 0 by rewrite gt_eqF.
have gn0 : g != 0 by rewrite gt_eqF.
have hi := prox_step_descent_relaxed m1 hJ.
have hd := descent x (x' - x); rewrite [x + _]addrC subrK in hd; apply: le_trans hd _.
rewrite -subr_ge0.
have -> : f x - (1 / (2%:R * g) - L / 2%:R) * << x' - x, x' - x >> + lam / (2%:R * g) * (d2 x - d2 x') -
          (f x + << grad x, x' - x >> + L / 2%:R * << x' - x, x' - x >>) =
          (mu' / 2%:R * (d2 x - d2 x') - (1 - mu') * (g * << grad x, x' - x >> + << x' - x, x' - x >> / 2%:R))
          / (g * (1 - mu')).
  by rewrite /lam; field; rewrite mn0 gn0.
by apply: divr_ge0; [rewrite subr_ge0 | apply: mulr_ge0; exact: ltW].
Qed.

(* Theorem II.6 (ii), mu' = 1 (PGD):
   f(x') <= f(x) - (1/(2g) - L/2) ||D||^2 + d_t ||grad f(x)|| + d_t^2 / (2g). *)
Theorem prox_descent_pgd (x x' p : vec) (g dt : R) :
  0 < g -> Q p -> nrm (x - p) = dt ->
  (forall q, Q q -> nrm (x - g *: grad x - x') <= nrm (x - g *: grad x - q)) ->
  f x' <= f x - (1 / (2%:R * g) - L / 2%:R) * << x' - x, x' - x >> + dt * nrm (grad x) + dt ^+ 2 / (2%:R * g).
Proof.
move=> g0 hp hd hnear.
have gn0 : g != 0 by rewrite gt_eqF.
have hi := prox_step_descent_pgd g0 hp hd hnear.
have hde := descent x (x' - x); rewrite [x + _]addrC subrK in hde; apply: le_trans hde _.
rewrite -subr_ge0.
have -> : f x - (1 / (2%:R * g) - L / 2%:R) * << x' - x, x' - x >> + dt * nrm (grad x) + dt ^+ 2 / (2%:R * g) -
          (f x + << grad x, x' - x >> + L / 2%:R * << x' - x, x' - x >>) =
          (dt * g * nrm (grad x) + dt ^+ 2 / 2%:R - (g * << grad x, x' - x >> + << x' - x, x' - x >> / 2%:R)) / g.
  by field.
by apply: divr_ge0; [rewrite subr_ge0 | exact: ltW].
Qed.

End Prox.

Section Moreau.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.
Variable Q : vec -> Prop.
Variable P : vec -> vec.
Hypothesis P_in : forall y, Q (P y).
Hypothesis P_nearest : forall y q, Q q -> << y - P y, y - P y >> <= << y - q, y - q >>.

(* psi_z(x) = 1/2 ||x - y||^2 + lam/2 ||x - z||^2 = psi_z(x_z) + (1 + lam)/2 ||x - x_z||^2,
   x_z = (y + lam z)/(1 + lam), psi_z(x_z) = lam/(2(1 + lam)) ||y - z||^2. *)
Lemma psi_split (x y z : vec) (lam : R) :
  0 <= lam ->
  let xz := (1 + lam)^-1 *: (y + lam *: z) in
  << x - y, x - y >> / 2%:R + lam / 2%:R * << x - z, x - z >> =
  lam / (2%:R * (1 + lam)) * << y - z, y - z >> + (1 + lam) / 2%:R * << x - xz, x - xz >>.
Proof.
move=> l0 xz.
have ln0 : 1 + lam != 0 by rewrite gt_eqF // (lt_le_trans ltr01) // ler_addl.
by rewrite /xz; ip_field.
Qed.

(* Proposition 5.1 (prox lemma), for any set Q and any nearest-point map P:
   J(x) = 1/2 ||x - y||^2 + lam/2 d_Q(x)^2 is minimised at x* = (y + lam P(y))/(1 + lam),
   with min J = lam/(2(1 + lam)) d_Q(y)^2.  No convexity of Q. *)
Theorem prox_lemma (y : vec) (lam : R) :
  0 <= lam ->
  let J x := << x - y, x - y >> / 2%:R + lam / 2%:R * << x - P x, x - P x >> in
  let xs := (1 + lam)^-1 *: (y + lam *: P y) in
  J xs = lam / (2%:R * (1 + lam)) * << y - P y, y - P y >> /\ forall x, J xs <= J x.
Proof.
move=> l0 J xs.
have lp : 0 <= 1 + lam by apply: addr_ge0 => //; exact: ler01.
have k0 : 0 <= lam / (2%:R * (1 + lam)) by apply: divr_ge0 => //; apply: mulr_ge0 => //; exact: ler0n.
have l1 : 0 <= (1 + lam) / 2%:R by apply: divr_ge0 => //; exact: ler0n.
have l2 : 0 <= lam / 2%:R by apply: divr_ge0 => //; exact: ler0n.
(* every J x is at least the bound *)
have lower : forall x, lam / (2%:R * (1 + lam)) * << y - P y, y - P y >> <= J x.
  move=> x; rewrite /J (psi_split x y (P x) l0).
  apply: le_trans (_ : _ <= lam / (2%:R * (1 + lam)) * << y - P x, y - P x >>) _.
    by rewrite ler_wpmul2l // P_nearest.
  by rewrite ler_addl mulr_ge0 // ip_ge0.
(* J at x* is at most the bound *)
have upper : J xs <= lam / (2%:R * (1 + lam)) * << y - P y, y - P y >>.
  apply: le_trans (_ : _ <= << xs - y, xs - y >> / 2%:R + lam / 2%:R * << xs - P y, xs - P y >>) _.
    by rewrite /J ler_add2l ler_wpmul2l // P_nearest.
  rewrite (psi_split xs y (P y) l0) -/xs subrr.
  by rewrite ip0l mulr0 addr0.
have e : J xs = lam / (2%:R * (1 + lam)) * << y - P y, y - P y >>.
  by apply/eqP; rewrite eq_le upper lower.
by split => // x; rewrite e lower.
Qed.

(* Proposition 5.2 (first part): w = y - mu (y - P y), 0 <= mu <= 1, keeps P y as a nearest point,
   at distance (1 - mu) d_Q(y). (Uniqueness for mu > 0 is the equality case of the triangle
   inequality, hand-proved.) *)
Theorem relaxed_keeps_projection (y : vec) (mu : R) :
  0 <= mu <= 1 ->
  let w := y - mu *: (y - P y) in
  nrm (w - P y) = (1 - mu) * nrm (y - P y) /\ forall q, Q q -> nrm (w - P y) <= nrm (w - q).
Proof.
move=> /andP[m0 m1] w.
have hw : nrm (w - P y) = (1 - mu) * nrm (y - P y).
  have -> : w - P y = (1 - mu) *: (y - P y) by rewrite /w; vec_ring.
  by rewrite nrmZ ger0_norm // subr_ge0.
split => // q hq.
have hyw : nrm (y - w) = mu * nrm (y - P y).
  have -> : y - w = mu *: (y - P y) by rewrite /w; vec_ring.
  by rewrite nrmZ ger0_norm.
have hnear : nrm (y - P y) <= nrm (y - q).
  by rewrite -(ler_sqr (nrm_ge0 _) (nrm_ge0 _)) !nrm_sq P_nearest.
have tri : nrm (y - q) <= nrm (y - w) + nrm (w - q).
  have -> : y - q = (y - w) + (w - q) by vec_ring.
  exact: nrm_triangle.
rewrite hw; rewrite hyw in tri.
rewrite -ler_subl_addl in tri; apply: le_trans tri.
by rewrite mulrBl mul1r ler_add2r.
Qed.

End Moreau.
