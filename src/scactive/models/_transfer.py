"""Seurat-style label transfer and CellTypist-style logistic regression, in Python."""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize

from ._annotator import (
    UNASSIGNED,
    BaselineAnnotator,
    Matrix,
    gene_mean_sd,
    iter_chunks,
    logger,
    neighbour_vote,
    standardise,
)

#: Seurat's ``sd.weight`` of ``TransferData``: width of the Gaussian kernel on the distances.
SD_WEIGHT = 1.0


class _ProbaAnnotator(BaselineAnnotator):
    """Calls the most probable type; score = its probability; optional ``threshold``."""

    threshold: float | None = None

    @property
    def _rejects(self) -> bool:  # type: ignore[override]
        return self.threshold is not None

    def _predict_with_score(self, X: Matrix) -> tuple[np.ndarray, np.ndarray]:
        proba = self._proba(X)
        score = proba.max(axis=1)
        labels = self.classes_[proba.argmax(axis=1)]
        if self.threshold is not None or labels.dtype.kind == "U":
            # cell type names as objects (room for UNASSIGNED); numeric labels stay numeric
            labels = labels.astype(object)
        if self.threshold is not None:
            labels[score < self.threshold] = UNASSIGNED
        return labels, score

    def predict_proba(self, X: Matrix) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` (ignoring ``threshold``)."""
        return self._proba(self._check_query(X))

    def _proba(self, X: Matrix) -> np.ndarray:
        raise NotImplementedError


class KNNTransfer(_ProbaAnnotator):
    """Seurat-style label transfer, simplified: a weighted vote of neighbours in PCA space.

    Seurat's ``TransferData`` without anchors (no CCA, no anchor scores):

    1. every gene is scaled with the reference mean and standard deviation and clipped above
       at 10 (``ScaleData``); the reference is reduced to ``n_pcs`` principal components
       (scikit-learn, randomized; at most ``n_ref - 1``); query cells get the same scaling
       and projection; with ``l2_norm`` (Seurat's default in ``FindTransferAnchors``) every
       cell's coordinates are scaled to unit length, so that reference cells, which sit
       further out on their own components than projected query cells do, are compared with
       the query on direction alone;
    2. each query cell's ``n_neighbors`` nearest reference cells (Euclidean in PC space; all
       of them if the reference is smaller) are weighted as in Seurat's ``FindWeights``:
       with distances ``d_1 <= ... <= d_k``, ``w_i = 1 - exp(-(1 - d_i / d_k) / (2 s^2))``
       with ``s = sd.weight = 1``, normalised to sum to 1 (equal weights when ``d_k = 0``);
    3. ``predict_proba`` is the weighted vote per type, the call is the top type and
       ``predict_score`` its share (Seurat's ``prediction.score.max``); with ``threshold``,
       cells whose score is below it are :data:`UNASSIGNED`.

    Parameters
    ----------
    n_pcs
        Principal components of the reference.
    n_neighbors
        Reference neighbours per query cell (Seurat's ``k.weight``).
    threshold
        ``None`` (every cell gets a type) or the minimum ``predict_score`` of a call.
    l2_norm
        Scale every cell's principal coordinates to unit length before the neighbour search.
        Without it, small references (a few hundred cells) fail: their cells lie far out on
        components fitted to them, query cells project near the centre, and every query
        cell gets the same few nearest reference cells.
    random_state
        Seed of the randomized PCA.

    Attributes
    ----------
    classes_
        The reference types, sorted.
    mean_, sd_
        Reference mean and standard deviation (n - 1) of each gene.
    pca_
        The fitted ``PCA``.
    index_
        ``NearestNeighbors`` over the reference cells in PC space.
    """

    def __init__(
        self,
        n_pcs: int = 30,
        n_neighbors: int = 30,
        threshold: float | None = None,
        l2_norm: bool = True,
        random_state: int | None = 0,
    ) -> None:
        self.n_pcs = n_pcs
        self.n_neighbors = n_neighbors
        self.threshold = threshold
        self.l2_norm = l2_norm
        self.random_state = random_state

    def _fit(self, X: Matrix, codes: np.ndarray) -> None:
        if self.n_pcs < 1 or self.n_neighbors < 1:
            raise ValueError(
                f"n_pcs={self.n_pcs} and n_neighbors={self.n_neighbors}; both must be >= 1."
            )
        self.mean_, self.sd_ = gene_mean_sd(X, ddof=1)
        scaled = np.empty(X.shape, dtype=np.float32)
        for where, block in iter_chunks(X):
            scaled[where] = standardise(block, self.mean_, self.sd_)
        n_pcs = max(1, min(self.n_pcs, X.shape[0] - 1, X.shape[1]))
        self.pca_ = PCA(n_pcs, svd_solver="randomized", random_state=self.random_state)
        embedding = self._normalised(self.pca_.fit_transform(scaled))
        self.k_ = min(self.n_neighbors, X.shape[0])
        self.index_ = NearestNeighbors(n_neighbors=self.k_).fit(embedding)
        self.codes_ = codes

    def _normalised(self, embedding: np.ndarray) -> np.ndarray:
        return normalize(embedding) if self.l2_norm else embedding

    def _proba(self, X: Matrix) -> np.ndarray:
        out = np.zeros((X.shape[0], len(self.classes_)))
        for where, block in iter_chunks(X):
            embedding = self._normalised(
                self.pca_.transform(standardise(block, self.mean_, self.sd_))
            )
            distance, index = self.index_.kneighbors(embedding)
            kth = distance[:, -1:]
            proximity = np.divide(distance, kth, out=np.zeros_like(distance), where=kth > 0)
            weights = 1 - np.exp(-(1 - proximity) / (2 * SD_WEIGHT**2))
            out[where] = neighbour_vote(self.codes_[index], weights, len(self.classes_))
        return out


class CellTypistLogReg(_ProbaAnnotator):
    """CellTypist-style logistic regression (Domínguez Conde et al., Science 2022).

    As ``celltypist.train`` with its defaults (no SGD, no mini-batches): genes are scaled with
    the reference mean and standard deviation and clipped above at 10; a one-vs-rest
    L2-regularised logistic regression (lbfgs) is fitted. With ``feature_selection``, the
    ``top_genes`` genes of largest absolute coefficient of every type are pooled and the
    regression is fitted again on them (CellTypist fits the first round by SGD; here both
    rounds use lbfgs). The call is the most probable type (CellTypist's "best match");
    ``predict_score`` is its probability. There is no rejection rule.

    Parameters
    ----------
    C
        Inverse regularisation strength.
    max_iter
        Iterations of lbfgs.
    feature_selection
        Refit on the pooled top genes of every type. With ``top_genes >=`` the number of
        genes every gene is kept (CellTypist refuses that case).
    top_genes
        Genes per type kept by the feature selection.
    random_state
        Passed to scikit-learn (lbfgs itself is deterministic).

    Attributes
    ----------
    classes_
        The reference types, sorted.
    mean_, sd_
        Reference mean and standard deviation (population) of each gene.
    genes_
        Positions of the genes the final regression reads.
    classifier_
        The fitted ``OneVsRestClassifier(LogisticRegression)``.
    n_iter_
        Iterations of lbfgs of the final regression (the most any type needed).
    """

    def __init__(
        self,
        C: float = 1.0,
        max_iter: int = 1000,
        feature_selection: bool = False,
        top_genes: int = 300,
        random_state: int | None = 0,
    ) -> None:
        self.C = C
        self.max_iter = max_iter
        self.feature_selection = feature_selection
        self.top_genes = top_genes
        self.random_state = random_state

    def _fit(self, X: Matrix, codes: np.ndarray) -> None:
        self.mean_, self.sd_ = gene_mean_sd(X, ddof=0)
        scaled = np.empty(X.shape, dtype=np.float32)
        for where, block in iter_chunks(X):
            scaled[where] = standardise(block, self.mean_, self.sd_)
        y = self.classes_[codes]
        self.genes_ = np.arange(X.shape[1])
        self.classifier_ = self._regression().fit(scaled, y)
        if self.feature_selection:
            if self.top_genes < X.shape[1]:
                coef = np.vstack([e.coef_ for e in self.classifier_.estimators_])
                top = np.argpartition(np.abs(coef), -self.top_genes, axis=1)[:, -self.top_genes :]
                self.genes_ = np.unique(top)
                logger.info("logreg: %d genes selected", len(self.genes_))
                self.classifier_ = self._regression().fit(scaled[:, self.genes_], y)
            else:
                logger.info("logreg: top_genes >= number of genes; every gene is kept")
        self.n_iter_ = max(int(np.max(e.n_iter_)) for e in self.classifier_.estimators_)

    def _regression(self) -> OneVsRestClassifier:
        return OneVsRestClassifier(
            LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state)
        )

    def _proba(self, X: Matrix) -> np.ndarray:
        # OneVsRestClassifier.predict_proba with the per-type regressions stacked into one
        # matrix product: each type's sigmoid, normalised over the types
        coef = np.vstack([e.coef_ for e in self.classifier_.estimators_]).T.astype(np.float32)
        intercept = np.concatenate([e.intercept_ for e in self.classifier_.estimators_])
        mean, sd = self.mean_[self.genes_], self.sd_[self.genes_]
        out = np.zeros((X.shape[0], len(self.classes_)))
        for where, block in iter_chunks(X):
            p = expit(standardise(block[:, self.genes_], mean, sd) @ coef + intercept)
            if len(self.classes_) == 2:
                p = np.hstack([1 - p, p])
            out[where] = p / p.sum(axis=1, keepdims=True)
        return out
