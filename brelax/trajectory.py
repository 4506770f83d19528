"""The record of a run: per-step diagnostics, the final point, metadata; saved as .npz + JSON."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ._atomic import atomic_write
from .diagnostics import POINT_OUT, STEP_OUT

#: Arrays indexed by t = 0..steps.
POINT_FIELDS = ("f", "f_quant", "mu", "lr", "dist_x", "dist_y", "r_norm", "scale_min", "scale_max", "grad_norm2")
#: Arrays indexed by the step t = 0..steps-1 (from x_t to x_{t+1}).
STEP_FIELDS = (
    "step_norm2",
    "aoc",
    "inner",
    "cross",
    "flips",
    "L_local",
    "descent",
    "sgrad_norm2",
    "noise_norm2",
    "g_dot_D",
    "sg_dot_D",
    "sg_dot_r",
    "f_stable",
    "stable_g_dot_D",
    "stable_norm2",
    "pattern_gap",
    "stable_dot_r",
    "gap_g_dot",
    "stable_dot_gap",
    "curv_stable_gap",
    "curv_gap",
    "gap_gs_dot",
    "curv_gap_seg",
    "curv_step",
    "gap_sg_dot",
    "batch_f",
    "batch_f_next",
    "batch_L_local",
)
#: Per-layer arrays: point fields (length steps + 1) and step fields (length steps), as the diagnostics make them.
LAYER_POINT_FIELDS = POINT_OUT
LAYER_STEP_FIELDS = STEP_OUT
LAYER_FIELDS = LAYER_POINT_FIELDS + LAYER_STEP_FIELDS


class Trajectory:
    """Diagnostics of one run of :func:`brelax.optimize` (or of a torch run, :func:`brelax.torch.steplog.load_run`).

    All arrays are float64 (``flips`` int64), NaN where a quantity is not defined or not known.
    With ``g_t`` the gradient the step used, ``G_t = grad f(x_t)``, ``r_t = y_t - P(y_t)``,
    ``D_t = x_{t+1} - x_t`` (see :mod:`brelax.diagnostics` for the exact definitions):

    Point arrays (length ``steps + 1``, index t): ``f`` = f(x_t), ``f_quant`` =
    f(P(y_t)), ``mu``, ``lr``, ``dist_x`` = d_Q(x_t), ``dist_y`` = d_Q(y_t),
    ``r_norm`` = ||r_t||, ``scale_min`` / ``scale_max`` = the smallest / largest scale
    of P(y_t) over all scale rows, ``grad_norm2`` = ||G_t||^2.

    Step arrays (length ``steps``, index t for the step x_t -> x_{t+1}):
    ``step_norm2`` = ||D_t||^2, ``aoc`` = delta_t = <r_t - r_{t+1}, D_t> / ||D_t||^2
    (NaN where D_t = 0), ``inner`` = <r_t - r_{t+1}, D_t>, ``cross`` = <r_t, D_t>,
    ``flips`` (entries whose code changed), ``L_local`` = ||G_{t+1} - G_t|| / ||D_t||,
    ``descent`` = f(x_t) - f(x_{t+1}), ``sgrad_norm2`` = ||g_t||^2, ``noise_norm2`` =
    ||g_t - G_t||^2, ``g_dot_D`` = <G_t, D_t>, ``sg_dot_D`` = <g_t, D_t>, ``sg_dot_r`` =
    <g_t, r_t>; for the lazy methods the pattern-stable comparison ``f_stable`` =
    f(x^s_{t+1}), ``stable_g_dot_D`` = <G_t, D^s_t>, ``stable_norm2`` = ||D^s_t||^2,
    ``pattern_gap`` = ||e_t|| with ``e_t = P(y_{t+1}) - P^s_{t+1}`` (the recorded flip),
    ``stable_dot_r`` = <D^s_t, r_t>, ``gap_g_dot`` = <G_t, e_t>, ``stable_dot_gap`` = <D^s_t, e_t>, and
    where the problem has a quadratic majorant ``H`` (``problem.curvature``) ``curv_stable_gap`` =
    <D^s_t, H e_t>, ``curv_gap`` = <e_t, H e_t> and ``curv_step`` = <D_t, H D_t> (every method);
    ``gap_sg_dot`` = <g_t, e_t>. Same-batch records (minibatch runs; a torch run every ``--check-every``
    steps): ``batch_f`` = f_B(x_t), ``batch_f_next`` = f_B(x_{t+1}) on the same batch B, ``batch_L_local`` =
    ||grad f_B(x_{t+1}) - grad f_B(x_t)|| / ||D_t||; ``gap_gs_dot`` = <grad f(x^s_{t+1}), e_t> (NaN for the other
    methods); ``curv_gap_seg`` = the problem's segment bound on ``2 (f(x_{t+1}) - f(x^s_{t+1}) - mu' <grad
    f(x^s_{t+1}), e_t>)`` along ``x_{t+1} - x^s_{t+1} = mu' e_t`` (``problem.segment_curvature(x^s_{t+1}, mu'
    e_t)``, THEORY.md Lemma II.3(f); 0 without a flip; NaN for the other methods and where the problem has none).

    ``layers`` maps a quantized block name to its own :data:`LAYER_FIELDS`
    (multi-tensor problems only). ``x`` is the final point (in Q), ``y`` the final
    anchor, ``meta`` a JSON-serialisable dict (method, qset, schedule, ``row_min``,
    ``levels``, ``n_quantized``, ``stochastic``, ...).

    Files written before a field existed load with that field all NaN.
    """

    def __init__(self, arrays: dict, x, y, meta: dict, layers: dict | None = None):
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.x = np.asarray(x)
        self.y = np.asarray(y)
        self.meta = dict(meta)
        self.layers = {n: {k: np.asarray(v) for k, v in d.items()} for n, d in (layers or {}).items()}
        self.iterates: dict = {}  # filled by optimize(record_every=...): t, x, y, p

    def __getattr__(self, name):
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(f"Trajectory has no field {name!r}; fields: {', '.join(arrays)}")

    @property
    def steps(self) -> int:
        """Number of completed steps."""
        return len(self.arrays["step_norm2"])

    @property
    def method(self) -> str:
        return self.meta.get("method", "")

    def truncated(self, steps: int) -> Trajectory:
        """The first ``steps`` steps (used when a run stops early)."""
        arrays = {k: v[: steps + 1] if k in POINT_FIELDS else v[:steps] for k, v in self.arrays.items()}
        layers = {
            n: {k: (v[: steps + 1] if k in LAYER_POINT_FIELDS else v[:steps]) for k, v in d.items()}
            for n, d in self.layers.items()
        }
        return Trajectory(arrays, self.x, self.y, self.meta, layers)

    def save(self, path) -> None:
        """Write an .npz (arrays) with the metadata as JSON inside; atomic (temp file, then rename)."""
        payload: dict[str, Any] = {f"a__{k}": v for k, v in self.arrays.items()}
        for n, d in self.layers.items():
            for k, v in d.items():
                payload[f"l__{n}__{k}"] = v
        payload["x"] = self.x
        payload["y"] = self.y
        payload["meta"] = np.asarray(json.dumps(self.meta, default=_json_default))
        atomic_write(path, lambda fh: np.savez(fh, **payload))

    @classmethod
    def load(cls, path) -> Trajectory:
        """Read a file written by :meth:`save` (no pickle: ``allow_pickle=False``)."""
        with np.load(os.fspath(path), allow_pickle=False) as z:
            arrays: dict = {}
            layers: dict = {}
            for k in z.files:
                if k.startswith("a__"):
                    arrays[k[3:]] = z[k]
                elif k.startswith("l__"):
                    _, n, f = k.split("__", 2)
                    layers.setdefault(n, {})[f] = z[k]
            meta = json.loads(str(z["meta"]))
            x, y = z["x"], z["y"]
        fill_missing(arrays, layers)
        return cls(arrays, x, y, meta, layers)

    def summary(self) -> dict:
        """A few headline numbers (JSON friendly)."""
        aoc = self.arrays["aoc"]
        flips = self.arrays["flips"]
        finite = aoc[np.isfinite(aoc)]
        return {
            "method": self.method,
            "steps": self.steps,
            "f_final": float(self.arrays["f"][-1]),
            "f_quant_final": float(self.arrays["f_quant"][-1]),
            "recovered": self.meta.get("recovered"),
            "flips_total": int(flips.sum()),
            "aoc_max": float(finite.max()) if finite.size else float("nan"),
            "aoc_positive_steps": int((finite > 0).sum()),
            "stopped": self.meta.get("stopped"),
        }


def fill_missing(arrays: dict, layers: dict) -> None:
    """Add every field of the current format missing from ``arrays`` / ``layers`` as NaN (in place).

    The number of steps is read from ``step_norm2`` (or any step field present).
    """
    steps = next((len(arrays[k]) for k in STEP_FIELDS if k in arrays), None)
    if steps is None:
        steps = max(len(arrays.get("f", [0])) - 1, 0)
    for k in POINT_FIELDS + STEP_FIELDS:
        if k not in arrays:
            arrays[k] = np.full(steps + (k in POINT_FIELDS), np.nan)
    for d in layers.values():
        for k in LAYER_FIELDS:
            if k not in d:
                d[k] = np.full(steps + (k in LAYER_POINT_FIELDS), np.nan)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
