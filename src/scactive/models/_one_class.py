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


def _final(learner: Any) -> Any:
    return learner.steps[-1][1] if hasattr(learner, "steps") else learner


def uses_unlabeled(learner: Any) -> bool:
    """Whether ``learner`` (or a pipeline's last step) declares ``uses_unlabeled``."""
    return bool(getattr(_final(learner), "uses_unlabeled", False))


def unlabeled_limit(learner: Any) -> int | None:
    """How many unlabeled cells a learner that uses them takes at most (None: all)."""
    return getattr(_final(learner), "max_unlabeled", None)


def fit_learner(learner: Any, X, y, *, unlabeled=None, sample_weight=None) -> Any:
    """``learner`` fitted on ``X, y``; a :class:`OneClassLearner` when ``y`` holds one class.

    ``unlabeled`` (cells x features, as ``X``) reaches a learner that declares
    ``uses_unlabeled`` as ``fit(..., X_unlabeled=...)``, through a pipeline's steps too.
    ``sample_weight`` reaches a learner whose ``fit`` (a pipeline's last step's) takes it;
    the others train on every label alike.
    """
    from sklearn.utils.validation import has_fit_parameter

    classes = np.unique(np.asarray(y))
    if len(classes) == 1:
        return OneClassLearner(classes[0])
    pipeline = hasattr(learner, "steps")
    final = _final(learner)
    prefix = f"{learner.steps[-1][0]}__" if pipeline else ""
    keywords = {}
    if unlabeled is not None and uses_unlabeled(learner):
        # the steps before the learner are stateless transforms
        keywords["X_unlabeled"] = (
            learner[:-1].fit(X).transform(unlabeled) if pipeline else unlabeled
        )
    if sample_weight is not None and has_fit_parameter(final, "sample_weight"):
        keywords["sample_weight"] = sample_weight
    learner.fit(X, y, **{prefix + k: v for k, v in keywords.items()})
    return learner
