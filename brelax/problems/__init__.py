"""Problems: least squares (planted and real), logistic regression, a small MLP, minibatch sampling."""

from .base import Block, Problem, Projector, layer_slices, make_layout
from .datasets import diabetes_least_squares, digits, digits_logistic, digits_mlp, stratified_split
from .least_squares import LeastSquares, least_squares
from .logistic import Logistic
from .mlp import MLP
from .sampler import MinibatchSampler

__all__ = [
    "MLP",
    "Block",
    "LeastSquares",
    "Logistic",
    "MinibatchSampler",
    "Problem",
    "Projector",
    "diabetes_least_squares",
    "digits",
    "digits_logistic",
    "digits_mlp",
    "layer_slices",
    "least_squares",
    "make_layout",
    "stratified_split",
]
