r"""``QuantOptimizer``: BinaryRelax and its baselines around any torch optimizer.

The step rules are those of :mod:`brelax.steps`, reused as they are. Every
rule there factors into an *anchor step* followed by its own ``init``:

.. math::

    \texttt{update}(s, g, \eta, \mu', P) = \texttt{init}(a(s) - \eta g,\ \mu',\ P),
    \qquad a(s) = s.y \text{ (lazy methods)},\ s.x \text{ (the others)}.

Proof, by reading the five pairs: ``lazy_update`` computes ``y' = y - lr g``,
``p = P(y')`` and returns ``State(relax(y', p, mu'), y', p)``, which is
``lazy_init(y', mu', P)``; ``pgd_update`` returns ``State(P(z), z, P(z))`` with
``z = x - lr g``, which is ``pgd_init(z)``; ``prox_update`` returns
``State(relax(z, P(z), mu'), z, P(z)) = prox_init(z, mu', P)``; ``gd_update``
returns ``State(x', x', P(x')) = gd_init(x')``. (Checked bitwise in the tests.)

So the wrapper lets the base optimizer do the anchor step (``a - lr g`` for
plain SGD; momentum, weight decay or Adam otherwise) and then calls the
method's ``init`` on the new anchor. With plain SGD this *is*
:func:`brelax.optimize`. One :meth:`step`:

1. lazy methods (binaryrelax, binaryconnect): the parameters take the latent
   ``y`` (the ``.grad`` there was computed at ``x``) by swapping storages with
   ``state[p]["latent"]``, not by a copy;
2. ``base_optimizer.step()``: the parameters now hold the new anchor (lazy
   methods: swapped back into the latent, the parameter gets ``x``'s buffer);
3. the step count advances, ``mu`` is read from the schedule;
4. ``x = init(anchor, mu, P).x`` is written into the parameters, the anchor is
   kept in ``state[p]["latent"]`` (lazy methods and proxquant; for pgd the
   anchor is only needed to form ``x = P(anchor)``).

mu comes from one :class:`brelax.schedules.RelaxSchedule` (the one
:func:`brelax.optimize` uses); the per-step diagnostics are those of
:mod:`brelax.diagnostics`, computed by the same functions as in the NumPy
driver, per quantized tensor and in total over all parameters.

``P(x) = P(y)`` for ``x`` on the segment ``[y, P(y)]`` (see
:mod:`brelax.diagnostics`), and the same fact makes ``P(x) = P(z)`` for
proxquant, so :meth:`finalize` projects the anchor for every method.

Where ``x`` and ``y`` live. The model's parameters hold ``x`` (the point the
next gradient is taken at); ``state[p]["latent"]`` holds the anchor ``y`` for
the methods that keep one (:attr:`brelax.steps.Method.keeps_anchor`: the lazy
methods and proxquant); pgd and gd have no separate anchor. After
:meth:`load_state_dict` the parameters hold ``x = init(y, mu, P).x``, formed
from the loaded ``y`` and ``mu`` (the same operations as the step that wrote
them, so the same bits as the saved model's ``x``); for pgd and gd the model's
own ``load_state_dict`` restores them. :meth:`restore_latent_params` writes
``y`` into the parameters instead (to inspect or export the float weights, as
PARQ's method of the same name) and :meth:`restore_x` writes ``x`` back.

Conventions of ``torch.optim``: :meth:`state_dict` has torch's layout
(``state``, ``param_groups``) plus brelax's entry ``quant`` (method, schedule,
step and epoch counts, which tensors are quantized, the latent ``y``), so
``torch.distributed.checkpoint.state_dict.get_optimizer_state_dict`` works on it
and the state dict of the base optimizer alone loads (the latent weights then
start from the parameters). Attributes not defined here are those of the base
optimizer (``opt.defaults``, ``opt.base.foo`` as ``opt.foo``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import numbers
import warnings

import torch

from .. import diagnostics as dg
from .._validate import check_axis, check_choice
from ..prox import relax
from ..schedules import DEFAULT_RHO, RelaxSchedule, schedule_spec
from ..sets import QuantizedTensor, QuantSet, get_set
from ..steps import METHODS, State, get_method, lazy_init

#: The methods, as registered in :data:`brelax.steps.METHODS` (``gd`` trains without quantization).
METHOD_NAMES = tuple(METHODS)
#: Group entries that describe the run, not the base optimizer's hyperparameters.
_NOT_HYPER = ("params", "param_names", "lr", "initial_lr", "qset", "axis", "brelax")


@dataclasses.dataclass
class _SlotBefore:
    """One quantized tensor before a step: ``x_t``, the ``.grad`` (``g_t``), ``r_t``, its codes and ``P(y_t)``."""

    x: torch.Tensor
    grad: torch.Tensor | None
    r: torch.Tensor | None
    codes: torch.Tensor | None
    p: torch.Tensor | None


@dataclasses.dataclass
class _Before:
    """What the diagnostics of one step need from before it (replaces a positional tuple).

    ``slots``: per quantized tensor; ``float_x`` and ``float_grad``: the float parameters as one
    flat vector. When the base optimizer is not plain SGD (:attr:`QuantOptimizer.direction` is
    ``"anchor step"``) also the anchors ``a_t`` (``anchors``, ``float_anchor``) and the learning
    rates (``lrs``: per slot, and a flat tensor for the float parameters), to measure
    ``g_t = (a_t - a_{t+1})/lr_t``.
    """

    slots: list
    float_x: torch.Tensor | None
    float_grad: torch.Tensor | None
    anchors: list | None = None
    float_anchor: torch.Tensor | None = None
    lrs: tuple | None = None


class _Projection:
    """``P`` for one tensor that remembers its last :class:`QuantizedTensor` (codes, scales)."""

    def __init__(self, qset: QuantSet, axis):
        self.qset, self.axis = qset, axis
        self.last: QuantizedTensor | None = None

    def __call__(self, w):
        qt = self.last = self.qset.quantize(w, axis=self.axis)
        return qt.dequantize()


class _Slot:
    """A quantized parameter: its name, set, granularity and projection."""

    __slots__ = ("axis", "codes", "index", "name", "p", "param", "proj", "qset", "r", "scales", "state")

    def __init__(self, param, name, index, qset, axis):
        self.param, self.name, self.index, self.qset = param, name, index, qset
        self.axis = axis if param.ndim >= 2 else None  # a 1-D tensor gets one scale (warned in _plan)
        self.proj = _Projection(qset, self.axis)
        # Kept only for diagnostics: codes, r = y - P(y), P(y) and the State of the current point.
        self.codes = self.r = self.p = self.scales = self.state = None


class QuantOptimizer(torch.optim.Optimizer):
    """Wrap a torch optimizer so that the model is trained on ``x = relax(y, P(y), mu)``.

    Parameters
    ----------
    base_optimizer : torch.optim.Optimizer
        Any optimizer whose ``step`` needs no closure (SGD, Adam, AdamW, ...; LBFGS is
        refused: it re-evaluates the loss at points the wrapper never formed). Its
        ``param_groups`` are shared with the wrapper (LR schedulers may wrap either).
    method : one of :data:`brelax.steps.METHODS`
        "gd" trains without quantization; ``finalize`` still projects.
    qset : QuantSet or str
        The set used for groups without a ``"qset"`` key.
    axis : int or None
        0: one scale per output channel (default); None: one per tensor. A
        group's ``"axis"`` key overrides it. Tensors with ``ndim < 2`` get one scale.
    lam0, rho : float
        ``lam_k = lam0 * rho**k`` and ``mu = lam / (1 + lam)`` (rho's default
        :data:`brelax.schedules.DEFAULT_RHO`); ``k`` is the
        step count (``schedule="step"``) or the number of :meth:`epoch_end` calls.
    schedule : {"epoch", "step"}
    phase2_start : int or None
        From this step count on ``mu = 1`` (Phase II). Counted in steps.
    mu_schedule : callable ``t -> mu`` or None
        Replaces the lam schedule (e.g. :func:`brelax.schedules.linear_mu`), ``t`` the step count.
    diagnostics : bool
        Fill :attr:`last_diagnostics` at every step (and :attr:`first_diagnostics` for ``x_0``):
        ``{"step": t, "mu": mu_{t+1}, "total": {...}, "layers": {name: {...}}}`` with the
        :data:`brelax.diagnostics.STEP_OUT` and :data:`~brelax.diagnostics.POINT_OUT` fields of the
        step ``x_t -> x_{t+1}``, per quantized tensor and in total over every parameter of the
        groups (float ones included). ``g_t`` is the direction the anchor moved along,
        ``a_{t+1} = a_t - lr_t g_t`` (see :attr:`direction`): the ``.grad`` the step was given for
        plain SGD, ``(a_t - a_{t+1})/lr_t`` for any other base optimizer (momentum, weight decay,
        Adam). The full gradient is unknown here, so its fields are NaN. Costs one device sync per step.

    Which tensors are quantized: a group with a ``"qset"`` key quantizes all its
    tensors with that set (None: none of them; a 1-D tensor there is quantized with
    one scale, with a warning); in a group without the key every tensor with
    ``ndim >= 2`` (conv and linear weights) is quantized with ``qset``.

    A step whose new anchor or float parameter is NaN or inf raises FloatingPointError
    naming the tensor (float and quantized parameters alike).

    Raises
    ------
    TypeError
        ``base_optimizer`` is not a torch optimizer or needs a closure (LBFGS), or
        ``mu_schedule`` is not callable.
    ValueError
        Unknown method, set or schedule, ``lam0 < 0``, ``rho < 1``, a negative ``phase2_start``.

    Examples
    --------
    >>> import torch
    >>> from brelax.torch import QuantOptimizer
    >>> w = torch.nn.Parameter(torch.randn(4, 3))
    >>> opt = QuantOptimizer(torch.optim.SGD([w], lr=0.1), method="binaryrelax", qset="binary")
    >>> sorted(opt.state_dict())
    ['param_groups', 'quant', 'state']
    """

    def __init__(
        self,
        base_optimizer,
        method="binaryrelax",
        qset="binary",
        axis=0,
        lam0=1.0,
        rho=DEFAULT_RHO,
        schedule="epoch",
        phase2_start=None,
        mu_schedule=None,
        diagnostics=False,
    ):
        _check_base(base_optimizer)
        self._m = get_method(method)  # METHODS as registered now: a method added there runs here unchanged
        self.method = self._m.name
        self.qset = get_set(qset)
        if axis is not None and (isinstance(axis, bool) or not isinstance(axis, numbers.Integral)):
            raise TypeError(f"axis must be an int or None, got {axis!r}")
        self.axis = axis
        self.schedule = check_choice(schedule, ("epoch", "step"), "schedule")
        if mu_schedule is not None and not callable(mu_schedule):
            raise TypeError(f"mu_schedule must be callable t -> mu, got {type(mu_schedule).__name__}")
        self.relax_schedule = RelaxSchedule(method, lam0, rho, 1, phase2_start, mu_schedule)
        self.diagnostics = bool(diagnostics)
        self.base = base_optimizer
        self._ready = False
        super().__init__(base_optimizer.param_groups, dict(base_optimizer.defaults))
        self.param_groups = base_optimizer.param_groups  # one list, shared with the base
        self._step, self._epoch = 0, 0
        self.last_diagnostics: dict = {}
        self.first_diagnostics: dict = {}
        self._pending: _Before | None = None
        self._params_hold_latent = False
        self.slots = self._plan()
        self._ready = True
        self._start()

    # ----------------------------------------------------------------- planning
    def _plan(self) -> list:
        slots, index = [], 0
        for gi, group in enumerate(self.param_groups):
            names = group.get("param_names")
            for pi, p in enumerate(group["params"]):
                name = names[pi] if names else f"group{gi}.param{pi}"
                if "qset" in group:
                    q = None if group["qset"] is None else get_set(group["qset"])
                else:
                    q = self.qset if p.ndim >= 2 else None
                if q is not None:
                    if not p.dtype.is_floating_point:
                        raise TypeError(f"parameter {name} has dtype {p.dtype}; only float tensors can be quantized")
                    if p.ndim < 2:
                        warnings.warn(
                            f"parameter {name} is {p.ndim}-D (shape {tuple(p.shape)}) in a quantized group: it is "
                            "quantized with one scale; give biases and norms a group with qset=None to keep them float",
                            stacklevel=3,
                        )
                    axis = group.get("axis", self.axis)
                    if axis is not None and p.ndim >= 2:
                        axis = check_axis(axis, p.ndim, f"axis of {name}")
                    slots.append(_Slot(p, name, index, q, axis))
                index += 1
        return slots

    @property
    def direction(self) -> str:
        """What the diagnostics' ``g_t`` is: ``"gradient"`` or ``"anchor step"``.

        Plain SGD (no momentum, no weight decay, not maximising) moves the anchor by exactly
        ``-lr_t`` times the ``.grad`` of the step, so ``g_t`` is that gradient. Any other base
        optimizer moves it along another direction; then ``g_t = (a_t - a_{t+1})/lr_t`` is the
        direction actually taken, and every statement about ``y_{t+1} = y_t - lr_t g_t`` for an
        arbitrary ``g_t`` (the monotonicity of the projection, THEORY.md Theorem II.2) applies to it.
        """
        plain = isinstance(self.base, torch.optim.SGD) and all(
            g.get("momentum", 0) == 0 and g.get("weight_decay", 0) == 0 and not g.get("maximize", False)
            for g in self.param_groups
        )
        return "gradient" if plain else "anchor step"

    @property
    def _keeps_anchor(self) -> bool:
        return self._m.keeps_anchor

    def __getattr__(self, name):
        """Attributes not found here are the base optimizer's (PARQ's convention), e.g. ``opt.defaults``."""
        base = self.__dict__.get("base")
        if base is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(base, name)

    def add_param_group(self, param_group):
        if getattr(self, "_ready", False):
            raise NotImplementedError("add parameter groups to the base optimizer before wrapping it")
        super().add_param_group(param_group)

    # ---------------------------------------------------------------- schedule
    lam0 = property(lambda self: self.relax_schedule.lam0)
    rho = property(lambda self: self.relax_schedule.rho)
    phase2_start = property(lambda self: self.relax_schedule.phase2_start)
    mu_schedule = property(lambda self: self.relax_schedule.mu_ramp)

    def _k(self, step) -> int:
        return step if self.schedule == "step" else self._epoch

    @property
    def lam(self) -> float:
        """``lam0 * rho**k`` (inf once it overflows); not used by pgd/binaryconnect/gd."""
        return self.relax_schedule.lam(self._k(self._step))

    def mu_at(self, step: int) -> float:
        """``mu`` of the point ``x`` formed at step count ``step`` (1 in Phase II); lam index ``k`` as scheduled."""
        return self.relax_schedule.mu(step, k=self._k(step))

    @property
    def mu(self) -> float:
        return self.mu_at(self._step)

    @property
    def phase(self) -> int:
        return 2 if self.phase2_start is not None and self._step >= self.phase2_start else 1

    @property
    def step_count(self) -> int:
        return self._step

    @property
    def epoch(self) -> int:
        return self._epoch

    # ------------------------------------------------------------------- steps
    def _write_x(self, slot, anchor, mu):
        """``x = init(anchor, mu, P).x`` into the parameter; returns the State."""
        if self._m.init is lazy_init:
            # x = relax(y, P(y), mu) = y - mu (y - P(y)), written into the parameter by the same operations
            # (the same bits as brelax.relax) without the expression's full-size temporaries. (torch.lerp would
            # be one pass, but it fuses and switches formula at weight 0.5: other bits than relax.)
            p = slot.proj(anchor)
            x = slot.param
            if isinstance(mu, (int, float)) and mu == 1:
                x.copy_(p)
            else:
                torch.sub(anchor, p, out=x)
                x.mul_(mu)
                torch.sub(anchor, x, out=x)
            return State(x, anchor, p)
        s = self._m.init(anchor, mu, slot.proj)
        if s.x is not slot.param:
            slot.param.copy_(s.x)
        return s

    def _start(self):
        with torch.no_grad():
            mu = self.mu
            for slot in self.slots:
                y0 = slot.param.detach().clone()
                if self._keeps_anchor:
                    self.state[slot.param]["latent"] = y0
                s = self._write_x(slot, y0, mu)
                if self.diagnostics:
                    self._remember(slot, s)
            if self.diagnostics:
                self._tracked = self._track()
                self.first_diagnostics = self._measure(mu, None)

    def _track(self) -> list:
        """The float (unquantized) parameters of the groups: with the slots, the totals run over all of them."""
        quantized = {id(s.param) for s in self.slots}
        return [p for g in self.param_groups for p in g["params"] if id(p) not in quantized]

    def _lrs(self) -> tuple:
        """The learning rate of each slot's group, and of every tracked float parameter (flat, as a tensor)."""
        of = {id(p): g["lr"] for g in self.param_groups for p in g["params"]}
        flat = None
        if self._tracked:
            flat = torch.cat(
                [torch.full((p.numel(),), float(of[id(p)]), dtype=p.dtype, device=p.device) for p in self._tracked]
            )
        return [float(of[id(s.param)]) for s in self.slots], flat

    def _flat_float(self, grad: bool):
        """The float parameters (or their gradients; a missing one counts as 0) as one flat vector, or None."""
        if not self._tracked:
            return None
        if grad:
            return torch.cat(
                [
                    torch.zeros_like(p).reshape(-1) if p.grad is None else p.grad.detach().reshape(-1)
                    for p in self._tracked
                ]
            )
        return torch.cat([p.detach().reshape(-1) for p in self._tracked])

    def _remember(self, slot, s):
        last = slot.proj.last
        slot.state, slot.p, slot.codes, slot.scales, slot.r = s, s.p, last.codes, last.scales, s.y - s.p

    @torch.no_grad()
    def step(self, closure=None):
        """One step: restore ``y`` (lazy methods), the base step, then ``x = init(anchor, mu, P).x``.

        ``closure`` (optional) is evaluated once, at ``x``, before anything moves.
        Raises FloatingPointError naming the tensor when the new anchor is not finite.
        """
        if self._params_hold_latent:  # the gradient was taken at y, not at x: no step rule applies
            raise RuntimeError(
                "the parameters hold the latent weights y since restore_latent_params(); "
                "call restore_x() before the forward pass of the next step"
            )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        diag = self.diagnostics
        if diag:  # x_t, g_t and (per quantized tensor) r_t, codes and P(y_t), before anything moves
            self._pending = _Before(
                [
                    _SlotBefore(
                        s.param.detach().clone(),
                        None if s.param.grad is None else s.param.grad.detach().clone(),
                        s.r,
                        s.codes,
                        s.p,
                    )
                    for s in self.slots
                ],
                self._flat_float(False),
                self._flat_float(True),
            )
        if self._m.lazy:  # the parameters take y by swapping storages with the latent (no copy); swapped back below
            self._swap_latent()
        if diag and self.direction == "anchor step":  # a_t, to measure the direction the base step takes
            assert self._pending is not None
            self._pending.anchors = [s.param.detach().clone() for s in self.slots]
            self._pending.float_anchor = self._flat_float(False)
            self._pending.lrs = self._lrs()
        try:
            self.base.step()
        finally:
            if self._m.lazy:  # y' is in the parameters' storage: back to the latent; x is rewritten below
                self._swap_latent()
        self._check_float_finite()
        self._step += 1
        mu = self.mu
        for slot in self.slots:
            p = slot.param
            if self._keeps_anchor:
                anchor = self.state[p]["latent"]
                if not self._m.lazy:  # (lazy methods: already there, by the swap)
                    anchor.copy_(p)
            elif not self._m.quantizes and not diag:
                continue  # unquantized training: the base step is the whole step
            else:  # pgd, gd: the anchor is the parameter; keep a copy if diagnostics need it
                anchor = p.detach().clone() if diag else p.detach()
            try:
                s = self._write_x(slot, anchor, mu)
            except ValueError:
                if not bool(torch.isfinite(anchor).all()):
                    raise FloatingPointError(
                        f"parameter {slot.name} is not finite after step {self._step} "
                        f"(lr too large or a non-finite gradient)"
                    ) from None
                raise
            if diag:
                self._remember(slot, s)
        if diag:
            self.last_diagnostics = self._measure(mu, self._pending)
        return loss

    def _swap_latent(self):
        """Exchange the storages of every quantized parameter and its latent ``y`` (``param.data``: no copy)."""
        for slot in self.slots:
            st = self.state[slot.param]
            st["latent"], slot.param.data = slot.param.data, st["latent"]

    def _measure(self, mu, pending) -> dict:
        """The diagnostics of the current point (and of the step from ``pending``), via :mod:`brelax.diagnostics`."""
        steps, points, names, moms = [], [], [], []
        # Theorem II.12 (heavy ball) needs the anchor step against the old and new patterns and the raw gradient
        momentum = pending is not None and pending.anchors is not None
        for i, slot in enumerate(self.slots):
            s, x = slot.state, slot.param.detach()
            points.append(dg.point_sums(slot.r, None, slot.scales))
            if pending is not None:
                b = pending.slots[i]
                g = b.grad
                if pending.anchors is not None:  # the anchor step's direction (a_t - a_{t+1})/lr_t
                    assert pending.lrs is not None
                    g = _direction(pending.anchors[i], s.y, pending.lrs[0][i])
                xs = ps = None
                if self._m.lazy:
                    ps = dg.stable_projection(s.y, b.p, slot.axis)
                    xs = relax(s.y, ps, mu)
                steps.append(dg.step_sums(b.x, x, b.r, slot.r, b.codes, slot.codes, g, None, xs, s.p, ps))
                if momentum:
                    moms.append(dg.momentum_sums(pending.anchors[i], s.y, b.r, s.p, ps, b.grad, slot.axis))
            names.append(slot.name)
        if self._tracked:  # the float parameters, as one block: r = 0, no codes, x^s = x
            x = self._flat_float(False)
            zero = torch.zeros_like(x)
            points.append(dg.point_sums(zero))
            if pending is not None:
                stable = (x, zero, zero) if self._m.lazy else (None, None, None)
                if pending.anchors is None:
                    g = pending.float_grad
                else:
                    assert pending.lrs is not None
                    g = _direction(pending.float_anchor, x, pending.lrs[1])
                steps.append(dg.step_sums(pending.float_x, x, zero, zero, None, None, g, None, *stable))
                if momentum:
                    moms.append(dg.momentum_sums(pending.float_anchor, x, zero, g_raw=pending.float_grad))
            names.append(None)
        n, ns = len(points), len(steps)
        rows = torch.cat(points + steps + moms).cpu().numpy()  # one device sync per step
        k = n * len(dg.POINT_SUMS)
        pr, sr, mr = rows[:k], rows[k : k + ns * len(dg.STEP_SUMS)], rows[k + ns * len(dg.STEP_SUMS) :]
        st, pt, layers = dg.combine(sr if pending is not None else None, pr, mu, names)
        if moms:
            st.update(zip(dg.MOMENTUM_SUMS, mr.reshape(-1, len(dg.MOMENTUM_SUMS)).sum(axis=0).tolist(), strict=True))
        return {
            "step": self._step - 1 if pending is not None else None,
            "mu": mu,
            "total": {**st, **pt},
            "layers": layers,
        }

    @torch.no_grad()
    def epoch_end(self):
        """Count an epoch; with ``schedule="epoch"`` lam advances and ``x`` is re-formed with the new mu.

        Then ``x_t`` is exactly what :func:`brelax.optimize` forms with
        ``lam_every`` = steps per epoch, and the last step's diagnostics are
        recomputed for the re-formed ``x``.
        """
        old = self.mu
        self._epoch += 1
        if self._keeps_anchor and self.mu != old:
            for slot in self.slots:
                s = self._write_x(slot, self.state[slot.param]["latent"], self.mu)
                if self.diagnostics:
                    self._remember(slot, s)
            if self.diagnostics and self._pending is not None:
                self.last_diagnostics = self._measure(self.mu, self._pending)

    # --------------------------------------------------------- quantized model
    def _anchor(self, slot):
        return self.state[slot.param]["latent"] if self._keeps_anchor else slot.param.detach()

    def quantized_tensors(self) -> dict:
        """``{name: QuantizedTensor}``: codes and scales of ``P(anchor)`` for every quantized tensor."""
        with torch.no_grad():
            return {s.name: s.qset.quantize(self._anchor(s), axis=s.axis) for s in self.slots}

    @torch.no_grad()
    def finalize(self):
        """Write ``P(y)`` (``P(x)`` for pgd and float; equal to ``P(z)`` for proxquant) into the model."""
        for slot in self.slots:
            slot.param.copy_(slot.qset.project(self._anchor(slot), axis=slot.axis))

    @contextlib.contextmanager
    def quantized(self):
        """Context manager: the model holds ``P(y)`` inside, ``x`` again after (e.g. for evaluation)."""
        with torch.no_grad():
            saved = [s.param.detach().clone() for s in self.slots]
            self.finalize()
        try:
            yield self
        finally:
            with torch.no_grad():
                for s, x in zip(self.slots, saved, strict=True):
                    s.param.copy_(x)

    @torch.no_grad()
    def restore_latent_params(self):
        """Write the latent weights ``y`` into the parameters (as PARQ's method of that name).

        For the methods that keep an anchor (:attr:`brelax.steps.Method.keeps_anchor`);
        pgd and gd have none, and their parameters stay as they are. Use it to read or
        save the float weights; :meth:`restore_x` writes ``x = init(y, mu, P).x`` back
        (bit for bit what was there), after which training continues exactly as without
        it. :meth:`step` refuses to run in between (its gradient would be taken at ``y``).
        """
        if not self._keeps_anchor:
            return
        for slot in self.slots:
            slot.param.copy_(self.state[slot.param]["latent"])
        self._params_hold_latent = True

    @torch.no_grad()
    def restore_x(self):
        """Write ``x = init(y, mu, P).x`` into the parameters again, after :meth:`restore_latent_params`."""
        self._reform_x()

    @torch.no_grad()
    def _reform_x(self):
        """``x = init(y, mu, P).x`` into the parameters, from the latent ``y`` (methods that keep one)."""
        if self._keeps_anchor:
            mu = self.mu
            for slot in self.slots:
                s = self._write_x(slot, self.state[slot.param]["latent"], mu)
                if self.diagnostics:
                    self._remember(slot, s)
        self._params_hold_latent = False

    def _check_float_finite(self):
        """Raise FloatingPointError naming the first float (unquantized) parameter that is NaN or inf.

        One device sync per step: the per-tensor verdicts are reduced on the device first.
        """
        quantized = {id(s.param) for s in self.slots}
        floats = [(g, i, p) for g in self.param_groups for i, p in enumerate(g["params"]) if id(p) not in quantized]
        floats = [(g, i, p) for g, i, p in floats if p.is_floating_point()]
        if not floats:
            return
        ok = torch.stack([torch.isfinite(p).all() for _, _, p in floats])
        if bool(ok.all()):
            return
        g, i, _ = floats[int((~ok).nonzero()[0, 0])]
        names = g.get("param_names")
        name = names[i] if names else f"group{self.param_groups.index(g)}.param{i}"
        raise FloatingPointError(
            f"parameter {name} is not finite after step {self._step + 1} (lr too large or a non-finite gradient)"
        )

    # -------------------------------------------------------------- state dict
    def _plan_record(self) -> list:
        return [{"index": s.index, "name": s.name, "qset": s.qset.name, "axis": s.axis} for s in self.slots]

    def _schedule_record(self) -> dict:
        """Everything that decides mu: the method's schedule, saved whole (``mu_schedule`` by its spec)."""
        return {
            "lam0": self.lam0,
            "rho": self.rho,
            "schedule": self.schedule,
            "phase2_start": self.phase2_start,
            "mu_schedule": schedule_spec(self.mu_schedule),
        }

    def state_dict(self) -> dict:
        """torch's layout, ``{"state", "param_groups"}`` of the base optimizer, plus brelax's ``"quant"``.

        ``quant`` holds the method, the schedule (:meth:`_schedule_record`, ``mu_schedule``
        included), the step and epoch counts, lam, mu and phase, which tensors are quantized
        (``plan``) and the latent weights ``y`` by parameter index. The same record (without
        ``y``) is the first param group's ``"brelax"`` entry and each ``y`` is also its
        parameter's ``state[i]["latent"]`` (one tensor, saved once), so a tool that keeps only
        ``state`` and ``param_groups`` (``torch.distributed.checkpoint``) round-trips the whole
        optimizer. Tensors and primitive containers only (loads with ``torch.load(weights_only=True)``).
        """
        base = self.base.state_dict()
        base["param_groups"] = [
            {k: (v.name if isinstance(v, QuantSet) else v) for k, v in g.items()} for g in base["param_groups"]
        ]
        quant = {
            "method": self.method,
            "step": self._step,
            "epoch": self._epoch,
            **self._schedule_record(),
            "lam": self.lam,
            "mu": self.mu,
            "phase": self.phase,
            "plan": self._plan_record(),
        }
        latent = {s.index: self.state[s.param]["latent"] for s in self.slots if self._keeps_anchor}
        if base["param_groups"]:
            base["param_groups"][0]["brelax"] = dict(quant)
        for i, y in latent.items():
            base["state"][i] = {**base["state"].get(i, {}), "latent": y}
        return {**base, "quant": {**quant, "latent": latent}}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> list:
        """Restore the base optimizer, the step and epoch counts and ``y``; then ``x`` into the parameters.

        Parameters
        ----------
        state_dict : dict
            A :meth:`state_dict` (``{"state", "param_groups", "quant"}``; the older
            ``{"base", "quant"}`` loads too), or a base optimizer's own state dict (no
            ``quant``: only the base state loads; the counts, schedule and ``y`` stay).
        strict : bool
            With True (default) a schedule (lam0, rho, schedule, phase2_start, mu_schedule)
            or a base hyperparameter (momentum, weight decay, betas, ...; not lr) that differs
            from this optimizer's raises. With False the differences are returned and this
            optimizer's own values are kept: what was constructed is what runs.

        Returns
        -------
        list of str
            The differences kept as constructed (empty with ``strict=True``).

        Raises
        ------
        ValueError
            Not a state dict; another method or other quantized tensors (always); with
            ``strict``, a schedule or hyperparameter that differs, each one named.

        Notes
        -----
        After loading, the parameters hold ``x = init(y, mu, P).x`` of the loaded ``y``
        (methods that keep an anchor), bit for bit what the step that saved it wrote; for
        pgd and gd the parameters are the anchor, restored by the model's ``load_state_dict``.
        """
        if not isinstance(state_dict, dict):
            raise ValueError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        if set(state_dict) == {"base", "quant"}:  # the layout of brelax 0.1 checkpoints
            state_dict = {**state_dict["base"], "quant": state_dict["quant"]}
        if not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(
                "state_dict must be an optimizer state dict (keys 'state', 'param_groups' and brelax's 'quant'), "
                f"got keys {sorted(state_dict)}"
            )
        q = state_dict.get("quant")
        groups = state_dict["param_groups"]
        if q is None and groups and isinstance(groups[0].get("brelax"), dict):  # via state and param_groups only
            # Saved ids are indices (torch.save) or parameter names (distributed checkpoint): map them by position.
            order = {pid: i for i, pid in enumerate(pid for g in groups for pid in g["params"])}
            latent = {order[k]: st["latent"] for k, st in state_dict["state"].items() if "latent" in st}
            q = {**groups[0]["brelax"], "latent": latent}
        base = {k: v for k, v in state_dict.items() if k != "quant"}
        if q is None:  # a base optimizer's own state dict
            diffs = self._differences(None, base)
            if diffs and strict:
                raise ValueError(
                    "state_dict was saved with other settings than this optimizer has: " + "; ".join(diffs)
                )
            self._load_base(base)
            return diffs
        if q["method"] == "float":  # checkpoints written before the unquantized method was called gd
            q = {**q, "method": "gd"}
        if q["method"] != self.method:
            raise ValueError(f"state_dict is for method {q['method']!r}, this optimizer runs {self.method!r}")
        if q["plan"] != self._plan_record():
            raise ValueError(
                "state_dict quantizes different tensors (or sets/axes) than this optimizer: "
                f"saved {q['plan']}, here {self._plan_record()}"
            )
        diffs = self._differences(q, base)
        if diffs and strict:
            raise ValueError(
                "state_dict was saved with other settings than this optimizer has: "
                + "; ".join(diffs)
                + " (construct it with the saved values, or load with strict=False to keep these)"
            )
        self._load_base(base)
        self._step, self._epoch = int(q["step"]), int(q["epoch"])
        with torch.no_grad():
            if self._keeps_anchor:
                for s in self.slots:
                    self.state[s.param]["latent"].copy_(q["latent"][s.index])
            self._reform_x()
            if self.diagnostics:
                for s in self.slots:
                    self._remember(s, self._m.init(self._anchor(s).clone(), self.mu, s.proj))
            self._pending = None
        return diffs

    def _differences(self, q: dict | None, base: dict) -> list:
        """The saved schedule and base hyperparameters that differ from this optimizer's, one phrase each."""
        diffs = []
        own = self._schedule_record() if q is not None else {}
        for k, v in own.items():
            saved = q.get(k, v if k == "mu_schedule" else None)  # mu_schedule: not saved before brelax 0.2
            if saved != v:
                diffs.append(f"{k} saved {saved!r}, here {v!r}")
        saved_groups = base["param_groups"]
        if len(saved_groups) == len(self.param_groups):
            for gi, (sg, g) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
                for k in sorted(set(sg) | set(g)):
                    if k in _NOT_HYPER:
                        continue
                    a, b = sg.get(k), g.get(k)
                    if _plain(a) != _plain(b):
                        diffs.append(f"group {gi} {k} saved {_plain(a)!r}, here {_plain(b)!r}")
        return diffs

    def _load_base(self, base: dict):
        """The base optimizer's state; this optimizer's hyperparameters stay (lr is the saved one, as in torch)."""
        keep = [{k: v for k, v in g.items() if k not in _NOT_HYPER} for g in self.param_groups]
        base = {
            **base,
            "state": {k: {n: t for n, t in v.items() if n != "latent"} for k, v in base["state"].items()},
            "param_groups": [{k: v for k, v in g.items() if k != "brelax"} for g in base["param_groups"]],
        }
        self.base.load_state_dict(base)
        self.param_groups = self.base.param_groups  # the base replaced its list
        for g, own in zip(self.param_groups, keep, strict=True):
            g.update(own)

    def __repr__(self) -> str:
        return (
            f"QuantOptimizer({type(self.base).__name__}, method={self.method!r}, qset={self.qset.name!r}, "
            f"axis={self.axis}, lam0={self.lam0}, rho={self.rho}, schedule={self.schedule!r}, "
            f"phase2_start={self.phase2_start}, quantized={len(self.slots)})"
        )


