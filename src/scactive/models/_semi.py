"""Learners that also learn from the unlabeled cells of the pool (semi-supervised).

A learner that declares ``uses_unlabeled = True`` takes ``fit(X, y, X_unlabeled=...)``: the
engine gives it (a sample of at most ``max_unlabeled``) of the pool's unlabeled cells beside
the labeled ones (:func:`scactive.models._one_class.fit_learner`). Given none, it is a plain
supervised learner, so a saved model or the whole-pool ceiling trains as before.

- :class:`SelfTrainingMLP`: the MLP, trained once on the labeled cells, labels the unlabeled
  cells it is sure of (probability >= ``threshold``, at most ``per_class`` times as many as a
  type has labeled cells, the surest first), and is trained again, from new weights, on both
  (pseudo-labels weigh ``pseudo_weight``). Cost-effective active learning (Wang et al. 2016)
  pairs uncertain queries with confident pseudo-labels the same way.
- :class:`LabelSpreading`: scikit-learn's label spreading over the kNN graph of labeled and
  unlabeled cells (Zhou et al. 2004), on the pool's PCA.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._classifier import MLPClassifier

#: Unlabeled cells a semi-supervised learner is given at most (a random sample above it).
MAX_UNLABELED = 20_000


class SelfTrainingMLP(MLPClassifier):
    """:class:`~scactive.models.MLPClassifier` with a round of confident pseudo-labels.

    Parameters
    ----------
    threshold
        Smallest predicted probability of a pseudo-label.
    per_class
        A type gets at most ``per_class`` times its labeled cells as pseudo-labels, so a
        type the first model favours does not crowd out the others.
    pseudo_weight
        Weight of a pseudo-labeled cell in the loss (a labeled cell weighs 1).
    max_unlabeled
        Unlabeled cells the engine gives at most (see :data:`MAX_UNLABELED`).
    **mlp
        The MLP's parameters (:class:`~scactive.models.MLPClassifier`).

    Attributes
    ----------
    n_pseudo_
        Pseudo-labeled cells of the last :meth:`fit` (0 without unlabeled cells).
    """

    uses_unlabeled = True

    def __init__(
        self,
        hidden: tuple[int, ...] = (256, 256),
        dropout: float = 0.3,
        layer_norm: bool = False,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        epochs: int = 20,
        batch_size: int = 64,
        min_steps: int = 300,
        max_steps: int | None = None,
        max_batch_size: int | None = None,
        class_weight: str | None = "balanced",
        warm_start: bool = False,
        projection: np.ndarray | None = None,
        projection_offset: np.ndarray | None = None,
        random_state: int | np.random.Generator | None = None,
        threshold: float = 0.9,
        per_class: float = 10.0,
        pseudo_weight: float = 1.0,
        max_unlabeled: int | None = MAX_UNLABELED,
    ) -> None:
        super().__init__(
            hidden=hidden,
            dropout=dropout,
            layer_norm=layer_norm,
            optimizer=optimizer,
            lr=lr,
            weight_decay=weight_decay,
            epochs=epochs,
            batch_size=batch_size,
            min_steps=min_steps,
            max_steps=max_steps,
            max_batch_size=max_batch_size,
            class_weight=class_weight,
            warm_start=warm_start,
            projection=projection,
            projection_offset=projection_offset,
            random_state=random_state,
        )
        self.threshold = threshold
        self.per_class = per_class
        self.pseudo_weight = pseudo_weight
        self.max_unlabeled = max_unlabeled

    def fit(self, X, y, sample_weight=None, X_unlabeled=None) -> SelfTrainingMLP:
        """Train on ``X, y``, then again with the confident pseudo-labels of ``X_unlabeled``."""
        super().fit(X, y, sample_weight)
        self.n_pseudo_ = 0
        if X_unlabeled is None or len(X_unlabeled) == 0 or len(self.classes_) < 2:
            return self
        picked, labels = confident_pseudo_labels(
            self.predict_proba(X_unlabeled),
            np.asarray(y),
            self.classes_,
            threshold=self.threshold,
            per_class=self.per_class,
        )
        if len(picked) == 0:
            return self
        weight = np.ones(len(y), np.float32) if sample_weight is None else sample_weight
        # from new weights (the same seed), or on from the first fit with warm_start
        super().fit(
            np.concatenate([np.asarray(X, np.float32), X_unlabeled[picked]]),
            np.concatenate([np.asarray(y, dtype=object), labels]),
            np.concatenate([weight, np.full(len(picked), self.pseudo_weight, np.float32)]),
        )
        self.n_pseudo_ = len(picked)
        return self


def confident_pseudo_labels(
    proba: np.ndarray,
    y: np.ndarray,
    classes: np.ndarray,
    *,
    threshold: float,
    per_class: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``proba`` to pseudo-label and their labels: probability >= ``threshold``, at
    most ``per_class`` x (labeled cells of the type) per type, the most probable first."""
    best = proba.argmax(1)
    confidence = proba[np.arange(len(proba)), best]
    labeled = {c: int(n) for c, n in zip(*np.unique(y, return_counts=True), strict=True)}
    picked = []
    for j, cls in enumerate(classes):
        rows = np.flatnonzero((best == j) & (confidence >= threshold))
        cap = int(per_class * labeled.get(cls, 0))
        picked.append(rows[np.argsort(-confidence[rows], kind="stable")][:cap])
    rows = np.sort(np.concatenate(picked)).astype(np.int64)
    return rows, np.asarray(classes, dtype=object)[best[rows]]


