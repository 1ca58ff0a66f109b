"""Fitting a learner on labeled cells that may all be of one type."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._random import derive_seed


class OneClassLearner:
    """All a learner can know from cells of a single type: that type, with probability 1.

    Stands in for a learner whose labeled cells hold one class (a run started from one
    labeled cell, say): scikit-learn's logistic regression and the baselines refuse such
    data, and the MLP would answer the same.
    """

    def __init__(self, label: str) -> None:
        self.classes_ = np.asarray([label])

    def predict_proba(self, X) -> np.ndarray:
        return np.ones((X.shape[0], 1), dtype=np.float32)

    def predict(self, X) -> np.ndarray:
        return np.repeat(self.classes_, X.shape[0])

    def sample_proba(self, X, n_draws: int = 10, *, rng=None) -> np.ndarray:
        """MC draws, all alike; ``rng`` is drawn from as the MLP does, so the strategy's
        random stream does not depend on whether the learner was fitted."""
        if rng is not None:
            derive_seed(rng)
        return np.ones((n_draws, X.shape[0], 1), dtype=np.float32)

    def get_params(self, deep: bool = True) -> dict:
        return {}


def fit_learner(learner: Any, X, y) -> Any:
    """``learner`` fitted on ``X, y``; a :class:`OneClassLearner` when ``y`` holds one class."""
    classes = np.unique(np.asarray(y))
    if len(classes) == 1:
        return OneClassLearner(classes[0])
    learner.fit(X, y)
    return learner
