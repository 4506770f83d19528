(* Theorems 1 and 2 and sums over a window of steps: Corollary II.5, Theorem II.7 and
   Theorem II.8 (as corrected: c_t >= 0 is a hypothesis).  Sequences are indexed by nat. *)
From mathcomp Require Import all_ssreflect all_algebra.
From mathcomp Require Import ring.
From Brelax Require Import Euclid Steps.
Import Order.TTheory GRing.Theory Num.Theory.

Set Implicit Arguments.
Unset Strict Implicit.
Unset Printing Implicit Defensive.
Open Scope ring_scope.

Section Telescope.
Variable R : rcfType.

(* Summing per-step inequalities F(t+1) <= F(t) - C(t) + X(t) over t0 <= t < T. *)
Theorem telescope_sum (F C X : nat -> R) (t0 T : nat) :
  (t0 <= T)%N ->
  (forall t, (t0 <= t < T)%N -> F t.+1 <= F t - C t + X t) ->
  \sum_(t0 <= t < T) C t <= F t0 - F T + \sum_(t0 <= t < T) X t.
Proof.
elim: T => [|T IH] h0 hs.
  by move: h0; rewrite leqn0 => /eqP->; rewrite !big_geq // subrr addr0.
move: h0; rewrite leq_eqVlt => /orP[/eqP->|hlt].
  by rewrite !big_geq // subrr addr0.
have hT : (t0 <= T)%N by [].
rewrite !big_nat_recr //=.
have ih := IH hT (fun t ht => hs t ltac:(by case/andP: ht => a b; rewrite a ltnW)).
have st := hs T ltac:(by rewrite hT ltnSn).
rewrite -subr_ge0.
have -> : F t0 - F T.+1 + (\sum_(t0 <= i < T) X i + X T) - (\sum_(t0 <= i < T) C i + C T) =
          (F t0 - F T + \sum_(t0 <= i < T) X i - \sum_(t0 <= i < T) C i) + (F T - C T + X T - F T.+1)
  by ring.
by rewrite addr_ge0 // subr_ge0.
Qed.

(* A window has a step where S is smallest (decidable order, no classical axiom). *)
Lemma window_argmin (S : nat -> R) (t0 T : nat) :
  (t0 < T)%N -> exists t, (t0 <= t < T)%N /\ forall s, (t0 <= s < T)%N -> S t <= S s.
