"""What the map can be coloured by besides the answers: genes, clusters, the input's ``obs``
columns; and the selections labeled on it in one action.

Genes are read from the session's log-normalised matrix one column at a time (the CSR
matrix's column, never a dense copy); the Leiden clusters of the PCA are computed once and
kept in the session file (its ``embeddings`` table, as ``leiden``), so a reopened session
reads them back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from ..pp import gene_symbols
from ._actions import label_cells
from ._prepare import PreparedCells
from ._store import SessionError, SessionStore, UnknownCellError

logger = logging.getLogger("scactive")

#: The name of the clusters in the session file's ``embeddings`` table.
CLUSTERS = "leiden"
#: Leiden's resolution for the map's clusters (scanpy's default).
CLUSTER_RESOLUTION = 1.0
#: An ``obs`` column with more distinct values than this is not offered as a colouring.
MAX_CATEGORIES = 200
#: Genes a search returns at most.
MAX_MATCHES = 20


class MapTools:
    """Genes, clusters and ``obs`` columns of a session's cells, and labeling selections.

    Parameters
    ----------
    store, adata, prepared, cells, seed
        The session's store, input data (for its ``obs``), prepared cells (the
        log-normalised matrix and PCA), cell names and seed.
    """

    def __init__(
        self,
        store: SessionStore,
        adata: ad.AnnData,
        prepared: PreparedCells,
        cells: pd.Index,
        seed: int,
    ) -> None:
        self._store = store
        self._obs = adata.obs
        self._log = prepared.log
        self._pca = prepared.pca
        self._cells = cells
        self._seed = seed
        self._lock = threading.Lock()
        self._clusters: np.ndarray | None = None
        self._obs_columns: list[dict] | None = None
        names = np.asarray(prepared.log.var_names, dtype=object).astype(str)
        symbols = np.asarray(gene_symbols(prepared.log), dtype=object).astype(str)
        self._genes = symbols
        # a gene by its symbol or its name (var_names), exactly or case-folded
        self._column: dict[str, int] = {}
        for keys in (names, symbols, np.char.lower(names), np.char.lower(symbols)):
            for j, key in enumerate(keys.tolist()):
                self._column.setdefault(key, j)

    # -- genes --------------------------------------------------------------------------
    def search_genes(self, text: str, limit: int = MAX_MATCHES) -> list[str]:
        """Gene symbols matching ``text`` (case-insensitive): those that start with it first,
        then those that contain it, each in the data's order; at most ``limit``."""
        query = text.strip().lower()
        if not query:
            return []
        lower = np.char.lower(self._genes)
        starts = np.flatnonzero(np.char.startswith(lower, query))
        rest = np.flatnonzero(np.char.find(lower, query) > 0)
        return [str(self._genes[j]) for j in [*starts.tolist(), *rest.tolist()][:limit]]

    def gene_column(self, gene: str) -> int:
        """The column of ``gene`` (a symbol or a name, case-folded when need be)."""
        j = self._column.get(gene, self._column.get(str(gene).lower()))
        if j is None:
            raise UnknownCellError(
                f"Unknown gene {gene[:80]!r}: not a gene of the data (e.g. {self._genes[0]!r})."
            )
        return j

    def gene_values(self, gene: str) -> tuple[str, np.ndarray]:
        """The gene's symbol and its log-normalised expression in every cell (float32): one
        column of the sparse matrix."""
        j = self.gene_column(gene)
        X = self._log.X
        column = X[:, [j]] if hasattr(X, "tocsr") else X[:, j : j + 1]
        values = column.toarray().ravel() if hasattr(column, "toarray") else column.ravel()
        return str(self._genes[j]), np.asarray(values, dtype=np.float32)

    # -- clusters -----------------------------------------------------------------------
    def clusters(self) -> np.ndarray:
        """Every cell's Leiden cluster (0 the largest), computed once and kept in the session
        file; a reopened session reads them back."""
        with self._lock:
            if self._clusters is None:
                stored = self._store.embedding(CLUSTERS)
                if stored is None or len(stored) != len(self._cells):
                    stored = self._compute_clusters()
                self._clusters = np.rint(stored[:, 0]).astype(np.int64)
            return self._clusters

    def _compute_clusters(self) -> np.ndarray:
        from ..strategies._cold import leiden_clusters

        n = len(self._cells)
        if n < 3:
            found = np.zeros(n, dtype=np.int64)
        else:
            found = leiden_clusters(self._pca, None, self._seed, resolution=CLUSTER_RESOLUTION)
        # number the clusters by size, the largest 0 (ties: the first met)
        sizes = np.bincount(found)
        order = np.lexsort((np.arange(len(sizes)), -sizes))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        values = rank[found].astype(np.float32)[:, None]
        self._store.set_embedding(CLUSTERS, values)
        logger.info("%d Leiden clusters of the PCA kept in the session file", len(sizes))
        return values

    def known_cluster(self, position: int) -> int | None:
        """The cluster of the cell at ``position``; None while the clusters are not ready."""
        clusters = self._clusters
        return None if clusters is None else int(clusters[position])

    def cluster_cells(self, cluster: int) -> list[str]:
        """The names of the cells of ``cluster``."""
        clusters = self.clusters()
        if not 0 <= cluster <= int(clusters.max(initial=-1)):
            raise SessionError(
                f"No cluster {cluster}: the map has clusters 0 to {int(clusters.max())}."
            )
        return [str(c) for c in self._cells[clusters == cluster]]

    # -- obs columns --------------------------------------------------------------------
    def obs_columns(self) -> list[dict]:
        """The categorical ``obs`` columns of the input (categories, text or true/false,
        with 2 to :data:`MAX_CATEGORIES` distinct values, fewer than the cells):
        ``name`` and ``n_categories``."""
        if self._obs_columns is None:
            self._obs_columns = self._find_obs_columns()
        return self._obs_columns

    def _find_obs_columns(self) -> list[dict]:
        out = []
        for name in self._obs.columns:
            column = self._obs[name]
            if not (
                isinstance(column.dtype, pd.CategoricalDtype)
                or pd.api.types.is_object_dtype(column)
                or pd.api.types.is_string_dtype(column)
                or pd.api.types.is_bool_dtype(column)
            ):
                continue
            n = int(column.nunique(dropna=True))
            if 2 <= n <= MAX_CATEGORIES and n < len(column):  # not a name per cell
                out.append({"name": str(name), "n_categories": n})
        return out

    def obs_codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        """An offered ``obs`` column as codes (0: missing) and its categories."""
        if name not in {c["name"] for c in self.obs_columns()}:
            offered = [c["name"] for c in self.obs_columns()]
            raise UnknownCellError(
                f"No categorical obs column {name[:80]!r}; the map offers {offered}."
            )
        column = self._obs[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes, categories = column.cat.codes.to_numpy(), column.cat.categories
        else:
            codes, categories = pd.factorize(column.astype(object), sort=True)
        return np.asarray(codes, dtype=np.int64) + 1, [str(c) for c in categories]

    # -- selections ---------------------------------------------------------------------
    def label_selection(
        self,
        label: object,
        *,
        positions: Sequence[int] | None = None,
        cluster: int | None = None,
        shape: str | None = None,
        annotator: object = None,
    ) -> dict:
        """Label a selection in one action: the cells of ``cluster`` (provenance
        ``cluster:<id>``), or the cells at map ``positions`` selected by a ``shape``
        (``lasso`` or ``box``). Returns what :func:`~._actions.label_cells` returns."""
        if (cluster is None) == (positions is None):
            raise SessionError("Label either a cluster or the positions of a selection.")
        if cluster is not None:
            return label_cells(
                self._store,
                self.cluster_cells(cluster),
                label,
                provenance=f"cluster:{cluster}",
                annotator=annotator,
            )
        if shape not in ("lasso", "box"):
            raise SessionError(f"shape={shape!r}; a selection is drawn as a 'lasso' or a 'box'.")
        where = np.asarray(positions, dtype=np.int64)
        if len(where) and (where.min() < 0 or where.max() >= len(self._cells)):
            raise UnknownCellError(
                f"A selection's positions run from 0 to {len(self._cells) - 1}; got "
                f"{int(where.min())} to {int(where.max())}."
            )
        cells = [str(c) for c in self._cells[where]]
        return label_cells(self._store, cells, label, provenance=shape, annotator=annotator)
