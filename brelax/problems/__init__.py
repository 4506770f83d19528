"""Problems: least squares (planted and real), logistic regression, a small MLP."""

from .base import Block, Problem, Projector, make_layout
from .least_squares import LeastSquares, least_squares

__all__ = ["Block", "Problem", "Projector", "make_layout", "LeastSquares", "least_squares"]
