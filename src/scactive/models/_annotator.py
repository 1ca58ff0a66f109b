"""Baseline cell-type annotators: the shared estimator, input checks and array helpers.

Every baseline reads log-normalised expression (log1p of counts per 10k) of the feature genes,
cells x genes, dense or scipy sparse, and follows scikit-learn: ``fit(X, y)``, ``predict``,
``predict_proba`` (columns in ``classes_``, ignoring any rejection rule) and
``predict_score`` (the method's confidence in its call). Query cells are processed in chunks of
:data:`CHUNK_SIZE`, so memory stays bounded on large data sets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

logger = logging.getLogger("scactive")

#: The call of a method with a rejection rule for a cell it does not assign.
UNASSIGNED = "unassigned"

#: Query cells per chunk (dense float32 blocks of at most this many rows).
CHUNK_SIZE = 2048

#: Values down to this far below 0 pass as rounding: log values rebuilt from scaled float32
#: features (``FeatureSpace.unscale``) come back a few 1e-8 below 0.
NEGATIVE_TOLERANCE = 1e-3

Matrix = np.ndarray | sp.spmatrix | sp.sparray


# -- input ---------------------------------------------------------------------------------
def iter_chunks(X: Matrix, rows: np.ndarray | None = None) -> Iterator[tuple[slice, np.ndarray]]:
    """Dense float32 blocks of ``X`` (optionally of its ``rows`` only), with their positions."""
    n = X.shape[0] if rows is None else len(rows)
    for start in range(0, n, CHUNK_SIZE):
        where = slice(start, min(start + CHUNK_SIZE, n))
        block = X[where] if rows is None else X[rows[where]]
        block = block.toarray() if sp.issparse(block) else block
        yield where, np.ascontiguousarray(block, dtype=np.float32)


def check_matrix(X: Any, *, name: str = "X", min_cells: int = 1) -> Matrix:
    """``X`` as a 2-D numeric ndarray or CSR matrix, refusing NaN, infinite and negative values
    (below ``-NEGATIVE_TOLERANCE``).

    Numbers stored as objects are converted to float64. The messages carry the phrases
    scikit-learn's estimator checks look for ("Complex data not supported", "Reshape your
    data", "0 feature(s)", "Negative values in data").
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    else:
        try:
            X = np.asarray(X)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a numeric cells x genes matrix ({err}).") from err
        if X.dtype.kind == "O":
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError) as err:
                raise type(err)(f"{name} must be a numeric cells x genes matrix: {err}") from err
    if X.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {X.dtype}; pass real log expression."
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must be a numeric cells x genes matrix; received dtype {X.dtype}."
        )
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (cells x genes); received shape {X.shape}. Reshape your data: "
            f"{name}.reshape(1, -1) for a single cell."
        )
    if X.shape[1] == 0:
        raise ValueError(
            f"{name} has no genes: 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
            "required; expected cells x genes."
        )
    if X.shape[0] < min_cells:
        raise ValueError(f"{name} is empty (shape {X.shape}); expected cells x genes.")
    if sp.issparse(X):
        if X.dtype.kind == "f" and not np.isfinite(X.data).all():
            raise ValueError(f"{name} contains NaN or infinite values; impute or drop them.")
        if X.nnz and X.data.min() < -NEGATIVE_TOLERANCE:
            raise ValueError(_negative_values(name, f"minimum {X.data.min():g}"))
        return X
    for start in range(0, X.shape[0], CHUNK_SIZE):
        block = X[start : start + CHUNK_SIZE]
        bad = ~np.isfinite(block)
        if bad.any():
            cell, gene = np.argwhere(bad)[0]
            raise ValueError(
                f"{name} contains NaN or infinite values (first at cell {start + cell}, gene "
                f"{gene}); impute or drop them."
            )
        bad = block < -NEGATIVE_TOLERANCE
        if bad.any():
            cell, gene = np.argwhere(bad)[0]
            where = f"first at cell {start + cell}, gene {gene}: {block[cell, gene]:g}"
            raise ValueError(_negative_values(name, where))
    return X


def _negative_values(name: str, where: str) -> str:
    return (
        f"Negative values in data passed to {name} ({where}); the baselines read "
        "log-normalised expression (log1p of counts per 10k), which is never negative: pass "
        "the values of scactive.pp.normalize, not scaled ones."
    )