class LabelSpreading(ClassifierMixin, BaseEstimator):
    """Label spreading over the kNN graph of labeled and unlabeled cells.

    Wraps :class:`sklearn.semi_supervised.LabelSpreading` (``kernel="knn"``) for any labels
    (it wants integers, with -1 for the unlabeled) and predicts new cells by the spread
    labels of their ``n_neighbors`` nearest graph cells.

    Parameters
    ----------
    n_neighbors
        Neighbours of each cell in the graph.
    alpha
        How much of its label a labeled cell gives up to its neighbours' (0: none).
    max_iter
        Spreading iterations at most.
    max_unlabeled
        Unlabeled cells the engine gives at most (see :data:`MAX_UNLABELED`).
    """

    uses_unlabeled = True

    def __init__(
        self,
        n_neighbors: int = 15,
        alpha: float = 0.2,
        max_iter: int = 100,
        max_unlabeled: int | None = MAX_UNLABELED,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.max_iter = max_iter
        self.max_unlabeled = max_unlabeled

    def fit(self, X, y, X_unlabeled=None) -> LabelSpreading:
        from sklearn.semi_supervised import LabelSpreading as Spreading

        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        if len(X) + (0 if X_unlabeled is None else len(X_unlabeled)) < 2:
            raise ValueError("Label spreading needs at least 2 cells; got 1 sample.")
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if X_unlabeled is not None and len(X_unlabeled):
            X = np.concatenate([X, np.asarray(X_unlabeled, np.float32)])
        codes = np.full(len(X), -1, np.int64)
        codes[: len(y)] = encoder.transform(y)
        k = min(self.n_neighbors, len(X) - 1)
        self.model_ = Spreading(
            kernel="knn", n_neighbors=k, alpha=self.alpha, max_iter=self.max_iter
        ).fit(X, codes)
        self.n_iter_ = self.model_.n_iter_
        return self

    def predict_proba(self, X) -> np.ndarray:
        """The mean spread label distribution of each cell's nearest graph cells."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        model = self.model_
        neighbours = model.nn_fit.kneighbors(X, model.n_neighbors, return_distance=False)
        proba = model.label_distributions_[neighbours].sum(1)
        total = proba.sum(1, keepdims=True)
        uniform = np.full_like(proba, 1.0 / proba.shape[1])
        return np.divide(proba, total, out=uniform, where=total > 0).astype(np.float32)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(1)]
