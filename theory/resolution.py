r"""The one definition of a *resolved* step, shared by theory/ and figures/.

A ratio such as ``delta_t = <r_t - r_{t+1}, D_t> / ||D_t||^2`` carries a
rounding error of about ``eps_mach ||y_t|| / ||D_t||``: once a run has
converged to machine precision it is noise of order one. A step is
*resolved* when ``||D_t|| >= RESOLUTION * D_ref`` with
``D_ref = max(max_s ||D_s||, max_s ||r_s||)`` over the run (THEORY.md,
section 13). Unresolved steps are left out of every statistic of ``delta_t``
and counted instead.
"""

from __future__ import annotations

import numpy as np

#: The relative threshold: ``||D_t|| < RESOLUTION * D_ref`` is unresolved.
RESOLUTION = 1e-6


def resolved(step_norm2, r_norm=None, resolution: float = RESOLUTION, finite=None) -> np.ndarray:
    """Which steps are resolved.

    Parameters
    ----------
    step_norm2 : array, length T
        ``||D_t||^2``.
    r_norm : array or None
        ``||r_t||`` (length T or T + 1); part of the reference scale.
    resolution : float
        The relative threshold (default :data:`RESOLUTION`).
    finite : array or None
        An extra per-step mask (e.g. ``isfinite(delta_t)``) ANDed in.

    Returns
    -------
    ndarray of bool, length T
        True where ``||D_t|| > 0`` and ``||D_t|| >= resolution * D_ref``.

    Raises
    ------
    ValueError
        ``resolution`` is negative or not finite.
    """
    resolution = float(resolution)
    if not np.isfinite(resolution) or resolution < 0:
        raise ValueError(f"resolution must be a finite number >= 0, got {resolution!r}")
    s = np.asarray(step_norm2, dtype=np.float64)
    D = np.sqrt(np.maximum(np.nan_to_num(s, nan=0.0), 0.0))
    ref = float(D.max()) if D.size else 0.0
    if r_norm is not None:
        r = np.asarray(r_norm, dtype=np.float64)
        r = r[np.isfinite(r)]
        if r.size:
            ref = max(ref, float(r.max()))
    out = np.isfinite(s) & (D > 0) & (resolution * ref <= D)
    if finite is not None:
        out &= np.asarray(finite, dtype=bool)
    return out
