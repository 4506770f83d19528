"""brelax on torch: CIFAR models and data, the quantizing optimizer, training and export.

Importing this package imports torch (and nothing heavier): models and data
here, the optimizer below. ``brelax.torch.train`` and ``brelax.torch.export``
are the CLI modules and are imported only when their command runs.
"""

try:
    import torch as _torch
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("brelax.torch needs PyTorch: pip install 'brelax[torch]'") from e

from .data import (
    CIFAR_MEAN,
    CIFAR_STD,
    CifarLoader,
    RestrictedUnpickler,
    augment,
    load_cifar,
    normalize,
    synthetic_cifar,
    write_tiny_cifar,
)
from .models import (
    MODEL_NAMES,
    build_model,
    default_quantized_names,
    default_quantized_params,
    param_groups,
    resnet20,
    resnet32,
    resnet56,
    vgg11,
)

# --- optimizer (owned by the optimizer/CLI engineer; keep this block) -------
from .optimizer import QuantOptimizer
# ----------------------------------------------------------------------------
