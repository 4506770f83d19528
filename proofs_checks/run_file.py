"""``brelax verify PATH``: every trajectory result of ``theory/`` on a run someone saved.

A PATH is a NumPy trajectory (``brelax run ... --out R.npz``,
:meth:`brelax.Trajectory.save`) or a ``brelax train`` run directory (read by
``brelax.torch.steplog.load_run``, imported only for directories). Every
trajectory result runs; what a result needs and the run lacks (a field, the
problem, the smoothness constant) makes that result ``"assumption-not-met"``
with the missing thing named -- never an exception.

Falsifiability on one run: the first :data:`BURN_IN` of the steps (a fraction
fixed in advance) is the *burn-in window*. Constants that a bound needs and the
run does not record -- the AOC constant d, kappa, R, and L when the problem's L
is unknown (networks) -- are estimated there and checked on the disjoint
window after it. Results whose every constant is known (the problem's L saved in
the trajectory's metadata) run on the whole run. Each row's ``details`` carry
``calibration`` (source and values) and ``window``; a local estimate of L is
labelled ``"estimate"`` in ``details["L_source"]`` and in the method column, and
where a check built on it fails, the estimate is the assumption reported as not
met (:func:`proofs_checks.common.as_estimate`), not a theorem violated.
"""

from __future__ import annotations

import math
import os

import numpy as np

from theory import RESULTS, TRAJECTORY_RESULTS, Result

from .common import BURN_IN, Window, as_estimate, estimate, estimate_L, shift

#: Constants a result needs that a run does not record, measured on the burn-in window by
#: :func:`theory.estimate_constants` (see :func:`proofs_checks.common.estimate`).
CALIBRATED = {
    "theorem1": ("d",),
    "theorem2": ("kappa", "R"),
    "corollary3": ("d", "kappa", "R"),
    "sgd_high_probability": ("Xi", "Gamma"),
}


def load(path):
    """A trajectory-like object from a saved NumPy trajectory (file) or a training run (directory).

    Every file is checked before it is used: a truncated or damaged archive, a plain ``.npy``
    array, an archive holding Python objects, a trajectory without its metadata, arrays of
    lengths that do not fit one run, a run folder whose ``steps/meta.json`` is not a JSON
    object or whose epoch file lacks its ``step`` column or has columns of unequal length
    are each refused with one line naming the file and what is wrong.

    Raises
    ------
    InputError (a ValueError)
        ``path`` does not exist, or is not a readable trajectory / run directory (the message names it).
    """
    from brelax.errors import InputError

    p = os.fspath(path)
    if os.path.isdir(p):
        try:
            from brelax.torch.steplog import load_run
        except ImportError as e:
            raise InputError(f"{p} is a directory, and reading a training run needs brelax.torch ({e})") from None
        _check_run_folder(p)
        try:
            traj = load_run(p)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError(f"{p}: not a readable brelax train run: {_one_line(e)}") from None
        return _mask_override_steps(traj)
    if not os.path.exists(p):
        raise InputError(f"no such file or directory: {p!r}")
    from brelax import Trajectory

    arrays = _read_npz(p)
    _check_trajectory(p, arrays)
    try:
        return Trajectory.load(p)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(
            f"{p} is not a saved trajectory (Trajectory.save / brelax run --out): {_one_line(e)}"
        ) from None


def _mask_override_steps(traj):
    """Drop (NaN) the step that crosses each ``--resume --override`` of a train run, and say so in ``meta``.

    An override can change the schedule, so the point the resumed run starts from is ``x``
    re-formed with the new ``mu``, not the ``x_t`` the step log recorded last: the step from
    one to the other belongs to no single step rule, and a check of it would test a falsehood.
    Every other step keeps its record. ``meta["masked_steps"]`` lists the step indices dropped.
    """
    from brelax.trajectory import LAYER_STEP_FIELDS, STEP_FIELDS

    meta = traj.meta
    first, T = int(meta.get("first_step", 0)), len(traj.arrays["step_norm2"])
    masked = sorted({int(o["step"]) - first for o in meta.get("overrides", ()) if 0 <= int(o["step"]) - first < T})
    for i in masked:
        for fields, arrays in [(STEP_FIELDS, traj.arrays)] + [(LAYER_STEP_FIELDS, d) for d in traj.layers.values()]:
            for k in fields:
                v = arrays.get(k)
                if v is not None and np.issubdtype(np.asarray(v).dtype, np.floating):
                    v[i] = np.nan
    if masked:
        meta["masked_steps"] = masked
    return traj


