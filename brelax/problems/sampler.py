"""Seeded minibatch sampler: a fresh permutation per epoch cut into batches, or i.i.d. draws with replacement."""

from __future__ import annotations

import numbers

import numpy as np


class MinibatchSampler:
    """Epoch-wise shuffling: each epoch is ``rng.permutation(n_samples)`` cut into batches.

    Every sample appears exactly once per epoch. When ``batch_size`` does not
    divide ``n_samples`` the last batch of an epoch is smaller (or, with
    ``drop_last=True``, dropped, so every batch has ``batch_size`` entries
    and the leftover samples of that epoch are skipped). Batches never
    straddle two epochs. The generator is ``np.random.default_rng(seed)``, and
    it is used only for the permutations, so a seed fixes the whole sequence.

    With ``replacement=True`` every batch is instead ``batch_size`` indices drawn
    independently and uniformly from ``range(n_samples)``. Then, whatever happened
    before, the batch gradient is an unbiased estimate of the full gradient,
    ``E[g_B | past] = grad f``, which is what an expected-descent or martingale argument
    needs (THEORY.md, Theorems II.10-II.11); per-epoch shuffling makes the batches of an
    epoch dependent, and that conditional unbiasedness fails. ``epoch`` then counts
    blocks of ``batches_per_epoch`` batches.

    Parameters
    ----------
    n_samples : int >= 1
    batch_size : int in ``1..n_samples``
    seed : int >= 0
    drop_last : bool, default False
    replacement : bool, default False

    Attributes
    ----------
    epoch : int
        The epoch of the batch last returned (0-based; -1 before the first).
    batch_in_epoch : int
        Its position within that epoch (0 for the first batch of an epoch).
    batches_per_epoch : int

    Raises
    ------
    ValueError
        If ``batch_size`` is not in ``1..n_samples``, ``n_samples < 1`` or ``seed < 0``.
    TypeError
        If one of them is not an int.
    """

    def __init__(
        self, n_samples: int, batch_size: int, seed: int = 0, drop_last: bool = False, replacement: bool = False
    ):
        self.n_samples = _int(n_samples, "n_samples")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        self.batch_size = _int(batch_size, "batch_size")
        if not 1 <= self.batch_size <= self.n_samples:
            raise ValueError(f"batch_size must be in 1..{self.n_samples} (n_samples), got {batch_size}")
        self.seed = _int(seed, "seed")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.drop_last = bool(drop_last)
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement must be a bool, got {replacement!r}")
        self.replacement = replacement
        full, rest = divmod(self.n_samples, self.batch_size)
        self.batches_per_epoch = full + (1 if rest and not self.drop_last else 0)
        self._rng = np.random.default_rng(self.seed)
        self._perm = None
        self.epoch = -1
        self.batch_in_epoch = self.batches_per_epoch - 1

    def next(self) -> np.ndarray:
        """The next batch: an int64 index array into ``range(n_samples)``."""
        self.batch_in_epoch += 1
        if self.replacement:
            if self.batch_in_epoch == self.batches_per_epoch:
                self.epoch += 1
                self.batch_in_epoch = 0
            return self._rng.integers(0, self.n_samples, self.batch_size, dtype=np.int64)
        if self.batch_in_epoch == self.batches_per_epoch:
            self._perm = self._rng.permutation(self.n_samples)
            self.epoch += 1
            self.batch_in_epoch = 0
        lo = self.batch_in_epoch * self.batch_size
        return self._perm[lo : lo + self.batch_size].astype(np.int64)

    __next__ = next

    def __iter__(self):
        return self


def _int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {v!r}")
    return int(v)
