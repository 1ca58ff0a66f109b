"""Selectors: turn scores or an embedding into a batch of cell positions."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

#: Above this many candidates, k-means runs in mini-batches (same k-means++ seeding).
MINIBATCH_ABOVE = 20_000


def top_k(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the ``k`` highest scores; ties are broken at random (by ``rng``)."""
    scores = np.asarray(scores, dtype=np.float64)
    if k >= len(scores):
        return rng.permutation(len(scores))[:k]
    jitter = rng.random(len(scores))
    order = np.lexsort((jitter, -scores))
    return order[:k]


def kmeans_one_per_cluster(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means (k-means++ seeding) into ``k`` clusters, then one random point from each.

    Returns ``k`` distinct positions into ``points`` (fewer only if there are fewer points).
    """
    n = len(points)
    if k >= n:
        return rng.permutation(n)[:k]
    seed = int(rng.integers(2**31 - 1))
    if n > MINIBATCH_ABOVE:
        model = MiniBatchKMeans(
            n_clusters=k, init="k-means++", n_init=1, random_state=seed, batch_size=4096
        )
    else:
        model = KMeans(n_clusters=k, init="k-means++", n_init=1, random_state=seed)
    labels = model.fit_predict(np.asarray(points, dtype=np.float64))
    picks = [rng.choice(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    if len(picks) < k:  # an empty cluster: fill from the rest, spread at random
        rest = np.setdiff1d(np.arange(n), picks)
        picks.extend(rng.choice(rest, k - len(picks), replace=False))
    return np.asarray(picks, dtype=np.int64)