def _one_line(e) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _read_npz(p: str) -> dict:
    """Every array of the .npz archive ``p`` (reading each member checks its CRC), without pickle.

    Raises
    ------
    InputError
        Not an .npz archive (a plain .npy array, another file), truncated or damaged, or holding
        Python objects (refused: nothing is unpickled, and numpy's advice to allow it is not passed on).
    """
    from brelax.errors import InputError

    try:
        z = np.load(p, allow_pickle=False)
    except ValueError as e:  # numpy takes any other file for a pickle, and would advise loading it unsafely
        why = "neither .npz nor .npy, or pickled Python objects (never loaded)" if "pickle" in str(e) else _one_line(e)
        raise InputError(f"{p}: not a saved trajectory (.npz of brelax run --out / Trajectory.save): {why}") from None
    except Exception as e:  # a torn zip: BadZipFile, EOFError, OSError, zlib.error
        raise InputError(f"{p}: truncated or damaged archive ({type(e).__name__}: {_one_line(e)})") from None
    if isinstance(z, np.ndarray):
        raise InputError(
            f"{p}: a plain .npy array, not a trajectory (.npz written by brelax run --out or Trajectory.save)"
        )
    try:
        with z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise InputError(f"{p}: holds Python objects, which are never loaded; not a brelax trajectory") from None
        raise InputError(f"{p}: damaged archive ({_one_line(e)})") from None
    except Exception as e:  # a bit flip in a member: BadZipFile (CRC), zlib.error, EOFError
        raise InputError(f"{p}: truncated or damaged archive ({type(e).__name__}: {_one_line(e)})") from None


def _check_trajectory(p: str, arrays: dict) -> None:
    """The entries of a :meth:`brelax.Trajectory.save` archive: JSON metadata, and lengths of one run.

    Point fields have ``steps + 1`` entries and step fields ``steps`` (per layer too); a
    column of another length would put its rows out of line with the others.
    """
    import json

    from brelax.errors import InputError
    from brelax.trajectory import LAYER_POINT_FIELDS, LAYER_STEP_FIELDS, POINT_FIELDS, STEP_FIELDS

    if "meta" not in arrays:
        raise InputError(f"{p}: not a brelax trajectory (no 'meta' entry; write it with brelax run --out)")
    try:
        meta = json.loads(str(arrays["meta"]))
    except ValueError:
        raise InputError(f"{p}: its 'meta' entry is not JSON") from None
    if not isinstance(meta, dict):
        raise InputError(f"{p}: its 'meta' entry is a JSON {type(meta).__name__}, not an object")
    steps = next((len(np.atleast_1d(arrays[f"a__{k}"])) for k in STEP_FIELDS if f"a__{k}" in arrays), None)
    if steps is None:
        return  # no step recorded: verify_run reports every result as assumption-not-met, naming the field
    for key, v in arrays.items():
        if key.startswith("a__"):
            name, point, step = key[3:], POINT_FIELDS, STEP_FIELDS
        elif key.startswith("l__") and key.count("__") >= 2:
            name, point, step = key.split("__", 2)[2], LAYER_POINT_FIELDS, LAYER_STEP_FIELDS
        else:
            continue
        want = steps + 1 if name in point else steps if name in step else None
        if want is not None and (np.ndim(v) != 1 or len(v) != want):
            raise InputError(
                f"{p}: field {key} has shape {np.shape(v)}, expected ({want},) for a run of {steps} steps "
                "(columns of unequal length)"
            )


