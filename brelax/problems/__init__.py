"""Problems: least squares (planted and real), logistic regression, a small MLP, minibatch sampling."""

from .base import Block, Problem, Projector, layer_slices, make_layout
from .datasets import diabetes_least_squares, digits, digits_logistic, digits_mlp, stratified_split
from .least_squares import LeastSquares, least_squares
from .logistic import Logistic
from .mlp import MLP
from .sampler import MinibatchSampler

__all__ = [
    "Block", "Problem", "Projector", "make_layout", "layer_slices",
    "LeastSquares", "least_squares", "Logistic", "MLP", "MinibatchSampler",
    "digits", "digits_logistic", "digits_mlp", "diabetes_least_squares", "stratified_split",
]
