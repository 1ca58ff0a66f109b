"""Seeds derived from a seed or generator, so no step reads global random state."""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(rng: np.random.Generator | int | None) -> int:
    """A seed in ``[0, 2**31 - 1)`` drawn from ``rng`` (for torch, k-means, scikit-learn)."""
    return int(np.random.default_rng(rng).integers(2**31 - 1))


def name_seed(*parts: str | int) -> list[int]:
    """A seed sequence from names and numbers: the same parts always give the same seed, so
    a run's result does not depend on which other runs exist or the order they run in."""
    return [p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