Proof.
elim: T => [//|T IH] h.
move: h; rewrite ltnS leq_eqVlt => /orP[/eqP<-|hlt].
  exists t0; split; first by rewrite leqnn ltnSn.
  by move=> s /andP[a b]; rewrite ltnS in b; have -> : s = t0 by apply/eqP; rewrite eqn_leq a b.
have [t [ht hmin]] := IH hlt.
case: (lerP (S t) (S T)) => hc.
  exists t; split; first by case/andP: ht => a b; rewrite a ltnS ltnW.
  move=> s /andP[a b]; rewrite ltnS leq_eqVlt in b; case/orP: b => [/eqP->//|b].
  by apply: hmin; rewrite a b.
exists T; split; first by rewrite ltnW // ltnSn.
move=> s /andP[a b]; rewrite ltnS leq_eqVlt in b; case/orP: b => [/eqP->//|b].
by apply: le_trans (ltW hc) (hmin s _); rewrite a b.
Qed.

(* min <= mean: some step of the window has (T - t0) S(t) <= the window's sum. *)
Theorem window_min (S : nat -> R) (t0 T : nat) :
  (t0 < T)%N -> exists t, (t0 <= t < T)%N /\ (T - t0)%:R * S t <= \sum_(t0 <= s < T) S s.
Proof.
move=> h; have [t [ht hmin]] := window_argmin S h.
exists t; split => //.
rewrite mulr_natl -sumr_const_nat; apply: ler_sum_nat => s hs; exact: hmin.
Qed.

(* Theorem 1 (ii): from (i) f(x_{t+1}) <= f(x_t) - c ||D_t||^2 on the window and f >= f_*,
   sum ||D_t||^2 <= (f(x_t0) - f(x_T)) / c <= (f(x_t0) - f_* ) / c. *)
Theorem theorem1_sum (F S : nat -> R) (c fstar : R) (t0 T : nat) :
  0 < c -> (t0 <= T)%N -> fstar <= F T ->
  (forall t, (t0 <= t < T)%N -> F t.+1 <= F t - c * S t) ->
  \sum_(t0 <= t < T) S t <= (F t0 - F T) / c /\ (F t0 - F T) / c <= (F t0 - fstar) / c.
Proof.
move=> c0 hT hf hs.
have hs' : forall t, (t0 <= t < T)%N -> F t.+1 <= F t - c * S t + 0.
  by move=> t ht; rewrite addr0; exact: hs.
have := @telescope_sum F (fun t => c * S t) (fun _ => 0) t0 T hT hs'.
rewrite big1_eq addr0 -mulr_sumr => h; split.
  by rewrite ler_pdivl_mulr // mulrC.
by rewrite ler_pmul2r ?invr_gt0 // ler_add2l ler_opp2.
Qed.

(* Theorem 1 (iii): min_t ||D_t||^2 <= (f(x_t0) - f_* ) / (c (T - t0)). *)
Theorem theorem1_min (F S : nat -> R) (c fstar : R) (t0 T : nat) :
  0 < c -> (t0 < T)%N -> fstar <= F T ->
  (forall t, (t0 <= t < T)%N -> F t.+1 <= F t - c * S t) ->
  exists t, (t0 <= t < T)%N /\ S t <= (F t0 - fstar) / (c * (T - t0)%:R).
Proof.
move=> c0 hT hf hs.
have [[h1 h2] [t [ht hm]]] := (theorem1_sum c0 (ltnW hT) hf hs, window_min S hT).
exists t; split => //.
have n0 : 0 < (T - t0)%:R :> R by rewrite ltr0n subn_gt0.
have h3 : (T - t0)%:R * S t <= (F t0 - fstar) / c := le_trans hm (le_trans h1 h2).
rewrite ler_pdivl_mulr ?mulr_gt0 //; rewrite ler_pdivl_mulr // in h3.
by apply: le_trans h3; apply: eq_le_; ring.
Qed.

(* Corollary II.5: summing Theorem II.4 over a window,
   sum c_t ||G_t||^2 <= f(x_t0) - f(x_T) + sum (K_t + N_t + E_t) <= f(x_t0) - f_* + sum(...). *)
Theorem flip_descent_sum (F CG KNE : nat -> R) (fstar : R) (t0 T : nat) :
  (t0 <= T)%N -> fstar <= F T ->
  (forall t, (t0 <= t < T)%N -> F t.+1 <= F t - CG t + KNE t) ->
  \sum_(t0 <= t < T) CG t <= F t0 - F T + \sum_(t0 <= t < T) KNE t /\
  F t0 - F T + \sum_(t0 <= t < T) KNE t <= F t0 - fstar + \sum_(t0 <= t < T) KNE t.
Proof.
move=> hT hf hs; split; first exact: telescope_sum.
by rewrite ler_add2r ler_add2l ler_opp2.
Qed.

(* Theorem II.7, the constant: c_t = g (1 - mu') (1 - g L (1 - mu') / 2) >= g (1 - mubar) (1 - g L / 2). *)
Lemma stationarity_constant (g L mu' mubar : R) :
  0 < g -> 0 <= L -> g * L <= 2%:R -> 0 <= mu' -> mu' <= mubar -> mubar <= 1 ->
  g * (1 - mubar) * (1 - g * L / 2%:R) <= g * (1 - mu') * (1 - g * L * (1 - mu') / 2%:R).
Proof.
move=> g0 L0 gL m0 mm mb.
have gL0 : 0 <= g * L by rewrite mulr_ge0 // ltW.
have a : 0 <= 1 - g * L / 2%:R by rewrite subr_ge0 ler_pdivr_mulr ?ltr0n // mul1r.
have k0 : 0 <= g * L / 2%:R by rewrite divr_ge0 ?ler0n.
rewrite -subr_ge0.
have -> : g * (1 - mu') * (1 - g * L * (1 - mu') / 2%:R) - g * (1 - mubar) * (1 - g * L / 2%:R) =
          g * ((mubar - mu') * (1 - g * L / 2%:R) + (1 - mu') * (g * L / 2%:R) * mu') by ring.
apply: mulr_ge0; first exact: ltW.
apply: addr_ge0; first by apply: mulr_ge0 => //; rewrite subr_ge0.
by apply: mulr_ge0 => //; apply: mulr_ge0 => //; rewrite subr_ge0 (le_trans mm mb).
Qed.

(* Theorem II.7: per-step f(x_{t+1}) <= f(x_t) - c_t ||grad f(x_t)||^2 + (K_t + Ebar_t) with
   c_t >= c > 0 on the window gives min_t ||grad f(x_t)||^2 <= (f(x_t0) - f_* + C_s) / (c (s - t0)). *)
Theorem stationarity_rate (F GG ct KE : nat -> R) (c fstar : R) (t0 s : nat) :
  0 < c -> (t0 < s)%N -> fstar <= F s ->
  (forall t, (t0 <= t < s)%N -> F t.+1 <= F t - ct t * GG t + KE t) ->
  (forall t, (t0 <= t < s)%N -> c <= ct t /\ 0 <= GG t) ->
  exists t, (t0 <= t < s)%N /\
    GG t <= (F t0 - fstar + \sum_(t0 <= u < s) KE u) / (c * (s - t0)%:R).
Proof.
move=> c0 hs hf step hc.
have step' : forall t, (t0 <= t < s)%N -> F t.+1 <= F t - c * GG t + KE t.
  move=> t ht; apply: le_trans (step t ht) _; rewrite ler_add2r ler_add2l ler_opp2.
  by have [a b] := hc t ht; rewrite ler_wpmul2r.
have hsum := @telescope_sum F (fun t => c * GG t) KE t0 s (ltnW hs) step'.
have [t [ht hm]] := window_min GG hs.
exists t; split => //.
have n0 : 0 < (s - t0)%:R :> R by rewrite ltr0n subn_gt0.
rewrite ler_pdivl_mulr ?mulr_gt0 //.
have -> : GG t * (c * (s - t0)%:R) = c * ((s - t0)%:R * GG t) by ring.
apply: le_trans (ler_wpmul2l (ltW c0) hm) _; rewrite mulr_sumr.
apply: le_trans hsum _; rewrite ler_add2r ler_add2l ler_opp2 //.
Qed.

(* Theorem II.8, one step (as corrected).  From Theorem II.4's
   f(x') <= f(x) - c_t ||grad f(x)||^2 + K + E, the PL inequality ||grad f(x)||^2 >= 2 m (f(x) - f_* )
   and c_t >= 0: e' <= (1 - 2 m c_t) e + K + E with e = f - f_*.
   Why c_t >= 0 is REQUIRED: for c_t < 0 the term -c_t ||grad f||^2 is positive and the PL lower
   bound on ||grad f||^2 points the wrong way.  Counterexample: f = (x1^2 + 0.01 x2^2)/2, L = 1,
   m = 0.01, gd (mu = 0) with g = 3 from (1, 1): c = g (1 - g L / 2) = -1.5 < 0, e_0 = 0.505,
   e_1 = 2.005 > (1 - 2 m c) e_0 = 0.520. *)
Theorem pl_step (fx fx' GG c m K E fstar : R) :
  0 <= c -> 2%:R * m * (fx - fstar) <= GG ->
  fx' <= fx - c * GG + K + E ->
  fx' - fstar <= (1 - 2%:R * m * c) * (fx - fstar) + K + E.
Proof.
move=> c0 pl h; rewrite -subr_ge0.
have -> : (1 - 2%:R * m * c) * (fx - fstar) + K + E - (fx' - fstar) =
          c * (GG - 2%:R * m * (fx - fstar)) + (fx - c * GG + K + E - fx') by ring.
by rewrite addr_ge0 // ?mulr_ge0 // subr_ge0.
Qed.

(* Theorem II.8, unrolled: e_{t+1} <= rho_t e_t + eta_t with rho_t >= 0 on t0 <= t < T gives
   e_T <= prod_t rho_t e_t0 + sum_t prod_{s > t} rho_s eta_t. *)
Theorem pl_unrolled (e rho eta : nat -> R) (t0 T : nat) :
  (t0 <= T)%N ->
  (forall t, (t0 <= t < T)%N -> 0 <= rho t) ->
  (forall t, (t0 <= t < T)%N -> e t.+1 <= rho t * e t + eta t) ->
  e T <= (\prod_(t0 <= s < T) rho s) * e t0 + \sum_(t0 <= t < T) (\prod_(t.+1 <= s < T) rho s) * eta t.
Proof.
elim: T => [|T IH] h0 hr hs.
  by move: h0; rewrite leqn0 => /eqP->; rewrite big_geq // big_geq // mul1r addr0.
move: h0; rewrite leq_eqVlt => /orP[/eqP->|hlt].
  by rewrite big_geq // big_geq // mul1r addr0.
have hT : (t0 <= T)%N by [].
have ih := IH hT (fun t ht => hr t ltac:(by case/andP: ht => a b; rewrite a ltnW))
                 (fun t ht => hs t ltac:(by case/andP: ht => a b; rewrite a ltnW)).
have rT : 0 <= rho T by apply: hr; rewrite hT ltnSn.
apply: le_trans (hs T ltac:(by rewrite hT ltnSn)) _.
rewrite big_nat_recr //= big_nat_recr //= [X in X * eta T]big_geq // mul1r addrA ler_add2r.
have -> : (\prod_(t0 <= i < T) rho i) * rho T * e t0 +
          \sum_(t0 <= i < T) (\prod_(i.+1 <= s < T.+1) rho s) * eta i =
          rho T * ((\prod_(t0 <= s < T) rho s) * e t0 +
                   \sum_(t0 <= t < T) (\prod_(t.+1 <= s < T) rho s) * eta t).
  rewrite mulrDr mulr_sumr; congr (_ + _); first by ring.
  by apply: eq_big_nat => i /andP[_ hi]; rewrite big_nat_recr //=; ring.
exact: ler_wpmul2l.
Qed.

(* Theorem 2, the sum: per-step c_eps S_t <= F_t - F_{t+1} + X_t with c_eps > 0 and F_T >= f_*
   give sum S_t <= (F_t0 - f_* + sum X_t) / c_eps. *)
Theorem theorem2_sum (F S X : nat -> R) (ce fstar : R) (t0 T : nat) :
  0 < ce -> (t0 <= T)%N -> fstar <= F T ->
  (forall t, (t0 <= t < T)%N -> ce * S t <= F t - F t.+1 + X t) ->
  \sum_(t0 <= t < T) S t <= (F t0 - fstar + \sum_(t0 <= t < T) X t) / ce.
Proof.
move=> c0 hT hf hs.
have hs' : forall t, (t0 <= t < T)%N -> F t.+1 <= F t - ce * S t + X t.
  move=> t ht; have := hs t ht; rewrite -subr_ge0 => h; rewrite -subr_ge0.
  by have -> : F t - ce * S t + X t - F t.+1 = F t - F t.+1 + X t - ce * S t by ring.
have := @telescope_sum F (fun t => ce * S t) X t0 T hT hs'.
rewrite -mulr_sumr => h; rewrite ler_pdivl_mulr // mulrC.
by apply: le_trans h _; rewrite ler_add2r ler_add2l ler_opp2.
Qed.

(* Theorem 2, the last claim: with mu non-decreasing in [0, 1], sum (mu_{t+1} - mu_t)^2 <= 1. *)
Theorem theorem2_mu_sum (mu : nat -> R) (t0 T : nat) :
  (t0 <= T)%N -> 0 <= mu t0 -> mu T <= 1 ->
  (forall t, (t0 <= t < T)%N -> 0 <= mu t /\ mu t <= mu t.+1 /\ mu t.+1 <= 1) ->
  \sum_(t0 <= t < T) (mu t.+1 - mu t) ^+ 2 <= 1.
Proof.
move=> hT m0 m1 hm.
apply: le_trans (_ : _ <= \sum_(t0 <= t < T) (mu t.+1 - mu t)) _.
  apply: ler_sum_nat => t ht; have [a [b c]] := hm t ht.
  rewrite expr2 ler_pimulr ?subr_ge0 //.
  by rewrite ler_subl_addr (le_trans c) // ler_addl.
by rewrite telescope_sumr // ler_subl_addr (le_trans m1) // ler_addl.
Qed.

End Telescope.

Section Theorem1Step.
Variable R : rcfType.
Variable n : nat.
Notation vec := 'rV[R]_n.
Variable f : vec -> R.
Variable grad : vec -> vec.
Variable L : R.
Hypothesis descent : forall x D, f (x + D) <= f x + << grad x, D >> + L / 2%:R * << D, D >>.

(* Theorem 1(i): mu fixed, AOC(d) (<r - r', D> <= d ||D||^2), mu >= 0:
   f(x') <= f(x) - c ||D||^2 with c = (1 - g L / 2 - mu d) / g. *)
Theorem theorem1_step (y y' P P' : vec) (g mu d : R) :
  0 < g -> 0 <= mu ->
  let r := y - P in let r' := y' - P' in
  let x := y - mu *: r in let x' := y' - mu *: r' in let D := x' - x in
  y' = y - g *: grad x ->
  << r - r', D >> <= d * << D, D >> ->
  f x' <= f x - (1 - g * L / 2%:R - mu * d) / g * << D, D >>.
Proof.
move=> g0 mu0 r r' x x' D hy aoc.
apply: le_trans (@lemma_b R n f grad L descent y y' P P' g mu mu g0 hy) _.
rewrite -subr_ge0.
have gn0 : g != 0 by rewrite gt_eqF.
have -> : f x - (1 - g * L / 2%:R - mu * d) / g * << D, D >> -
          (f x - 1 / g * (1 - g * L / 2%:R) * << D, D >> + mu / g * << r - r', D >>
           - (mu - mu) / g * << r, D >>) = mu / g * (d * << D, D >> - << r - r', D >>).
  by field; done.
by apply: mulr_ge0; [apply: divr_ge0 => //; exact: ltW | rewrite subr_ge0].
Qed.

(* Theorem 2, one step: varying mu, mu' <r - r', D> <= kappa ||D||^2, ||r|| <= Rr, eps > 0:
   c_eps ||D||^2 <= f(x) - f(x') + Rr^2 Delta^2 / (4 eps g), c_eps = (1 - g L / 2 - kappa - eps) / g.
   (Cauchy-Schwarz on the continuation term, then Young's inequality.) *)
Theorem theorem2_step (y y' P P' : vec) (g mu mu' kappa Rr eps : R) :
  0 < g -> 0 < eps ->
  let r := y - P in let r' := y' - P' in
  let x := y - mu *: r in let x' := y' - mu' *: r' in let D := x' - x in
  y' = y - g *: grad x ->
  mu' * << r - r', D >> <= kappa * << D, D >> -> nrm r <= Rr ->
  (1 - g * L / 2%:R - kappa - eps) / g * << D, D >> <=
  f x - f x' + Rr ^+ 2 * (mu' - mu) ^+ 2 / (4%:R * eps * g).
Proof.
move=> g0 e0 r r' x x' D hy aoc hr.
have hb := @lemma_b R n f grad L descent y y' P P' g mu mu' g0 hy.
rewrite -/r -/r' -/x -/x' -/D in hb.
have gn0 : g != 0 by rewrite gt_eqF.
have en0 : eps != 0 by rewrite gt_eqF.
set Dl := mu' - mu in hb *; clearbody Dl.
(* -Delta <r, D> <= |Delta| Rr ||D|| <= eps ||D||^2 + Delta^2 Rr^2 / (4 eps) *)
have hcs : - Dl * << r, D >> <= `|Dl| * (Rr * nrm D).
  apply: le_trans (ler_norm _) _; rewrite normrM normrN ler_wpmul2l //.
  apply: le_trans (cs_abs _ _) _; rewrite ler_wpmul2r ?nrm_ge0 //.
have hyoung : `|Dl| * (Rr * nrm D) <= eps * << D, D >> + Rr ^+ 2 * Dl ^+ 2 / (4%:R * eps).
  rewrite -nrm_sq -[Dl ^+ 2]real_normK ?num_real //.
  move: `|Dl| (nrm D) => A N; rewrite -subr_ge0.
  have -> : eps * N ^+ 2 + Rr ^+ 2 * A ^+ 2 / (4%:R * eps) - A * (Rr * N) =
            (eps * N - A * Rr / 2%:R) ^+ 2 / eps by field.
  by apply: divr_ge0; [exact: sqr_ge0 | exact: ltW].
have hk : mu' / g * << r - r', D >> <= kappa / g * << D, D >>.
  by rewrite [mu' / g * _]mulrAC [kappa / g * _]mulrAC ler_pmul2r ?invr_gt0.
rewrite -subr_ge0.
have e : f x - f x' + Rr ^+ 2 * Dl ^+ 2 / (4%:R * eps * g) -
         (1 - g * L / 2%:R - kappa - eps) / g * << D, D >> =
         (f x - 1 / g * (1 - g * L / 2%:R) * << D, D >> + mu' / g * << r - r', D >> - Dl / g * << r, D >> - f x')
         + (kappa / g * << D, D >> - mu' / g * << r - r', D >>)
         + (eps * << D, D >> + Rr ^+ 2 * Dl ^+ 2 / (4%:R * eps) - `|Dl| * (Rr * nrm D)) / g
         + (`|Dl| * (Rr * nrm D) - - Dl * << r, D >>) / g.
  by move: `|Dl| (nrm D) => A N; field; rewrite ?en0 ?gn0.
rewrite e; apply: addr_ge0; last by apply: divr_ge0; [rewrite subr_ge0 | exact: ltW].
apply: addr_ge0; last by apply: divr_ge0; [rewrite subr_ge0 | exact: ltW].
by apply: addr_ge0; rewrite subr_ge0.
Qed.

End Theorem1Step.