def _check_base(base) -> None:
    """Refuse, at construction, a base optimizer the wrapper cannot drive.

    Raises
    ------
    TypeError
        Not a torch optimizer, a QuantOptimizer already, or one whose ``step`` requires a
        closure (LBFGS): it would evaluate the loss at points the wrapper never formed.
    """
    if not isinstance(base, torch.optim.Optimizer) or isinstance(base, QuantOptimizer):
        raise TypeError(f"base_optimizer must be a torch optimizer, got {type(base).__name__}")
    closure = inspect.signature(base.step).parameters.get("closure")
    if isinstance(base, torch.optim.LBFGS) or (closure is not None and closure.default is inspect.Parameter.empty):
        raise TypeError(
            f"base_optimizer {type(base).__name__} needs a closure in step(): it re-evaluates the loss at its "
            "own points, which the wrapper cannot re-form; use a first-order optimizer (SGD, Adam, AdamW, ...)"
        )


def _plain(v):
    """A hyperparameter as a comparable value (tuples and lists alike; tensors as numbers)."""
    if isinstance(v, torch.Tensor):
        return v.tolist()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v


def _direction(a_prev, a_new, lr):
    """``(a_t - a_{t+1})/lr_t``, or None (unmeasured: NaN) when ``lr_t`` is 0."""
    if isinstance(lr, float):
        return None if lr == 0 else (a_prev - a_new) / lr
    return None if bool((lr == 0).any()) else (a_prev - a_new) / lr