def _check_run_folder(p: str) -> None:
    """``RUN/steps`` of a ``brelax train`` run: ``meta.json`` an object, every epoch file whole and rectangular.

    Raises
    ------
    InputError
        ``meta.json`` unreadable or not a JSON object; an epoch file (or ``start.npz``) truncated,
        damaged, without its ``step`` column, or with columns of unequal length.
    """
    import glob
    import json

    from brelax.errors import InputError

    folder = p if os.path.basename(os.path.normpath(p)) == "steps" else os.path.join(p, "steps")
    meta_path = os.path.join(folder, "meta.json")
    if not os.path.isfile(meta_path):
        raise InputError(f"{p} has no steps/meta.json: not a brelax train run with diagnostics on")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"{meta_path}: not readable JSON ({_one_line(e)})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{meta_path}: a JSON {type(meta).__name__}, expected an object")
    for f in sorted(glob.glob(os.path.join(glob.escape(folder), "*.npz"))):
        cols = _read_npz(f)
        if os.path.basename(f).startswith("epoch_") and "step" not in cols:
            raise InputError(f"{f}: no 'step' column; not an epoch file of a brelax train step log")
        lengths = {k: (len(v) if np.ndim(v) == 1 else None) for k, v in cols.items()}
        if len(set(lengths.values())) > 1 or None in lengths.values():
            ref = lengths.get("step", next(iter(lengths.values())))
            bad = next(k for k, n in lengths.items() if n != ref)
            raise InputError(
                f"{f}: column {bad!r} has {lengths[bad]} rows, 'step' has {ref} (columns of unequal length)"
            )


def not_met(name, what, problem="", method="", run=""):
    """The Result of a check whose input the run lacks: ``"assumption-not-met"`` naming what is missing."""
    cls = RESULTS.get(name)
    return Result(
        name=name,
        statement=getattr(cls, "statement", name),
        problem=problem,
        method=method,
        status="assumption-not-met",
        assumptions={"run provides the inputs": {"ok": False, "detail": what}},
        details={"run": run, "missing": what},
    )


def _names(traj):
    meta = dict(getattr(traj, "meta", {}) or {})
    prob = meta.get("problem", "")
    prob = prob.get("name", "") if isinstance(prob, dict) else str(prob)
    return prob, str(meta.get("method", ""))


def verify_run(traj_or_path, seed: int = 0, key=None, burn_in: float = BURN_IN) -> list:
    """Every trajectory result of ``theory/`` on one saved run.

    Parameters
    ----------
    traj_or_path : a :class:`brelax.Trajectory` (or any object with its fields), or a path (see :func:`load`)
    seed : int
        Unused by the checks themselves (kept for a uniform interface with the embedded suite).
    key : str or None
        Name of the trajectory in the coverage list (default: the path, or ``"trajectory"``).
    burn_in : float in (0, 1)
        Fraction of the steps used only to estimate constants (:data:`BURN_IN`).

    Returns
    -------
    list of theory.Result
        One per trajectory result, each with ``details["run"] = key``.

    Raises
    ------
    ValueError
        The path cannot be read (:func:`load`), or ``burn_in`` is not in (0, 1).
    """
    if not 0.0 < float(burn_in) < 1.0:
        raise ValueError(f"burn_in must lie in (0, 1), got {burn_in!r}")
    if isinstance(traj_or_path, (str, os.PathLike)):
        key = os.fspath(traj_or_path) if key is None else key
        traj = load(traj_or_path)
    else:
        traj, key = traj_or_path, ("trajectory" if key is None else key)
    problem, method = _names(traj)
    try:
        T = len(np.asarray(traj.step_norm2))
    except AttributeError:
        return [
            not_met(n, "the field 'step_norm2' (no steps recorded)", problem, method, key) for n in TRAJECTORY_RESULTS
        ]
    B = max(1, math.ceil(burn_in * T)) if T >= 2 else 0
    meta = dict(getattr(traj, "meta", {}) or {})
    L_known = meta.get("L") is not None
    burn = Window(traj, 0, B) if B else None
    L_est = None if L_known or burn is None else estimate_L(burn)[0]
    out = []
    for name in TRAJECTORY_RESULTS:
        res = RESULTS[name]()
        keys = CALIBRATED.get(name, ())
        wants_L = _uses_L(res)
        needs_window = bool(keys) or (wants_L and not L_known and L_est is not None)
        kw = {"L": L_est} if wants_L and not L_known and L_est is not None else {}
        try:
            if needs_window and B:
                consts = estimate(burn, keys) if keys else {}
                r = res.check(Window(traj, B), **kw, **consts)
                shift(r, B)
                r.details["calibration"] = {
                    "source": f"burn-in window: steps 0..{B - 1} of this run",
                    "constants": {**consts, **kw},
                }
                r.details["window"] = f"steps {B}..{T} (after the burn-in)"
            else:
                r = res.check(traj, **kw)
                r.details["window"] = "whole run"
        except (ValueError, KeyError, AttributeError, TypeError, IndexError) as e:
            r = not_met(name, _missing(e), problem, method, key)
        r.method = r.method or method
        if kw:
            as_estimate(r, L_est, f"the burn-in steps 0..{B - 1} (max local L)")
        r.problem = r.problem or problem or key
        r.method = r.method or method
        r.details["run"] = key
        out.append(r)
    return out


