"""brelax: exact quantization projections, BinaryRelax, and its convergence theory as checks.

The theory in ``theory/`` is this project's reconstruction of the results of
Yin, Zhang, Lyu, Osher, Qi and Xin (2018), made without the paper's full text;
no constant in it is quoted from the paper.
"""

from . import heuristics, problems, schedules, steps
from .optimize import NonFiniteError, optimize
from .prox import moreau_envelope, prox, relax
from .sets import QuantizedTensor, QuantSet, binary, get_set, levels, ternary, uniform
from .trajectory import Trajectory

try:  # pyproject.toml is the one place the version is written
    from importlib.metadata import PackageNotFoundError as _NotInstalled
    from importlib.metadata import version as _version

    __version__ = _version("brelax")
except _NotInstalled:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "NonFiniteError",
    "QuantSet",
    "QuantizedTensor",
    "Trajectory",
    "binary",
    "get_set",
    "heuristics",
    "levels",
    "moreau_envelope",
    "optimize",
    "problems",
    "prox",
    "relax",
    "schedules",
    "steps",
    "ternary",
    "uniform",
]
