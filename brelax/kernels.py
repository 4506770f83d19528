r"""The one table of projection kernels: which kernel runs for which set, and on which backend.

A free-scale set is one of three **kinds**, read off its non-negative levels
by :func:`set_kind`:

* ``"binary"`` -- one level ``{l_0}``: the closed form ``a = ||y||_1 / (n l_0)``;
* ``"ternary"`` -- ``{0, l_1}``: the histogram-bounded threshold search;
* ``"levels"`` -- anything else: the pruned breakpoint sweep.

:data:`TABLE` maps each kind to its kernels, and every caller picks from it
(:func:`brelax.projections.exact_kernel`, :func:`brelax.fast.fast_kernel`,
:class:`brelax.sets.QuantSet`, :func:`brelax.fast_torch.quantize`):

* ``reference`` -- the array-API kernel of :mod:`brelax.projections`, the
  definition, on any namespace and device;
* ``numpy`` -- the fast exact NumPy kernel ``(xp, a, levels) -> (idx, scale)``
  pinned to the reference (None: the reference is already O(n));
* ``numpy_values`` / ``torch_values`` -- the values straight from the signed
  input, without codes (None: through codes and a table lookup).

**Backends.** The NumPy passes of the ternary kernel have compiled
counterparts (:mod:`brelax.fast_numba`, numba, ``pip install brelax[fast]``)
that give the same numbers bit for bit. :func:`compiled` returns them when
numba is installed and the backend is not forced to ``"numpy"``;
``BRELAX_KERNELS=numpy`` in the environment or :func:`use` forces the pure
path (the tests run both).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from dataclasses import dataclass

#: The backends of the NumPy fast path, in order of preference.
BACKENDS = ("numba", "numpy")
#: The environment variable that forces a backend (``numpy`` or ``numba``).
ENV = "BRELAX_KERNELS"

_forced: str | None = None
_jit = None


_available: tuple[str, ...] | None = None


def available() -> tuple[str, ...]:
    """The backends that can run here: ``("numba", "numpy")`` with numba installed, else ``("numpy",)``."""
    global _available
    if _available is None:  # find_spec costs about 30 us: once per process
        _available = BACKENDS if importlib.util.find_spec("numba") is not None else ("numpy",)
    return _available


def backend() -> str:
    """The active backend: the one forced by :func:`use` or ``BRELAX_KERNELS``, else the first available.

    Raises
    ------
    ValueError
        ``BRELAX_KERNELS`` names an unknown backend, or numba where it is not installed.
    """
    name = _forced or os.environ.get(ENV, "").strip().lower() or available()[0]
    if name not in BACKENDS:
        raise ValueError(f"{ENV}={name!r}: unknown kernel backend; choose from {', '.join(BACKENDS)}")
    if name not in available():
        raise ValueError(f"{ENV}={name!r}: numba is not installed (pip install brelax[fast])")
    return name


@contextlib.contextmanager
def use(name: str):
    """Run the block with the kernel backend ``name`` (``"numpy"`` or ``"numba"``), then restore the previous one.

    Examples
    --------
    >>> import numpy as np, brelax
    >>> with use("numpy"):
    ...     brelax.ternary().project(np.array([3.0, -2.9, 0.1]))
    array([ 2.95, -2.95,  0.  ])
    """
    global _forced
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name not in available():
        raise ValueError(f"backend {name!r} is not available here: numba is not installed (pip install brelax[fast])")
    before, _forced = _forced, name
    try:
        yield
    finally:
        _forced = before


def compiled():
    """The compiled loops (:mod:`brelax.fast_numba`) when the active backend is numba, else None.

    A numba that is installed but fails to import (e.g. built for another NumPy) counts as absent,
    with a warning, unless numba was asked for by name (then the ImportError is raised).
    """
    global _jit, _available
    if backend() != "numba":
        return None
    if _jit is None:
        try:
            _jit = importlib.import_module("brelax.fast_numba")
        except ImportError as err:
            if _forced == "numba" or os.environ.get(ENV, "").strip().lower() == "numba":
                raise
            import warnings

            warnings.warn(f"numba does not import ({err}); the pure NumPy kernels run instead", stacklevel=2)
            _available = ("numpy",)
            return None
    return _jit


def set_kind(levels) -> str:
    """``"binary"``, ``"ternary"`` or ``"levels"`` for these non-negative, increasing levels."""
    if len(levels) == 1:
        return "binary"
    if len(levels) == 2 and levels[0] == 0:
        return "ternary"
    return "levels"


@dataclass(frozen=True)
class Kernels:
    """The kernels of one set kind, as ``"module:function"`` names resolved on use (torch imports lazily)."""

    reference: str
    numpy: str | None
    numpy_values: str | None
    torch_values: str | None

    def get(self, role: str):
        """The function in ``role`` (a field name), or None."""
        name = getattr(self, role)
        if name is None:
            return None
        module, _, fn = name.partition(":")
        return getattr(importlib.import_module(module), fn)


#: Set kind -> its kernels. The only place a kernel is chosen by kind.
TABLE = {
    "binary": Kernels(
        "brelax.projections:single_level", None, "brelax.fast:binary_values", "brelax.fast_torch:binary_rows"
    ),
    "ternary": Kernels(
        "brelax.projections:ternary_sort",
        "brelax.fast:ternary_hist",
        "brelax.fast:ternary_values",
        "brelax.fast_torch:ternary_rows",
    ),
    "levels": Kernels("brelax.projections:level_sweep_bounded", "brelax.fast_levels:level_kernel", None, None),
}


def kernel(levels, role: str):
    """The kernel in ``role`` (``reference``, ``numpy``, ``numpy_values``, ``torch_values``) for these levels."""
    return TABLE[set_kind(levels)].get(role)
