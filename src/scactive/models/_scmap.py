"""scmap-cluster and scmap-cell (Kiselev, Yiu & Hemberg, Nature Methods 2018), in Python.

Both follow the R package's ``scmapCluster`` and ``scmapCell``/``scmapCell2Cluster`` on the
log-normalised expression of the genes given, after scmap's own gene selection
(``selectFeatures``, :func:`scmap_features`); scmap-cell searches its neighbours exactly
(scikit-learn, cosine, brute force) instead of scmap's product-quantised approximation.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from ._annotator import (
    UNASSIGNED,
    BaselineAnnotator,
    Matrix,
    iter_chunks,
    logger,
    neighbour_vote,
    row_ranks,
    unit_rows,
)


def scmap_features(X: Matrix, n_features: int | None = 500) -> np.ndarray:
    """Columns scmap's ``selectFeatures`` keeps: more dropouts than their expression predicts.

    Following scmap's ``linearModel``: genes detected in some but not all cells; a linear fit
    of log2(% of cells where the gene is 0) on its mean log expression; the ``n_features``
    genes with the largest residuals (sorted column positions). ``None``, or at least as many
    genes as there are, keeps every column.
    """
    n_genes = X.shape[1]
    if n_features is None or n_features >= n_genes:
        return np.arange(n_genes)
    zeros = np.zeros(n_genes)
    total = np.zeros(n_genes)
    for _, block in iter_chunks(X):
        zeros += (block == 0).sum(axis=0)
        total += block.sum(axis=0, dtype=np.float64)
    dropout = 100 * zeros / X.shape[0]
    usable = np.flatnonzero((dropout > 0) & (dropout < 100))
    if len(usable) <= n_features:
        return usable if len(usable) else np.arange(n_genes)
    expression = total[usable] / X.shape[0]
    log_dropout = np.log2(dropout[usable])
    slope, intercept = np.polyfit(expression, log_dropout, 1)
    residuals = log_dropout - (slope * expression + intercept)
    top = np.argsort(-residuals, kind="stable")[:n_features]
    return np.sort(usable[top])


class _ScmapAnnotator(BaselineAnnotator):
    """Shared by both scmap methods: fit and predict on scmap's selected genes only."""

    n_features: int | None

    def _fit(self, X: Matrix, codes: np.ndarray) -> None:
        self.features_ = scmap_features(X, self.n_features)
        self._fit_selected(X[:, self.features_], codes)

    def _check_query(self, X):
        return super()._check_query(X)[:, self.features_]

    def _fit_selected(self, X: Matrix, codes: np.ndarray) -> None:
        raise NotImplementedError


