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
from ._sparse import detected_per_gene

logger = logging.getLogger("scactive")


#: The matrices a learner may read (see :meth:`FeatureSpace.matrix`).
INPUTS = ("scaled", "log", "pca")

#: Cells per block when a matrix is built block by block.
CHUNK_CELLS = 20_000


@dataclass
class FeatureSpace:
    """Gene filter, highly variable genes, scaling and PCA, fitted on the pool cells.

    The matrix is read in blocks of rows and stays sparse: only the cells the fit samples
    (``fit_cells``) and one block at a time are ever dense, so a pool of a million cells fits
    in a few GB.

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
    fit_cells
        The HVG selection, the scaling and the PCA are fitted on at most this many pool
        cells, drawn at random (seeded by ``random_state``): pools up to this size use every
        cell; larger ones a sample, as Seurat's sketching does. ``None``: every cell.

    Attributes
    ----------
    genes_
        The feature genes, in column order.
    mean_, std_
        Per-feature mean and standard deviation on the pool (before clipping).
    pca_
        The fitted :class:`sklearn.decomposition.PCA`.
    n_fit_cells_
        Pool cells the scaling and PCA were fitted on.
    """

    n_top_genes: int = 2000
    min_cells: int = 10
    scale: bool = True
    max_value: float = 10.0
    n_pcs: int = 50
    random_state: int = 0
    fit_cells: int | None = 50_000
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
        if self.fit_cells is not None and self.fit_cells < 2:
            raise InputError(f"fit_cells={self.fit_cells}; expected at least 2 (or None).")

    def fit(self, pool: ad.AnnData) -> FeatureSpace:
        """Choose genes on the log-normalised ``pool`` and fit scaling and PCA on it."""
        detected = np.zeros(pool.n_vars, dtype=np.int64)
        for _, block in _row_blocks(pool):
            detected += detected_per_gene(block)
        keep = detected >= min(self.min_cells, max(pool.n_obs // 2, 1))
        candidates = pool.var_names[keep]
        sample = pool
        if self.fit_cells is not None and pool.n_obs > self.fit_cells:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(pool.n_obs, self.fit_cells, replace=False))
            sample = pool[rows]
        self.n_fit_cells_ = sample.n_obs
        X = sample[:, candidates].X  # a new matrix: the HVG selection leaves it as it is
        if len(candidates) <= self.n_top_genes:
            genes, columns = candidates, np.arange(len(candidates))
        else:
            sub = ad.AnnData(X, var=pool.var.loc[candidates, []])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                hvg = sc.pp.highly_variable_genes(
                    sub, flavor="seurat", n_top_genes=self.n_top_genes, inplace=False
                )
            columns = np.flatnonzero(hvg["highly_variable"].to_numpy())
            genes = candidates[columns]
        self.genes_ = np.asarray(genes, dtype=object)
        logger.info(
            "features: %d genes (of %d detected in >= %d cells), fitted on %d cells",
            len(self.genes_),
            len(candidates),
            self.min_cells,
            self.n_fit_cells_,
        )
        raw = _dense(X[:, columns])
        del X
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
        return self.matrix(adata, "scaled")

    def matrix(self, adata: ad.AnnData, input: str = "scaled") -> np.ndarray:
        """What a learner of declared ``input`` reads, for any cells with the pool's genes.

        ``"scaled"``: the feature genes as :meth:`transform` gives them; ``"log"``: their
        log-normalised values; ``"pca"``: the pool's PCA (cells x components). Built block by
        block: the PCA of a million cells never holds their genes dense.
        """
        if input not in INPUTS:
            raise ValueError(f"input={input!r}; expected one of {', '.join(INPUTS)}")
        missing = np.setdiff1d(self.genes_, adata.var_names)
        if len(missing):
            raise ValueError(f"{len(missing)} feature genes are missing, e.g. {missing[:3]}")
        columns = adata.var_names.get_indexer(self.genes_)
        width = self.pca_.n_components_ if input == "pca" else len(self.genes_)
        out = np.empty((adata.n_obs, width), dtype=np.float32)
        for rows, block in _row_blocks(adata):
            out[rows] = self.from_log(_dense(block[:, columns]), input)
        return out

    def from_log(self, X: np.ndarray, input: str = "scaled") -> np.ndarray:
        """What :meth:`matrix` gives for ``X``, the log-normalised values of the feature
        genes (cells x genes, dense, in the order of ``genes_``)."""
        if input == "log":
            return X
        features = self._scaled(X) if self.scale else X  # as transform gives them
        return self.embed(features) if input == "pca" else features

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


def _row_blocks(adata: ad.AnnData, size: int = CHUNK_CELLS):
    """``(rows, X)`` for consecutive blocks of ``size`` cells: a view (or a backed file)
    gives one block at a time, never its whole matrix."""
    for start in range(0, adata.n_obs, size):
        rows = slice(start, min(start + size, adata.n_obs))
        X = adata[rows].X
        yield rows, (X if sp.issparse(X) else np.asarray(X))
