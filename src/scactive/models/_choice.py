"""A learner chosen by the data: cross-validation on the labeled cells picks among candidates.

Which representation serves a dataset best is a property of the data. The pool's 50-PC
projection (``mlp2``) is strong from a few labels and where types differ along the main axes
of variation; a gene-level model keeps types that differ only in a few genes of little
variance, which the top PCs leave out (fine T-cell subtypes). :class:`ChosenLearner` decides
per dataset and per fit, from the labeled cells alone: stratified k-fold cross-validation of
every candidate, scored by macro-F1 weighted as the strategy weighted the cells, then the
winner trained on every labeled cell. It never sees a cell that is not labeled.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from ._one_class import fit_learner

logger = logging.getLogger("scactive")


class ChosenLearner(ClassifierMixin, BaseEstimator):
    """The candidate preset that cross-validates best on the labeled cells.

    Reads the scaled feature genes; each candidate is built on them by
    :func:`~scactive.models.make_learner` (a PCA learner through the pool's projection, a
    log-value learner through the unscaling), so every candidate sees the same cells.

    Rule, fixed in advance: with at least ``min_per_type`` labeled cells of every type,
    ``n_folds``-fold stratified cross-validation scores every candidate by macro-F1 on the
    held-out folds (cells weighted by ``sample_weight``); the best mean wins, and a candidate
    must beat the first by more than ``margin`` to replace it (the first is the one that is
    strong from few labels). With fewer labels the first candidate is used: a fold would hold
    too few cells of a type to tell the candidates apart.

    The first candidate is also trained whenever it is stochastic, so that MC-dropout
    strategies (``sample_proba``) and BADGE (``hidden_activations``) always have its network;
    the calls (``predict_proba``) are the chosen candidate's.

    Parameters
    ----------
    candidates
        Preset names; the first is the fallback.
    n_folds
        Folds of the cross-validation.
    min_per_type
        Labeled cells every type needs before the candidates are cross-validated.
    margin
        Macro-F1 a candidate must gain over the first to be chosen.
    features
        The fitted feature space (given by ``make_learner``).
    random_state
        Seeds the folds and the candidates.

    Attributes
    ----------
    choice_
        The chosen preset.
    cv_scores_
        Mean cross-validated macro-F1 of each candidate (empty when not cross-validated).
    chosen_
        The chosen candidate, fitted on every labeled cell.
    first_
        The first candidate fitted on every labeled cell (its network serves MC dropout).
    """

    def __init__(
        self,
        candidates: tuple[str, ...] = ("mlp2", "logreg-log"),
        n_folds: int = 3,
        min_per_type: int = 3,
        margin: float = 0.0,
        features: Any = None,
        random_state: int | None = None,
    ) -> None:
        self.candidates = candidates
        self.n_folds = n_folds
        self.min_per_type = min_per_type
        self.margin = margin
        self.features = features
        self.random_state = random_state

    def _build(self, name: str, seed: int) -> Any:
        from ._registry import make_learner

        return make_learner(name, self.features, rng=seed)

    def fit(self, X, y, sample_weight=None) -> ChosenLearner:
        """Cross-validate the candidates on ``X, y``, then train the winner on every cell."""
        if self.features is None:
            raise ValueError("ChosenLearner needs the fitted feature space: build it with "
                             "make_learner('auto', features)")  # fmt: skip
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y)
        weight = None if sample_weight is None else np.asarray(sample_weight, np.float32)
        seed = 0 if self.random_state is None else int(self.random_state)
        self.classes_, counts = np.unique(y, return_counts=True)
        self.cv_scores_ = {}
        choice = self.candidates[0]
        if len(self.classes_) > 1 and counts.min() >= max(self.min_per_type, self.n_folds):
            self.cv_scores_ = self._cross_validate(X, y, weight, seed)
            first = self.cv_scores_[choice]
            best = max(self.cv_scores_, key=self.cv_scores_.get)
            if self.cv_scores_[best] > first + self.margin:
                choice = best
        self.choice_ = choice
        logger.info("auto learner: %s (cross-validated macro-F1 %s)", choice, self.cv_scores_)
        self.chosen_ = fit_learner(self._build(choice, seed), X, y, sample_weight=weight)
        self.first_ = self.chosen_
        if choice != self.candidates[0]:
            first = self._build(self.candidates[0], seed)
            if hasattr(first, "sample_proba"):
                self.first_ = fit_learner(first, X, y, sample_weight=weight)
        return self

    def _cross_validate(self, X, y, weight, seed: int) -> dict[str, float]:
        folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=seed).split(X, y)
        scores: dict[str, list[float]] = {name: [] for name in self.candidates}
        for k, (train, test) in enumerate(folds):
            for name in self.candidates:
                learner = self._build(name, seed + 1000 * (k + 1))
                part = None if weight is None else weight[train]
                fit_learner(learner, X[train], y[train], sample_weight=part)
                scores[name].append(
                    f1_score(
                        y[test],
                        learner.predict(X[test]),
                        average="macro",
                        sample_weight=None if weight is None else weight[test],
                    )
                )
        return {name: float(np.mean(values)) for name, values in scores.items()}

    def predict_proba(self, X) -> np.ndarray:
        """The chosen candidate's class probabilities (columns in ``classes_``)."""
        check_is_fitted(self, "chosen_")
        return np.asarray(self.chosen_.predict_proba(X), dtype=np.float32)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def sample_proba(self, X, n_draws: int = 10, *, rng=None) -> np.ndarray:
        """MC-dropout draws of the first candidate's network."""
        check_is_fitted(self, "first_")
        if not hasattr(self.first_, "sample_proba"):
            raise ValueError(
                f"The first candidate, {self.candidates[0]!r}, has no MC dropout; put a "
                "stochastic learner (such as mlp2) first to use MC-dropout strategies."
            )
        return self.first_.sample_proba(X, n_draws, rng=rng)

    def hidden_activations(self, X) -> np.ndarray:
        """The first candidate's last hidden layer (for BADGE); the features without one."""
        check_is_fitted(self, "first_")
        if hasattr(self.first_, "hidden_activations"):
            return self.first_.hidden_activations(X)
        return np.asarray(X, dtype=np.float32)