def _uses_L(result) -> bool:
    """Whether ``result`` needs a smoothness constant (it takes ``L`` or assumes L known)."""
    import inspect

    from theory import assumptions as A

    if getattr(result, "own_L_estimate", False):  # estimates L_B itself, step by step, from earlier secants only
        return False
    return "L" in inspect.signature(result.check).parameters or A.L_KNOWN in list(result.assumptions)


def _missing(e) -> str:
    msg = str(e).strip() or type(e).__name__
    if isinstance(e, AttributeError) and "has no field" not in msg:
        msg = f"a field the check reads: {msg}"
    return msg


def checked_mask(traj, steps: int) -> np.ndarray:
    """Which steps :func:`checked` counts (every step of a NumPy run, the same-batch records of a torch run)."""
    meta = getattr(traj, "meta", {}) or {}
    if meta.get("source") != "brelax train":
        return np.ones(int(steps), dtype=bool)
    nxt = getattr(traj, "batch_f_next", None)
    if nxt is None:
        return np.zeros(int(steps), dtype=bool)
    return np.isfinite(np.asarray(nxt, dtype=np.float64))[: int(steps)]


def checked(traj, steps: int) -> int:
    """The steps whose record holds what the descent checks need.

    A NumPy run records ``f(x_{t+1})`` and the full gradient on every step: all of them. A ``brelax train``
    run logs the minibatch loss at ``x_t``; only the steps with a same-batch record (``--check-every K``:
    ``f_B(x_{t+1})`` on the step's own batch) can carry a descent guarantee.
    """
    return int(checked_mask(traj, steps).sum())


def verify_paths(paths, seed: int = 0) -> tuple:
    """:func:`verify_run` on every path; ``(results, runs)`` with ``runs`` in the form coverage wants.

    Raises
    ------
    InputError (a ValueError)
        A path cannot be read (:func:`load`).
    """
    results, runs = [], []
    for p in paths:
        key = os.fspath(p)
        traj = load(p)
        rs = verify_run(traj, seed=seed, key=key)
        problem, method = _names(traj)
        steps = getattr(traj, "step_norm2", None)
        n = 0 if steps is None else len(np.asarray(steps))
        runs.append(
            {
                "key": key,
                "problem": problem or key,
                "method": method,
                "steps": n,
                "checked_steps": checked(traj, n),
                "checked_mask": checked_mask(traj, n),
            }
        )
        results += rs
    return results, runs