class ScmapCluster(_ScmapAnnotator):
    """scmap-cluster: project cells onto the median profiles of the reference types.

    The centroid of a type is the median log expression of its reference cells (scmap's
    ``indexCluster``); a centroid that is zero for every gene is left out, as scmap drops it.
    Each query cell is compared with every centroid by cosine similarity, Pearson and
    Spearman correlation, and each measure picks its most similar centroid. Following
    ``scmapCluster``:

    - when at least two of the three measures pick the same type, that type is the candidate
      and its similarity is the largest of the agreeing measures' maxima (all three when all
      agree);
    - the cell is assigned the candidate when that similarity is ``>= threshold``, otherwise
      :data:`UNASSIGNED`; when all three measures disagree, or a measure is undefined for
      the cell (an all-zero or constant cell), it is :data:`UNASSIGNED`.

    Parameters
    ----------
    threshold
        Minimum similarity of an assignment (scmap's default 0.7).
    n_features
        Genes kept by scmap's selection (:func:`scmap_features`; scmap's default 500);
        ``None`` uses every gene given.

    Attributes
    ----------
    classes_
        The reference types, sorted.
    features_
        Positions of the selected genes among the columns given.
    centroids_
        Median log expression of each type, types x genes.

    Notes
    -----
    ``predict_score`` is the similarity above (``nan`` when no two measures agree, as scmap's
    ``scmap_cluster_siml``). ``predict_proba`` ignores the rule: it is the mean of the three
    similarities to each centroid, clipped at 0 and normalised over the types (uniform over
    the kept centroids when all are 0).
    """

    def __init__(self, threshold: float = 0.7, n_features: int | None = 500) -> None:
        self.threshold = threshold
        self.n_features = n_features

    def _fit_selected(self, X: Matrix, codes: np.ndarray) -> None:
        centroids = np.zeros((len(self.classes_), X.shape[1]))
        for k in range(len(self.classes_)):
            cells = np.flatnonzero(codes == k)
            block = X[cells]
            block = block.toarray() if sp.issparse(block) else block
            centroids[k] = np.median(np.asarray(block, dtype=np.float64), axis=0)
        self.centroids_ = centroids
        self.kept_ = centroids.sum(axis=1) > 0
        if not self.kept_.any():
            raise ValueError(
                "Every type's median expression is 0 in every feature gene, so scmap-cluster "
                "has no centroid; select more (or more highly expressed) feature genes."
            )
        if not self.kept_.all():
            logger.warning(
                "scmap-cluster: median expression is 0 in every gene for %s; these types "
                "cannot be assigned",
                ", ".join(map(str, self.classes_[~self.kept_])),
            )
        self._centroid_rows_ = [
            unit_rows(centroids, center=False)[0],
            unit_rows(centroids, center=True)[0],
            unit_rows(row_ranks(centroids), center=True)[0],
        ]

    def _similarities(self, block: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Cosine, Pearson and Spearman similarities to the centroids, and where all defined."""
        queries = [
            unit_rows(block, center=False),
            unit_rows(block, center=True),
            unit_rows(row_ranks(block), center=True),
        ]
        sims = [q @ ref.T for (q, _), ref in zip(queries, self._centroid_rows_, strict=True)]
        ok = queries[0][1] & queries[1][1] & queries[2][1]
        return sims, ok

    def _predict_with_score(self, X: Matrix) -> tuple[np.ndarray, np.ndarray]:
        labels = np.full(X.shape[0], UNASSIGNED, dtype=object)
        scores = np.full(X.shape[0], np.nan)
        for where, block in iter_chunks(X):
            sims, ok = self._similarities(block)
            best = np.stack([np.where(self.kept_, s, -np.inf).argmax(axis=1) for s in sims], 1)
            tops = np.stack([s.max(axis=1, where=self.kept_, initial=-np.inf) for s in sims], 1)
            # the type picked by at least two measures (-1: all three disagree)
            candidate = np.where(
                (best[:, 0] == best[:, 1]) | (best[:, 0] == best[:, 2]),
                best[:, 0],
                np.where(best[:, 1] == best[:, 2], best[:, 1], -1),
            )
            agree = best == candidate[:, None]
            sim = np.where(agree, tops, -np.inf).max(axis=1)
            valid = ok & (candidate >= 0)
            sim = np.where(valid, sim, np.nan)
            assign = valid & (sim >= self.threshold)
            chunk_labels = labels[where]
            chunk_labels[assign] = self.classes_[candidate[assign]]
            scores[where] = sim
        return labels, scores

    def predict_proba(self, X: Matrix) -> np.ndarray:
        """Normalised positive mean similarity to each centroid (columns in ``classes_``)."""
        X = self._check_query(X)
        out = np.zeros((X.shape[0], len(self.classes_)))
        for where, block in iter_chunks(X):
            sims, _ = self._similarities(block)
            mean = np.clip((sims[0] + sims[1] + sims[2]) / 3, 0, None) * self.kept_
            mean[mean.sum(axis=1) == 0] = self.kept_
            out[where] = mean / mean.sum(axis=1, keepdims=True)
        return out


class ScmapCell(_ScmapAnnotator):
    """scmap-cell: the labels of a cell's nearest reference cells by cosine similarity.

    The reference cells are indexed once with scikit-learn's
    ``NearestNeighbors(metric="cosine", algorithm="brute")``; each query cell gets its
    ``n_neighbors`` nearest reference cells (all of them if the reference is smaller).
    Following ``scmapCell2Cluster``, a cell is assigned when its first ``n_agree`` neighbours
    all have the same type and the largest cosine similarity among them is
    ``> threshold`` (strictly, as in scmap); otherwise it is :data:`UNASSIGNED`.

    Parameters
    ----------
    n_neighbors
        Neighbours found per cell (scmap's ``w`` of ``scmapCell``, default 10).
    n_agree
        Leading neighbours that must agree (scmap's ``w`` of ``scmapCell2Cluster``, 3).
    threshold
        Cosine similarity the best of those neighbours must exceed (scmap's 0.5).
    n_features
        Genes kept by scmap's selection (:func:`scmap_features`; scmap's default 500);
        ``None`` uses every gene given.

    Attributes
    ----------
    classes_
        The reference types, sorted.
    features_
        Positions of the selected genes among the columns given.
    index_
        The fitted ``NearestNeighbors`` over the reference cells.

    Notes
    -----
    ``predict_score`` is the largest cosine similarity among the first ``n_agree``
    neighbours (the quantity the threshold applies to). ``predict_proba`` ignores the rule:
    each of the ``n_neighbors`` neighbours votes for its type with its cosine similarity
    (clipped at 0; an unweighted vote when all are 0).
    """

    def __init__(
        self,
        n_neighbors: int = 10,
        n_agree: int = 3,
        threshold: float = 0.5,
        n_features: int | None = 500,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.n_agree = n_agree
        self.threshold = threshold
        self.n_features = n_features

    def _fit_selected(self, X: Matrix, codes: np.ndarray) -> None:
        if self.n_neighbors < 1 or self.n_agree < 1:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} and n_agree={self.n_agree}; both must be >= 1."
            )
        self.k_ = min(self.n_neighbors, X.shape[0])
        self.index_ = NearestNeighbors(n_neighbors=self.k_, metric="cosine", algorithm="brute")
        self.index_.fit(X.astype(np.float32, copy=False))
        self.codes_ = codes

    def _neighbours(self, X: Matrix):
        for where, block in iter_chunks(X):
            distance, index = self.index_.kneighbors(block, n_neighbors=self.k_)
            yield where, self.codes_[index], 1.0 - distance

    def _predict_with_score(self, X: Matrix) -> tuple[np.ndarray, np.ndarray]:
        labels = np.full(X.shape[0], UNASSIGNED, dtype=object)
        scores = np.empty(X.shape[0])
        w = min(self.n_agree, self.k_)
        for where, codes, sim in self._neighbours(X):
            top = sim[:, :w].max(axis=1)
            assign = (codes[:, :w] == codes[:, :1]).all(axis=1) & (top > self.threshold)
            chunk_labels = labels[where]
            chunk_labels[assign] = self.classes_[codes[assign, 0]]
            scores[where] = top
        return labels, scores

    def predict_proba(self, X: Matrix) -> np.ndarray:
        """Similarity-weighted vote of the neighbours (columns in ``classes_``)."""
        X = self._check_query(X)
        out = np.zeros((X.shape[0], len(self.classes_)))
        for where, codes, sim in self._neighbours(X):
            out[where] = neighbour_vote(codes, np.clip(sim, 0, None), len(self.classes_))
        return out
