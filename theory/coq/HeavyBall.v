(* Theorem II.12: heavy-ball momentum on a lazy method (BinaryRelax, BinaryConnect, gd).
   Notation of THEORY.md Part II: y' = y + a, a = -g m, m = beta m_prev + G + w (torch SGD with
   momentum beta, dampening 0, no Nesterov; w = lambda_wd y is weight decay), a_prev = -g_prev m_prev,
   G = grad f(x), x = y - mu r, r = y - P.  M is the pattern projector of P (symmetric, idempotent;
   M y = P, M r = 0) and W = (1 - mu') I + mu' M.  D^s = W a - Delta r is the step to the
   pattern-stable point x^s = y' - mu' (I - M) y', and x' = x^s + mu' e with e = P' - M y'.
   M is any map with the stated properties: that the pattern projector has them, and M y = P for
   the exact projection P of the symmetric free-scale set, is hand-proved (coordinate level). *)
From mathcomp Require Import all_ssreflect all_algebra.
From mathcomp Require Import ring.
From Brelax Require Import Euclid Descent.
Import Order.TTheory GRing.Theory Num.Theory.

Set Implicit Arguments.
Unset Strict Implicit.
Unset Printing Implicit Defensive.
Open Scope ring_scope.

Section HeavyBall.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.

(* The pattern projector: linear, symmetric and idempotent.  Only the geometry of the step
   (heavy_ball_geometry) uses additivity; the W inequalities use symmetry and idempotence. *)
Variable M : vec -> vec.
Hypothesis M_add : forall u v, M (u + v) = M u + M v.
Hypothesis M_sym : forall u v, << M u, v >> = << u, M v >>.
Hypothesis M_idem : forall u, M (M u) = M u.

(* vec_ring of Euclid.v with field: an entrywise identity that divides by nonzero scalars. *)
Ltac vec_field := apply/matrixP => ? ?; rewrite !mxE;
  repeat match goal with |- context [@fun_of_matrix _ _ _ ?u ?j ?i] =>
    let a := fresh "a" in set a := @fun_of_matrix _ _ _ u j i; clearbody a end; field.

(* W = (1 - mu) I + mu M. *)
Definition W (mu : R) (u : vec) : vec := (1 - mu) *: u + mu *: M u.

Lemma M_cross u v : << u, M v >> = << M u, M v >>.
Proof. by rewrite M_sym M_idem. Qed.

(* W is symmetric: <u, W v> = <W u, v>. *)
Theorem W_sym (mu : R) (u v : vec) : << u, W mu v >> = << W mu u, v >>.
Proof. by rewrite /W; ip_expand; rewrite M_sym. Qed.

(* <u, W u> = (1 - mu) ||u||^2 + mu ||M u||^2. *)
Lemma W_quad (mu : R) (u : vec) : << u, W mu u >> = (1 - mu) * << u, u >> + mu * << M u, M u >>.
Proof. by rewrite /W; ip_expand; rewrite (M_cross u u). Qed.

(* W >= 0: <u, W u> >= 0 for 0 <= mu <= 1. *)
Theorem W_nonneg (mu : R) (u : vec) : 0 <= mu <= 1 -> 0 <= << u, W mu u >>.
Proof.
case/andP=> m0 m1; rewrite W_quad.
by apply: addr_ge0; apply: mulr_ge0; rewrite ?subr_ge0 ?ip_ge0.
Qed.

(* W^2 <= W: ||W u||^2 <= <u, W u>, the gap being mu (1 - mu) ||u - M u||^2. *)
Theorem W_contract (mu : R) (u : vec) : 0 <= mu <= 1 -> << W mu u, W mu u >> <= << u, W mu u >>.
Proof.
case/andP=> m0 m1; rewrite -subr_ge0.
have -> : << u, W mu u >> - << W mu u, W mu u >> = mu * (1 - mu) * << u - M u, u - M u >>.
  rewrite /W; ip_expand; rewrite [<< M u, u >>]ipC (M_cross u u); ip_ring.
by apply: mulr_ge0; [apply: mulr_ge0; rewrite ?subr_ge0 | exact: ip_ge0].
Qed.

(* W <= I: ||W u|| <= ||u|| (<u, u> - <u, W u> = mu ||u - M u||^2). *)
Theorem W_norm_le (mu : R) (u : vec) : 0 <= mu <= 1 -> nrm (W mu u) <= nrm u.
Proof.
move=> hm; have /andP[m0 m1] := hm.
apply: le_of_sq; first exact: nrm_ge0.
rewrite !nrm_sq; apply: le_trans (W_contract u hm) _.
rewrite -subr_ge0.
have -> : << u, u >> - << u, W mu u >> = mu * << u - M u, u - M u >>.
  rewrite /W; ip_expand; rewrite [<< M u, u >>]ipC (M_cross u u); ip_ring.
by apply: mulr_ge0 => //; exact: ip_ge0.
Qed.

(* Young's inequality in the W semi-inner product: <u, W v> <= (<u, W u> + <v, W v>) / 2. *)
Theorem W_young (mu : R) (u v : vec) :
  0 <= mu <= 1 -> << u, W mu v >> <= (<< u, W mu u >> + << v, W mu v >>) / 2%:R.
Proof.
case/andP=> m0 m1; rewrite -subr_ge0.
have -> : (<< u, W mu u >> + << v, W mu v >>) / 2%:R - << u, W mu v >> =
          ((1 - mu) * << u - v, u - v >> + mu * << M u - M v, M u - M v >>) / 2%:R.
  rewrite /W; ip_expand; rewrite (M_cross u v) (M_cross u u) (M_cross v v); ip_field.
apply: divr_ge0; last exact: ler0n.
by apply: addr_ge0; apply: mulr_ge0; rewrite ?subr_ge0 ?ip_ge0.
Qed.

(* The geometry of one lazy step: with M y = P, r = y - P, x = y - mu r, y' = y + a,
   Delta = mu' - mu, x^s = y' - mu' (I - M) y', e = P' - M y' and x' = y' - mu' (y' - P'):
   x^s - x = W a - Delta r = D^s, x' = x^s + mu' e, and M r = 0. *)
Theorem heavy_ball_geometry (y P y' P' : vec) (mu mu' : R) :
  M y = P ->
  let r := y - P in
  let a := y' - y in
  let x := y - mu *: r in
  let xs := y' - mu' *: (y' - M y') in
  let e := P' - M y' in
  let x' := y' - mu' *: (y' - P') in
  xs - x = W mu' a - (mu' - mu) *: r /\ x' = xs + mu' *: e /\ M r = 0.
Proof.
move=> hP r a x xs e x'.
have M0 : M 0 = 0.
  by have h := M_add 0 0; rewrite addr0 in h; apply: (addrI (M 0)); rewrite addr0 -h.
have Mopp : forall u, M (- u) = - M u.
  by move=> u; apply: (addrI (M u)); rewrite -M_add !subrr M0.
have Mr : M r = 0 by rewrite /r M_add Mopp -hP M_idem subrr.
have My' : M y' = P + M a by rewrite -hP -M_add /a addrC subrK.
split; last split => //.
  by rewrite /xs /x /r /W /a My' M_add Mopp -hP; vec_ring.
by rewrite /x' /xs /e; vec_ring.
Qed.

(* ||D^s||^2 - <a, W a> <= 2 |Delta| (1 - mu') |<a, r>| + Delta^2 ||r||^2 when M r = 0 (so the
   stable excess is <= 0 when Delta = 0, by W^2 <= W). *)
Theorem heavy_ball_stable_excess (a r : vec) (mu' Dl : R) :
  0 <= mu' <= 1 -> M r = 0 ->
  let Ds := W mu' a - Dl *: r in
  is_true (<< Ds, Ds >> - << a, W mu' a >> <=
           2%:R * `|Dl| * (1 - mu') * `|<< a, r >>| + Dl ^+ 2 * << r, r >>).
Proof.
move=> hm hr Ds.
have m1 : 0 <= 1 - mu' by case/andP: hm => _; rewrite subr_ge0.
have hW := W_contract a hm.
have eWr : << W mu' a, r >> = (1 - mu') * << a, r >>.
  by rewrite -W_sym /W; ip_expand; rewrite hr [<< a, 0 >>]ipC ip0l mulr0 addr0.
have e : << Ds, Ds >> - << a, W mu' a >> =
         (<< W mu' a, W mu' a >> - << a, W mu' a >>) - 2%:R * Dl * (1 - mu') * << a, r >>
         + Dl ^+ 2 * << r, r >>.
  rewrite /Ds; move: (W mu' a) eWr => Wa eWr.
  by ip_expand; rewrite [<< r, Wa >>]ipC eWr; ring.
rewrite e ler_add2r.
have h1 : << W mu' a, W mu' a >> - << a, W mu' a >> <= 0 by rewrite subr_le0.
apply: le_trans (ler_add h1 (lexx _)) _; rewrite add0r.
apply: le_trans (ler_norm _) _; rewrite normrN !normrM (ger0_norm m1) normr_nat.
exact: lexx.
Qed.

Variable f : vec -> R.
Variable grad : vec -> vec.
Variable L : R.

(* The one-step inequality with a general momentum coefficient c >= 0 on the previous step a_
   (c = beta / g_prev, or c = 0 at t = 0), a general Lyapunov weight b on omega = <a, W a>, and
   any flip cost E with f(x') <= f(x) + <G, D^s> + (L/2)||D^s||^2 + E (Ehat or Ebar below):
   from G = -(1/g) a + c a_ - lambda_wd y,
   f(x') + b omega <= f(x) + c/2 omega_ - (1/g - c/2 - b - L/2) omega + (L/2)(||D^s||^2 - omega)
                      - Delta <G, r> - lambda_wd <y, W a> + E. *)
Theorem heavy_ball_core (x x' y a a_ r : vec) (g c b mu' Dl lwd E : R) :
  0 <= c -> 0 <= mu' <= 1 ->
  let G := grad x in
  G = - (1 / g) *: a + c *: a_ - lwd *: y ->
  let Ds := W mu' a - Dl *: r in
  f x' <= f x + << G, Ds >> + L / 2%:R * << Ds, Ds >> + E ->
  let omega := << a, W mu' a >> in
  let omega_ := << a_, W mu' a_ >> in
  is_true (f x' + b * omega <=
  f x + c / 2%:R * omega_ - (1 / g - c / 2%:R - b - L / 2%:R) * omega
  + L / 2%:R * (<< Ds, Ds >> - omega) - Dl * << G, r >> - lwd * << y, W mu' a >> + E).
Proof.
move=> c0 hm G hG Ds hE omega omega_.
have hy : << a_, W mu' a >> <= (omega_ + omega) / 2%:R by exact: W_young.
rewrite /omega /omega_ /Ds /G in hG hE hy *; clear omega omega_ Ds G.
(* W a, W a_, grad x and 1/g are atoms from here on (ip_expand must not unfold W, and field
   would ask for g != 0). *)
move: (W mu' a) (W mu' a_) (grad x) (1 / g) hG hE hy => Wa Wa_ Gx k hG hE hy.
have eG : << Gx, Wa >> = - k * << a, Wa >> + c * << a_, Wa >> - lwd * << y, Wa >>.
  by rewrite {1}hG; ip_expand; ring.
apply: le_trans (ler_add hE (lexx _)) _.
rewrite -subr_ge0.
have -> : f x + c / 2%:R * << a_, Wa_ >> - (k - c / 2%:R - b - L / 2%:R) * << a, Wa >>
          + L / 2%:R * (<< Wa - Dl *: r, Wa - Dl *: r >> - << a, Wa >>) - Dl * << Gx, r >>
          - lwd * << y, Wa >> + E
          - (f x + << Gx, Wa - Dl *: r >> + L / 2%:R * << Wa - Dl *: r, Wa - Dl *: r >> + E
             + b * << a, Wa >>)
          = c * ((<< a_, Wa_ >> + << a, Wa >>) / 2%:R - << a_, Wa >>).
  by ip_expand; rewrite eG; ip_field.
by apply: mulr_ge0 => //; rewrite subr_ge0.
Qed.

(* The recorded flip cost (Lemma II.3(e) with H = L I): the descent lemma along the whole step
   x' - x = D^s + mu' e gives f(x') <= f(x) + <G, D^s> + (L/2)||D^s||^2 + Ehat,
   Ehat = mu' (<G, e> + L <D^s, e>) + (L/2) mu'^2 ||e||^2. *)
Lemma heavy_ball_recorded (x x' Ds e : vec) (mu' : R) :
  x' - x = Ds + mu' *: e ->
  f x' <= f x + << grad x, x' - x >> + L / 2%:R * << x' - x, x' - x >> ->
  f x' <= f x + << grad x, Ds >> + L / 2%:R * << Ds, Ds >>
          + (mu' * (<< grad x, e >> + L * << Ds, e >>) + L / 2%:R * mu' ^+ 2 * << e, e >>).
Proof.
move=> hx hd; apply: le_trans hd _; rewrite hx; apply: eq_le_.
move: (grad x) => Gx; ip_expand; ip_field.
Qed.

(* Theorem II.12, the one-step inequality (t >= 1): with a = -g m, a_ = -g_ m_ (the previous step),
   m = beta m_ + G + lambda_wd y, G = grad f(x), D^s = W a - Delta r, x' - x = D^s + mu' e and the
   descent lemma along x -> x',
   f(x') + beta/(2g) omega <= f(x) + beta/(2g_) omega_ - kappa omega + (L/2)(||D^s||^2 - omega)
                               - Delta <G, r> - lambda_wd <y, W a> + Ehat,
   kappa = 1/g - beta/(2g_) - beta/(2g) - L/2, omega = <a, W a>, omega_ = <a_, W a_>,
   Ehat = mu' (<G, e> + L <D^s, e>) + (L/2) mu'^2 ||e||^2. *)
Theorem heavy_ball_step (x x' y m m_ r e : vec) (g g_ beta mu' Dl lwd : R) :
  0 < g -> 0 < g_ -> 0 <= beta -> 0 <= mu' <= 1 ->
  let G := grad x in
  let a := - (g *: m) in
  let a_ := - (g_ *: m_) in
  m = beta *: m_ + G + lwd *: y ->
  let Ds := W mu' a - Dl *: r in
  x' - x = Ds + mu' *: e ->
  f x' <= f x + << G, x' - x >> + L / 2%:R * << x' - x, x' - x >> ->
  let omega := << a, W mu' a >> in
  let omega_ := << a_, W mu' a_ >> in
  let kappa := 1 / g - beta / (2%:R * g_) - beta / (2%:R * g) - L / 2%:R in
  let Ehat := mu' * (<< G, e >> + L * << Ds, e >>) + L / 2%:R * mu' ^+ 2 * << e, e >> in
  is_true (f x' + beta / (2%:R * g) * omega <=
  f x + beta / (2%:R * g_) * omega_ - kappa * omega + L / 2%:R * (<< Ds, Ds >> - omega)
  - Dl * << G, r >> - lwd * << y, W mu' a >> + Ehat).
Proof.
move=> g0 g_0 b0 hm G a a_ hrec Ds hx hd omega omega_ kappa Ehat.
have gn : g != 0 by rewrite gt_eqF.
have g_n : g_ != 0 by rewrite gt_eqF.
have c0 : 0 <= beta / g_ by rewrite divr_ge0 // ltW.
have hG : G = - (1 / g) *: a + (beta / g_) *: a_ - lwd *: y.
  by rewrite /a /a_ hrec; vec_field; rewrite ?gn ?g_n.
have := heavy_ball_core (beta / (2%:R * g)) c0 hm hG (heavy_ball_recorded hx hd).
have e1 : beta / (2%:R * g_) = beta / g_ / 2%:R by field; rewrite g_n.
have e2 : 1 / g - beta / g_ / 2%:R - beta / (2%:R * g) - L / 2%:R = kappa by rewrite /kappa -e1.
by rewrite /omega /omega_ /Ehat /Ds e2 -e1.
Qed.

(* Theorem II.12 at t = 0 (m_prev = 0, so m = G + lambda_wd y and the a_prev terms vanish):
   f(x') + beta/(2g) omega <= f(x) - kappa_0 omega + ..., kappa_0 = 1/g - beta/(2g) - L/2. *)
Theorem heavy_ball_first_step (x x' y m r e : vec) (g beta mu' Dl lwd : R) :
  0 < g -> 0 <= mu' <= 1 ->
  let G := grad x in
  let a := - (g *: m) in
  m = G + lwd *: y ->
  let Ds := W mu' a - Dl *: r in
  x' - x = Ds + mu' *: e ->
  f x' <= f x + << G, x' - x >> + L / 2%:R * << x' - x, x' - x >> ->
  let omega := << a, W mu' a >> in
  let kappa0 := 1 / g - beta / (2%:R * g) - L / 2%:R in
  let Ehat := mu' * (<< G, e >> + L * << Ds, e >>) + L / 2%:R * mu' ^+ 2 * << e, e >> in
  is_true (f x' + beta / (2%:R * g) * omega <=
  f x - kappa0 * omega + L / 2%:R * (<< Ds, Ds >> - omega)
  - Dl * << G, r >> - lwd * << y, W mu' a >> + Ehat).
Proof.
move=> g0 hm G a hrec Ds hx hd omega kappa0 Ehat.
have gn : g != 0 by rewrite gt_eqF.
have hG : G = - (1 / g) *: a + 0 *: a - lwd *: y.
  by rewrite /a hrec; vec_field; rewrite ?gn.
have := heavy_ball_core (beta / (2%:R * g)) (lexx 0) hm hG (heavy_ball_recorded hx hd).
have e2 : 1 / g - 0 / 2%:R - beta / (2%:R * g) - L / 2%:R = kappa0 by rewrite /kappa0 mul0r subr0.
by rewrite /omega /Ehat /Ds e2 !mul0r addr0.
Qed.

(* Theorem II.12 from the iterates themselves: y' = y + a, x = y - mu r, r = y - P with M y = P,
   x' = y' - mu' (y' - P'), Delta = mu' - mu, e = P' - M y'; heavy_ball_geometry supplies
   x' - x = D^s + mu' e, and heavy_ball_step the inequality. *)
Theorem heavy_ball_iterates (y P y' P' m m_ : vec) (g g_ beta mu mu' lwd : R) :
  0 < g -> 0 < g_ -> 0 <= beta -> 0 <= mu' <= 1 -> M y = P ->
  let r := y - P in
  let x := y - mu *: r in
  let x' := y' - mu' *: (y' - P') in
  let G := grad x in
  let a := - (g *: m) in
  let a_ := - (g_ *: m_) in
  y' = y + a ->
  m = beta *: m_ + G + lwd *: y ->
  f x' <= f x + << G, x' - x >> + L / 2%:R * << x' - x, x' - x >> ->
  let Dl := mu' - mu in
  let e := P' - M y' in
  let Ds := W mu' a - Dl *: r in
  let omega := << a, W mu' a >> in
  let omega_ := << a_, W mu' a_ >> in
  let kappa := 1 / g - beta / (2%:R * g_) - beta / (2%:R * g) - L / 2%:R in
  let Ehat := mu' * (<< G, e >> + L * << Ds, e >>) + L / 2%:R * mu' ^+ 2 * << e, e >> in
  is_true (f x' + beta / (2%:R * g) * omega <=
  f x + beta / (2%:R * g_) * omega_ - kappa * omega + L / 2%:R * (<< Ds, Ds >> - omega)
  - Dl * << G, r >> - lwd * << y, W mu' a >> + Ehat).
Proof.
move=> g0 g_0 b0 hm hP r x x' G a a_ hy' hrec hd Dl e Ds omega omega_ kappa Ehat.
have [hs [hx' _]] := heavy_ball_geometry y' P' mu mu' hP.
have ha : y' - y = a by rewrite hy' addrC addKr.
have hx : x' - x = Ds + mu' *: e.
  by rewrite /x' hx' -/r -/x addrAC hs ha.
exact: (heavy_ball_step g0 g_0 b0 hm hrec hx hd).
Qed.

(* kappa > 0 iff g L < 2 - beta (1 + g/g_) (constant g: g L < 2 (1 - beta)). *)
Theorem heavy_ball_kappa_pos (g g_ beta L' : R) :
  0 < g -> 0 < g_ ->
  (0 < 1 / g - beta / (2%:R * g_) - beta / (2%:R * g) - L' / 2%:R) =
  (g * L' < 2%:R - beta * (1 + g / g_)).
Proof.
move=> g0 g_0.
have gn : g != 0 by rewrite gt_eqF.
have g_n : g_ != 0 by rewrite gt_eqF.
have k0 : 0 < 2%:R * g by rewrite mulr_gt0 ?ltr0n.
rewrite -(pmulr_rgt0 _ k0) -[in RHS]subr_gt0.
have -> : 2%:R * g * (1 / g - beta / (2%:R * g_) - beta / (2%:R * g) - L' / 2%:R) =
          2%:R - beta * (1 + g / g_) - g * L' by field; rewrite gn g_n.
by [].
Qed.

(* The Lyapunov descent: V_t = f(x) + beta/(2 g_prev) omega_prev.  When the cost terms
   (L/2)(||D^s||^2 - omega) - Delta <G, r> - lambda_wd <y, W a> + Ehat sum to <= 0,
   f(x') + beta/(2g) omega <= V_t - kappa omega, and with kappa > 0 it is <= V_t.  The left side is
   V_{t+1} when <a, W_{t+1} a> = <a, W_t a> (same pattern projector and same mu); in general
   V_{t+1} = f(x') + beta/(2g) <a, W_{t+1} a> differs from it by beta/(2g) <a, (W_{t+1} - W_t) a>. *)
Theorem heavy_ball_descent (x x' y m m_ r e : vec) (g g_ beta mu' Dl lwd : R) :
  0 < g -> 0 < g_ -> 0 <= beta -> 0 <= mu' <= 1 ->
  let G := grad x in
  let a := - (g *: m) in
  let a_ := - (g_ *: m_) in
  m = beta *: m_ + G + lwd *: y ->
  let Ds := W mu' a - Dl *: r in
  x' - x = Ds + mu' *: e ->
  f x' <= f x + << G, x' - x >> + L / 2%:R * << x' - x, x' - x >> ->
  let omega := << a, W mu' a >> in
  let omega_ := << a_, W mu' a_ >> in
  let kappa := 1 / g - beta / (2%:R * g_) - beta / (2%:R * g) - L / 2%:R in
  let Ehat := mu' * (<< G, e >> + L * << Ds, e >>) + L / 2%:R * mu' ^+ 2 * << e, e >> in
  0 < kappa ->
  L / 2%:R * (<< Ds, Ds >> - omega) - Dl * << G, r >> - lwd * << y, W mu' a >> + Ehat <= 0 ->
  f x' + beta / (2%:R * g) * omega <= f x + beta / (2%:R * g_) * omega_ - kappa * omega /\
  f x' + beta / (2%:R * g) * omega <= f x + beta / (2%:R * g_) * omega_.
Proof.
move=> g0 g_0 b0 hm G a a_ hrec Ds hx hd omega omega_ kappa Ehat k0 hcost.
have hs := heavy_ball_step g0 g_0 b0 hm hrec hx hd.
have w0 : 0 <= omega by exact: W_nonneg.
have h1 : f x' + beta / (2%:R * g) * omega <= f x + beta / (2%:R * g_) * omega_ - kappa * omega.
  apply: le_trans hs _; rewrite -/omega -/omega_ -/kappa -/Ehat -/Ds.
  rewrite -subr_ge0.
  set C := L / 2%:R * _ - _ - _ + _ in hcost.
  have -> : f x + beta / (2%:R * g_) * omega_ - kappa * omega
            - (f x + beta / (2%:R * g_) * omega_ - kappa * omega + L / 2%:R * (<< Ds, Ds >> - omega)
               - Dl * << G, r >> - lwd * << y, W mu' a >> + Ehat) = - C by rewrite /C; ring.
  by rewrite oppr_ge0.
split => //; apply: le_trans h1 _.
by rewrite ler_subl_addr ler_addl mulr_ge0 // ltW.
Qed.

(* The a-priori flip cost Ebar (Lemma II.3(d) with ||a|| in place of g ||G||) needs the descent
   lemma at every point and an L-Lipschitz gradient. *)
Hypothesis L0 : 0 <= L.
Hypothesis descent : forall x D, f (x + D) <= f x + << grad x, D >> + L / 2%:R * << D, D >>.
Hypothesis grad_lipschitz : forall x z, nrm (grad z - grad x) <= L * nrm (z - x).

(* ||D^s|| <= ||a|| + |Delta| ||r|| (||W a|| <= ||a||), so with ||e|| <= B:
   f(x') <= f(x) + <G, D^s> + (L/2)||D^s||^2 + Ebar,
   Ebar = mu' (||G|| + L (||a|| + |Delta| ||r||)) B + (L/2) mu'^2 B^2. *)
Lemma heavy_ball_apriori (x x' a r e : vec) (mu' Dl B : R) :
  0 <= mu' <= 1 -> nrm e <= B ->
  let Ds := W mu' a - Dl *: r in
  x' - x = Ds + mu' *: e ->
  f x' <= f x + << grad x, Ds >> + L / 2%:R * << Ds, Ds >>
          + (mu' * (nrm (grad x) + L * (nrm a + `|Dl| * nrm r)) * B + L / 2%:R * mu' ^+ 2 * B ^+ 2).
Proof.
move=> hm he Ds hx.
have m0 : 0 <= mu' by case/andP: hm.
have hD : nrm Ds <= nrm a + `|Dl| * nrm r.
  apply: le_trans (nrm_triangle _ _) _; rewrite nrmN nrmZ ler_add2r; exact: W_norm_le.
have hE := flip_excess_apriori L0 descent grad_lipschitz x m0 he hD.
have ex : x' = x + Ds + mu' *: e by rewrite -addrA -hx addrC subrK.
rewrite ler_subl_addl -ex in hE; apply: le_trans hE _.
by rewrite ler_add2r; exact: descent.
Qed.

(* Theorem II.12 as THEORY.md states it, with the smaller of the two flip costs: for t >= 1,
   ||e|| <= B, the descent lemma and an L-Lipschitz gradient,
   f(x') + beta/(2g) omega <= f(x) + beta/(2g_) omega_ - kappa omega + (L/2)(||D^s||^2 - omega)
                               - Delta <G, r> - lambda_wd <y, W a> + min(Ebar, Ehat). *)
Theorem heavy_ball_step_min (x x' y m m_ r e : vec) (g g_ beta mu' Dl lwd B : R) :
  0 < g -> 0 < g_ -> 0 <= beta -> 0 <= mu' <= 1 -> nrm e <= B ->
  let G := grad x in
  let a := - (g *: m) in
  let a_ := - (g_ *: m_) in
  m = beta *: m_ + G + lwd *: y ->
  let Ds := W mu' a - Dl *: r in
  x' - x = Ds + mu' *: e ->
  let omega := << a, W mu' a >> in
  let omega_ := << a_, W mu' a_ >> in
  let kappa := 1 / g - beta / (2%:R * g_) - beta / (2%:R * g) - L / 2%:R in
  let Ehat := mu' * (<< G, e >> + L * << Ds, e >>) + L / 2%:R * mu' ^+ 2 * << e, e >> in
  let Ebar := mu' * (nrm G + L * (nrm a + `|Dl| * nrm r)) * B + L / 2%:R * mu' ^+ 2 * B ^+ 2 in
  is_true (f x' + beta / (2%:R * g) * omega <=
  f x + beta / (2%:R * g_) * omega_ - kappa * omega + L / 2%:R * (<< Ds, Ds >> - omega)
  - Dl * << G, r >> - lwd * << y, W mu' a >> + Num.min Ebar Ehat).
Proof.
move=> g0 g_0 b0 hm he G a a_ hrec Ds hx omega omega_ kappa Ehat Ebar.
have gn : g != 0 by rewrite gt_eqF.
have g_n : g_ != 0 by rewrite gt_eqF.
have c0 : 0 <= beta / g_ by rewrite divr_ge0 // ltW.
have hG : G = - (1 / g) *: a + (beta / g_) *: a_ - lwd *: y.
  by rewrite /a /a_ hrec; vec_field; rewrite ?gn ?g_n.
have hd : f x' <= f x + << G, x' - x >> + L / 2%:R * << x' - x, x' - x >>.
  by have := descent x (x' - x); rewrite [x + _]addrC subrK.
have e1 : beta / (2%:R * g_) = beta / g_ / 2%:R by field; rewrite g_n.
have e2 : 1 / g - beta / g_ / 2%:R - beta / (2%:R * g) - L / 2%:R = kappa by rewrite /kappa -e1.
have [->|->] : Num.min Ebar Ehat = Ebar \/ Num.min Ebar Ehat = Ehat.
  by rewrite /Order.min; case: (_ < _); [left | right].
  have := heavy_ball_core (beta / (2%:R * g)) c0 hm hG (heavy_ball_apriori hm he hx).
  by rewrite /omega /omega_ /Ebar /Ds e2 -e1.
have := heavy_ball_core (beta / (2%:R * g)) c0 hm hG (heavy_ball_recorded hx hd).
by rewrite /omega /omega_ /Ehat /Ds e2 -e1.
Qed.

(* The same at t = 0 (m_prev = 0, kappa_0 = 1/g - beta/(2g) - L/2). *)
Theorem heavy_ball_first_step_min (x x' y m r e : vec) (g beta mu' Dl lwd B : R) :
  0 < g -> 0 <= mu' <= 1 -> nrm e <= B ->
  let G := grad x in
  let a := - (g *: m) in
  m = G + lwd *: y ->
  let Ds := W mu' a - Dl *: r in
  x' - x = Ds + mu' *: e ->
  let omega := << a, W mu' a >> in
  let kappa0 := 1 / g - beta / (2%:R * g) - L / 2%:R in
  let Ehat := mu' * (<< G, e >> + L * << Ds, e >>) + L / 2%:R * mu' ^+ 2 * << e, e >> in
  let Ebar := mu' * (nrm G + L * (nrm a + `|Dl| * nrm r)) * B + L / 2%:R * mu' ^+ 2 * B ^+ 2 in
  is_true (f x' + beta / (2%:R * g) * omega <=
  f x - kappa0 * omega + L / 2%:R * (<< Ds, Ds >> - omega)
  - Dl * << G, r >> - lwd * << y, W mu' a >> + Num.min Ebar Ehat).
Proof.
move=> g0 hm he G a hrec Ds hx omega kappa0 Ehat Ebar.
have gn : g != 0 by rewrite gt_eqF.
have hG : G = - (1 / g) *: a + 0 *: a - lwd *: y.
  by rewrite /a hrec; vec_field; rewrite ?gn.
have hd : f x' <= f x + << G, x' - x >> + L / 2%:R * << x' - x, x' - x >>.
  by have := descent x (x' - x); rewrite [x + _]addrC subrK.
have e2 : 1 / g - 0 / 2%:R - beta / (2%:R * g) - L / 2%:R = kappa0 by rewrite /kappa0 mul0r subr0.
have [->|->] : Num.min Ebar Ehat = Ebar \/ Num.min Ebar Ehat = Ehat.
  by rewrite /Order.min; case: (_ < _); [left | right].
  have := heavy_ball_core (beta / (2%:R * g)) (lexx 0) hm hG (heavy_ball_apriori hm he hx).
  by rewrite /omega /Ebar /Ds e2 !mul0r addr0.
have := heavy_ball_core (beta / (2%:R * g)) (lexx 0) hm hG (heavy_ball_recorded hx hd).
by rewrite /omega /Ehat /Ds e2 !mul0r addr0.
Qed.

End HeavyBall.