# -- array helpers -------------------------------------------------------------------------
def row_ranks(X: np.ndarray) -> np.ndarray:
    """Ranks within each row, from 1; ties share their average rank (as R's ``rank``).

    The same as ``scipy.stats.rankdata(X, axis=1)``, about twice as fast on wide rows.
    """
    X = np.asarray(X)
    n, m = X.shape
    order = np.argsort(X, axis=1)
    ordered = np.take_along_axis(X, order, axis=1)
    starts_group = np.empty((n, m), dtype=bool)
    starts_group[:, 0] = True
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts_group[:, 1:])
    starts_group = starts_group.ravel()
    first = np.flatnonzero(starts_group)  # flat position of each group's first element
    last = np.append(first[1:], n * m) - 1  # every row starts a group, so groups end in-row
    group_rank = (first + last) / 2 - (first // m) * m + 1
    out = np.empty((n, m))
    np.put_along_axis(out, order, group_rank[np.cumsum(starts_group) - 1].reshape(n, m), axis=1)
    return out


def unit_rows(X: np.ndarray, *, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length (after subtracting their mean with ``center``).

    Dot products of such rows are cosine similarities (``center=False``) or Pearson
    correlations (``center=True``). Returns the rows and a mask of the rows where that is
    defined; an all-zero (or constant, when centred) row stays zero.
    """
    X = np.asarray(X, dtype=np.float64)
    if center:
        X = X - X.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    ok = norm[:, 0] > 1e-12 * max(1.0, float(np.abs(X).max(initial=0.0)))
    return np.divide(X, norm, out=np.zeros_like(X), where=ok[:, None]), ok


def class_means(X: Matrix, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean expression of every class (classes x genes)."""
    n = X.shape[0]
    indicator = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_classes, n))
    sums = indicator @ X
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums, dtype=np.float64)
    return sums / np.bincount(codes, minlength=n_classes)[:, None]


def gene_mean_sd(X: Matrix, *, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every gene; a constant gene gets sd 1 (it scales to 0)."""
    total = np.zeros(X.shape[1])
    for _, block in iter_chunks(X):
        total += block.sum(axis=0, dtype=np.float64)
    mean = total / X.shape[0]
    squares = np.zeros(X.shape[1])
    for _, block in iter_chunks(X):
        squares += ((block - mean) ** 2).sum(axis=0)
    sd = np.sqrt(squares / max(X.shape[0] - ddof, 1))
    sd[sd < 1e-8] = 1.0
    return mean, sd


def standardise(block: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Genes scaled to the reference mean and sd, clipped above at 10 (Seurat, CellTypist)."""
    return np.minimum((block - mean) / sd, 10.0).astype(np.float32)


def neighbour_vote(codes: np.ndarray, weights: np.ndarray, n_classes: int) -> np.ndarray:
    """Class shares of weighted neighbour votes (rows sum to 1).

    ``codes`` and ``weights`` are cells x neighbours; a row whose weights sum to 0 falls back
    to an unweighted vote.
    """
    n = len(codes)
    weights = np.where(weights.sum(axis=1, keepdims=True) > 0, weights, 1.0)
    flat = (np.arange(n)[:, None] * n_classes + codes).ravel()
    out = np.bincount(flat, weights=weights.ravel(), minlength=n * n_classes)
    out = out.reshape(n, n_classes)
    return out / out.sum(axis=1, keepdims=True)


# -- the common estimator --------------------------------------------------------------------
class BaselineAnnotator(ClassifierMixin, BaseEstimator):
    """Input checks and the ``predict``/``predict_score`` pair shared by the baselines.

    Subclasses implement ``_fit`` and ``_predict_with_score`` (and ``predict_proba``).
    """

    #: Whether ``predict`` may answer :data:`UNASSIGNED` (then no class may be called so).
    _rejects = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True  # log-normalised expression
        return tags

    def fit(self, X: Matrix, y: np.ndarray) -> BaselineAnnotator:
        """Learn from reference cells ``X`` (cells x genes) and their labels ``y``.

        Labels stored as text (strings, objects, categories) are compared as strings; numeric
        labels keep their type in ``classes_`` and in the calls.
        """
        X = check_matrix(X)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None; "
                "pass one label per cell."
            )
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1 or len(y) != X.shape[0]:
            raise ValueError(
                f"y must hold one label per cell: X has {X.shape[0]} cells, y has shape {y.shape}."
            )
        if pd.isna(y).any():
            raise ValueError("y contains missing labels; drop those cells before fitting.")
        if y.dtype.kind in "OSU":
            y = y.astype(str)
        else:
            check_classification_targets(y)  # refuses continuous values
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y must contain at least 2 cell types; received {len(self.classes_)} "
                f"({', '.join(repr(str(c)) for c in self.classes_)}); a classifier needs more "
                "than one class."
            )
        if self._rejects and self.classes_.dtype.kind == "U" and UNASSIGNED in self.classes_:
            raise ValueError(
                f"{type(self).__name__} answers {UNASSIGNED!r} for cells it cannot assign, so "
                f"no reference type may be called {UNASSIGNED!r}; rename or drop those cells."
            )
        self.n_features_in_ = X.shape[1]
        self._fit(X, codes)
        return self

    def _check_query(self, X: Any) -> Matrix:
        check_is_fitted(self, "classes_")
        X = check_matrix(X, min_cells=0)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (X has {X.shape[1]} genes, it was "
                f"fitted on {self.n_features_in_} genes); pass the same feature genes, in the "
                "same order."
            )
        return X

    def predict(self, X: Matrix) -> np.ndarray:
        """The call for each cell (a type, or :data:`UNASSIGNED` by the method's rule)."""
        return self._predict_with_score(self._check_query(X))[0]

    def predict_score(self, X: Matrix) -> np.ndarray:
        """The method's confidence in its call for each cell (see the class docstring)."""
        return self._predict_with_score(self._check_query(X))[1]

    def _fit(self, X: Matrix, codes: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_with_score(self, X: Matrix) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError
