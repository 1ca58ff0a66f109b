"""BADGE (Ash et al. 2020): uncertain and diverse cells at once, through gradient embeddings.

Each candidate cell becomes the gradient of the loss at the learner's own call with respect to
the output layer, ``(p - onehot(argmax p)) x h``, with ``h`` the last hidden layer (the MLPs'
:meth:`~scactive.models.MLPClassifier.hidden_activations`; for a learner without one, its
input, which is what a linear model's output layer reads). A confident cell has a short
gradient, an uncertain one a long one, and cells the model sees alike point the same way;
k-means++ seeding (scikit-learn's ``kmeans_plusplus``) on these vectors then picks a batch
that is both uncertain and spread out. scikit-activeml's ``Badge`` needs a classifier that
returns its embeddings from ``predict_proba``; here the learner's own method gives them.

The embedding has ``units x classes`` columns, so BADGE sees at most ``max_candidates``
unlabeled cells (10,000 by default: 92 MB for 256 units and 9 types), and fewer when they
would hold more than 64 million values (a linear learner on 2,000 genes and 9 types: 3,555).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._random import derive_seed
from ._strategies import Strategy

#: Unlabeled cells BADGE embeds, at most (a random sample above).
BADGE_CANDIDATES = 10_000
#: Values of the gradient embeddings, at most (256 MB): fewer cells for wider ones.
EMBEDDING_VALUES = 64_000_000


def gradient_embedding(proba: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Cells x (classes * units): the cross-entropy gradient at each cell's predicted class
    with respect to the output layer's weights, ``(p - onehot(argmax p))`` outer ``hidden``."""
    proba = np.asarray(proba, dtype=np.float32)
    residual = proba.copy()
    residual[np.arange(len(proba)), proba.argmax(axis=1)] -= 1.0
    hidden = np.asarray(hidden, dtype=np.float32)
    return (residual[:, :, None] * hidden[:, None, :]).reshape(len(proba), -1)


@dataclass(frozen=True)
class BADGE(Strategy):
    """k-means++ seeds of the cells' gradient embeddings (see the module's description)."""

    max_candidates: int | None = BADGE_CANDIDATES
    name = "badge"

    def select(self, learner, X, embedding, k, rng):
        from sklearn.cluster import kmeans_plusplus

        width = learner.network_.head.in_features if hasattr(learner, "network_") else X.shape[1]
        # a learner reading 2,000 genes has 2,000 x classes columns: embed a sample that fits
        fits = max(k, EMBEDDING_VALUES // max(1, width * len(learner.classes_)))
        rows = np.sort(rng.choice(len(X), fits, replace=False)) if len(X) > fits else None
        X = X if rows is None else X[rows]
        hidden = learner.hidden_activations(X) if hasattr(learner, "hidden_activations") else X
        vectors = gradient_embedding(learner.predict_proba(X), hidden)
        _, picks = kmeans_plusplus(vectors, k, random_state=derive_seed(rng))
        picks = _distinct(picks, vectors, k)
        return picks if rows is None else rows[picks]


def _distinct(picks: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct positions: k-means++ may repeat a cell when every remaining one sits on
    a chosen seed (all gradients zero); the longest remaining gradients fill the gap."""
    picks = list(dict.fromkeys(int(i) for i in picks))
    if len(picks) < k:
        rest = np.setdiff1d(np.arange(len(vectors)), picks)
        longest = rest[np.argsort(-np.linalg.norm(vectors[rest], axis=1), kind="stable")]
        picks += [int(i) for i in longest[: k - len(picks)]]
    return np.asarray(picks, dtype=np.int64)
