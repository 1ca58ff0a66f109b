"""What speaks for a cell's type: distinctive genes, markers, predictions, labeled neighbours."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..loop import LabelState
from ..pp import gene_symbols
from ..strategies._cold import marker_positions
from ._prepare import PreparedCells

#: Cells (the cell and its nearest neighbours in PCA) whose mean ranks distinctive genes.
SMOOTH_K = 15
#: Distinctive genes shown for a cell.
TOP_GENES = 10


class Evidence:
    """The evidence of every cell of a session, from its prepared data and UMAP."""

    def __init__(self, data: PreparedCells, umap: np.ndarray, cells: pd.Index) -> None:
        self._data = data
        self._umap = umap
        self._cells = cells
        self._symbols = np.asarray(gene_symbols(data.log), dtype=object)
        self._markers: dict[str, list[int]] = {}
        self._gene_stats: tuple[np.ndarray, ...] | None = None

    def use_markers(self, markers: Mapping[str, Sequence[str]], *, warn: bool = False) -> None:
        """Show these marker genes (type -> genes); with ``warn``, name those not in the
        data in a warning."""
        self._markers = self.resolve_markers(markers, warn=warn)

    def for_cell(
        self,
        pos: int,
        answers: Sequence[Mapping],
        state: LabelState,
        learner,
        proba: np.ndarray | None,
    ) -> dict:
        """The evidence of the cell at ``pos`` (see :meth:`Session.cell_evidence`)."""
        cell = str(self._cells[pos])
        data = self._data
        mean, sd, varies, _ = self._stats()
        row = np.asarray(data.log.X[pos].toarray()).ravel()
        z = (row - mean) / sd
        pca = data.pca
        z_near = self._neighbourhood_z(pos)
        top = self._top(z_near, TOP_GENES)

        def gene(i: int) -> dict:
            return {
                "gene": str(self._symbols[i]),
                "expression": float(row[i]),
                "z": float(z[i]) if varies[i] else None,
                "z_neighbourhood": float(z_near[i]) if varies[i] else None,
            }

        positions = state.positions
        others = positions[positions != pos]
        distance = np.linalg.norm(pca[others] - pca[pos], axis=1)
        nearest = others[np.argsort(distance, kind="stable")[:5]]
        predictions = []
        if learner is not None:
            p = proba[pos]
            predictions = [
                {"label": str(learner.classes_[i]), "probability": float(p[i])}
                for i in np.argsort(-p, kind="stable")[:3]
            ]
        return {
            "cell": cell,
            "umap": self._umap[pos].tolist(),
            "pca": pca[pos, :2].tolist(),
            "answer": next((a for a in answers if a["cell"] == cell), None),
            "top_genes": [gene(i) for i in top],
            "markers": {t: [gene(i) for i in idx] for t, idx in self._markers.items()},
            "predictions": predictions,
            "neighbours": [
                {
                    "cell": str(self._cells[j]),
                    "label": state.labels[j],
                    "distance": float(np.linalg.norm(pca[j] - pca[pos])),
                }
                for j in nearest
            ],
        }

    @property
    def symbols(self) -> np.ndarray:
        """Every gene's symbol, in the order of the log-normalised matrix's columns."""
        return self._symbols

    def marker_columns(self) -> list[int]:
        """The columns of the session's marker genes, each once, in the markers' order."""
        return list(dict.fromkeys(i for idx in self._markers.values() for i in idx))

    def top_genes(self, pos: int, n: int = TOP_GENES) -> list[int]:
        """The columns of the ``n`` genes most over-expressed in the neighbourhood of the
        cell at ``pos`` (the ``top_genes`` of :meth:`for_cell`, in the same order)."""
        return self._top(self._neighbourhood_z(pos), n)

    def _neighbourhood_z(self, pos: int) -> np.ndarray:
        """Per gene, the z-score of the mean of the cell and its ``SMOOTH_K - 1`` nearest
        cells (PCA) against all cells: one cell's counts are too sparse to rank on."""
        mean, sd, _, _ = self._stats()
        pca = self._data.pca
        near = np.argsort(np.linalg.norm(pca - pca[pos], axis=1), kind="stable")[:SMOOTH_K]
        return (np.asarray(self._data.log.X[near].mean(axis=0)).ravel() - mean) / sd

    def _top(self, z_near: np.ndarray, n: int) -> list[int]:
        usable = self._stats()[3]
        ranked = np.where(usable, z_near, -np.inf)
        return [int(i) for i in np.argsort(-ranked, kind="stable")[:n] if usable[i]]

    def _stats(self) -> tuple[np.ndarray, ...]:
        """Per gene: mean and sd of log expression over all cells, sd > 0, rankable."""
        if self._gene_stats is None:  # a race computes it twice, harmlessly
            X = self._data.log.X
            mean = np.asarray(X.mean(axis=0)).ravel()
            sq = np.asarray(X.multiply(X).mean(axis=0)).ravel()
            sd = np.sqrt(np.maximum(sq - mean**2, 0))
            detected = np.asarray((X > 0).sum(axis=0)).ravel()
            # rank the feature genes seen in >= 1% of cells (and >= 10): a gene seen in a
            # handful of cells gets a huge z from a single count and says little
            floor = min(max(10, int(0.01 * X.shape[0])), max(X.shape[0] // 2, 1))
            features = np.isin(self._data.log.var_names, self._data.features.genes_)
            usable = (sd > 0) & (detected >= floor) & features
            self._gene_stats = (mean, np.where(sd > 0, sd, 1.0), sd > 0, usable)
        return self._gene_stats

    def resolve_markers(
        self, markers: Mapping[str, Sequence[str]], *, warn: bool = False
    ) -> dict[str, list[int]]:
        """Gene positions of each type's markers (by symbol or name, case-folded if need be)."""
        names = (self._symbols, np.asarray(self._data.log.var_names, dtype=object))
        out, missing = marker_positions(names, markers)
        if missing and warn:
            warnings.warn(
                f"{len(missing)} marker genes are not in the data and are ignored: "
                f"{', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}.",
                UserWarning,
                stacklevel=4,
            )
        return out
