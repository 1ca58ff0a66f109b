"""Feature selection fitted on the training pool only, then applied to any cells."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp
from sklearn.decomposition import PCA

from .._errors import InputError

logger = logging.getLogger("scactive")


@dataclass
class FeatureSpace:
    """Gene filter, highly variable genes, scaling and PCA, fitted on the pool cells.

    Parameters
    ----------
    n_top_genes
        Number of highly variable genes kept as features (all genes when fewer pass).
    min_cells
        Genes detected in fewer pool cells are dropped before the HVG selection.
    scale
        Standardise each feature to zero mean and unit variance over the pool (clipped at
        ``max_value``). The MLP trains faster and better on scaled inputs.
    n_pcs
        Components of the PCA used by clustering strategies and plots.

    Attributes
    ----------
    genes_
        The feature genes, in column order.
    mean_, std_
        Per-feature mean and standard deviation on the pool (before clipping).
    pca_
        The fitted :class:`sklearn.decomposition.PCA`.
    """

    n_top_genes: int = 2000
    min_cells: int = 10
    scale: bool = True
    max_value: float = 10.0
    n_pcs: int = 50
    random_state: int = 0
    genes_: np.ndarray = field(init=False, repr=False)
    mean_: np.ndarray = field(init=False, repr=False)
    std_: np.ndarray = field(init=False, repr=False)
    pca_: PCA = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_top_genes < 1 or self.n_pcs < 1 or self.min_cells < 0:
            raise InputError(
                f"n_top_genes={self.n_top_genes}, n_pcs={self.n_pcs}, "
                f"min_cells={self.min_cells}: need at least one gene and one component, and "
                "min_cells >= 0."
            )

    def fit(self, pool: ad.AnnData) -> FeatureSpace:
        """Choose genes on the log-normalised ``pool`` and fit scaling and PCA on it."""
        detected = np.asarray((pool.X > 0).sum(axis=0)).ravel()
        keep = detected >= min(self.min_cells, max(pool.n_obs // 2, 1))
        candidates = pool.var_names[keep]
        if len(candidates) <= self.n_top_genes:
            genes = candidates
        else:
            sub = ad.AnnData(pool[:, candidates].X.copy(), var=pool.var.loc[candidates, []])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hvg = sc.pp.highly_variable_genes(
                    sub, flavor="seurat", n_top_genes=self.n_top_genes, inplace=False
                )
            hvg.index = candidates
            genes = hvg.index[hvg["highly_variable"].to_numpy()]
        self.genes_ = np.asarray(genes, dtype=object)
        logger.info(
            "features: %d genes (of %d detected in >= %d cells)",
            len(self.genes_),
            len(candidates),
            self.min_cells,
        )
        raw = _dense(pool[:, self.genes_].X)
        self.mean_ = raw.mean(axis=0)
        std = raw.std(axis=0)
        self.std_ = np.where(std > 0, std, 1.0).astype(np.float32)
        n_pcs = min(self.n_pcs, raw.shape[0] - 1, raw.shape[1] - 1)
        self.pca_ = PCA(
            n_components=max(n_pcs, 1), svd_solver="randomized", random_state=self.random_state
        )
        self.pca_.fit(self._scaled(raw))
        return self

    def transform(self, adata: ad.AnnData) -> np.ndarray:
        """The feature matrix (cells x genes, float32) of any cells with the pool's genes."""
        missing = np.setdiff1d(self.genes_, adata.var_names)
        if len(missing):
            raise ValueError(f"{len(missing)} feature genes are missing, e.g. {missing[:3]}")
        X = _dense(adata[:, self.genes_].X)
        return self._scaled(X) if self.scale else X

    def embed(self, features: np.ndarray) -> np.ndarray:
        """PCA coordinates of a feature matrix returned by :meth:`transform`."""
        scaled = features if self.scale else self._scaled(features)
        return self.pca_.transform(scaled).astype(np.float32)

    def unscale(self, features: np.ndarray) -> np.ndarray:
        """Log-normalised values of a feature matrix from :meth:`transform`.

        Undoes the scaling (values clipped by it come back at the clip); with ``scale=False``
        the features are returned as they are.
        """
        if not self.scale:
            return features
        return (features * self.std_ + self.mean_).astype(np.float32, copy=False)

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        out = (X - self.mean_) / self.std_
        np.clip(out, -self.max_value, self.max_value, out=out)
        return out.astype(np.float32, copy=False)


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float32)
