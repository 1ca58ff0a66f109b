"""Preparing a labeled AnnData for simulation: QC, left-out cells, per-seed splits (the
options they follow: :mod:`._options`)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import cached_property

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .._errors import InputError
from ..io import data_checksum, labels_from, select_matrix
from ..pp import (
    FeatureSpace,
    detected_per_cell,
    filter_cells,
    gene_symbols,
    genes_to_remove,
    normalize,
    subset_csr,
)
from ..strategies._cold import cold_start, found_markers
from ._options import DataOptions

logger = logging.getLogger("scactive")


@dataclass
class PreparedData:
    """Cells that take part in the simulation, normalised, and why the others were left out
    (and, for a marker-based start, each type's marker genes as positions in ``adata``)."""

    adata: ad.AnnData
    labels: np.ndarray
    left_out: pd.DataFrame
    checksum: str
    marker_genes: dict[str, list[int]] | None = None

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.labels)


def prepare(
    adata: ad.AnnData, label_key: str, options: DataOptions, *, query: bool = False
) -> PreparedData:
    """Validate ``adata``, apply the cell-level QC and normalise; the input is not changed.

    ``query=True`` prepares cells to annotate rather than to split: every cell type is kept,
    however small, and one type is enough.
    """
    data = select_matrix(adata, layer=options.layer, use_raw=options.use_raw)
    labels = labels_from(data, label_key)
    checksum = data_checksum(data.X, data.obs_names, data.var_names, labels.to_numpy())
    reasons = pd.Series("", index=data.obs_names, dtype=object)
    reasons[labels.isna().to_numpy()] = "missing or unknown label"
    # genes and cells are chosen first and cut in one copy (data shares the input's arrays)
    drop, removed = genes_to_remove(
        data,
        mito=options.remove_mito,
        ribo=options.remove_ribo,
        hemoglobin=options.remove_hemoglobin,
    )
    genes = ~drop
    detected = detected_per_cell(data.X, genes)
    if options.check_min_genes:
        check_min_genes(labels, detected, int(genes.sum()), options.min_genes)
    passed = filter_cells(data, min_genes=options.min_genes, genes=genes, detected=detected)
    reasons[(~passed) & (reasons == "").to_numpy()] = f"fewer than {options.min_genes} genes"
    keep = (reasons == "").to_numpy()
    counts = labels[keep].value_counts()
    rare = [] if query else counts.index[counts < 2].tolist()
    if rare:
        warnings.warn(
            f"Cell types too small to appear in both pool and validation are left out: "
            f"{', '.join(f'{r!r} ({counts[r]} cell)' for r in rare)}.",
            UserWarning,
            stacklevel=2,
        )
        reasons[labels.isin(rare).to_numpy() & keep] = "class too small to split"
        keep = (reasons == "").to_numpy()
    kept_labels = labels[keep].to_numpy().astype(str)
    if len(np.unique(kept_labels)) < (1 if query else 2):
        raise InputError(
            f"Too few cell types remain after QC ({len(kept_labels)} cells left). Loosen "
            "--min-genes or check the label column."
        )
    left_out = pd.DataFrame(
        {
            "cell": data.obs_names[~keep],
            "reason": reasons[~keep].to_numpy(),
            "label": labels[~keep].to_numpy(),
        }
    )
    if (~keep).any():
        counts = left_out["reason"].value_counts()
        logger.warning(
            "Left out %d of %d cells (listed with the reason in the output folder): %s",
            (~keep).sum(),
            len(keep),
            "; ".join(f"{reason}: {n}" for reason, n in counts.items()),
        )
    data = ad.AnnData(
        subset_csr(data.X, keep, genes), obs=data.obs[keep].copy(), var=data.var[genes].copy()
    )
    data.uns["scactive_removed_genes"] = removed
    normalize(data)
    genes = None
    if options.markers:  # each type's markers as positions in data, by symbol or name
        genes = found_markers((gene_symbols(data), data.var_names), dict(options.markers))
    return PreparedData(data, kept_labels, left_out, checksum, genes)


def check_min_genes(labels: pd.Series, detected: np.ndarray, n_genes: int, min_genes: int):
    """Refuse the paper's ``min_genes`` filter when it removes a whole cell type or more than
    half of the labeled cells (``detected``: genes per cell, of ``n_genes``), naming a
    threshold that keeps 90% of them."""
    labeled = labels.notna().to_numpy()
    passed = detected >= min_genes
    before = labels[labeled].value_counts()
    after = labels[labeled & passed].value_counts()
    lost = [t for t in before.index if after.get(t, 0) < 2]  # fewer cannot be split
    removed = int((labeled & ~passed).sum())
    if not lost and removed <= labeled.sum() / 2:
        return
    keep_90 = int(np.quantile(detected[labeled], 0.1)) // 10 * 10
    lost_text = f" (all but at most one cell of {', '.join(map(repr, lost))})" if lost else ""
    raise InputError(
        f"The paper's quality filter (cells with at least {min_genes} detected genes) would "
        f"remove {removed} of {int(labeled.sum())} labeled cells{lost_text} here: the median "
        f"cell has {int(np.median(detected[labeled]))} detected genes of {n_genes}. "
        f"Choose the filter for this data with --min-genes (e.g. --min-genes {keep_90} keeps "
        f"90% of the cells; --min-genes 0 keeps all; --min-genes {min_genes} keeps the "
        "paper's filter anyway)."
    )


def first_two(embedding: np.ndarray) -> np.ndarray:
    """The first two columns of ``embedding``, NaN for one a PCA of one component lacks."""
    out = np.full((len(embedding), 2), np.nan, dtype=np.float32)
    out[:, : min(2, embedding.shape[1])] = embedding[:, :2]
    return out


def split_sizes(n_cells: int, options: DataOptions) -> tuple[int, int]:
    """Pool size and initial labeled count for ``n_cells`` usable cells."""
    n_val = int(np.ceil(options.val_fraction * n_cells))
    n_pool = n_cells - n_val
    return n_pool, initial_count(options.initial, n_pool)


def initial_count(initial: float, n_pool: int) -> int:
    """Cells labeled at the start: a fraction of the pool (below 1) or a count (1 and up)."""
    count = int(round(initial * n_pool)) if initial < 1 else int(initial)
    if count < 1 or count >= n_pool:
        raise InputError(
            f"initial={initial} gives {count} initially labeled cells out of a pool of {n_pool}; "
            "use a fraction below 1 (e.g. 0.2) or a count from 1 to the pool size minus one."
        )
    return count


@dataclass
class SeedData:
    """The split of one seed and the features fitted on its pool."""

    prepared: PreparedData
    seed: int
    options: DataOptions

    @cached_property
    def _split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = np.arange(self.prepared.adata.n_obs)
        try:
            pool, val = train_test_split(
                idx,
                test_size=self.options.val_fraction,
                stratify=self.prepared.labels,
                random_state=self.seed,
            )
        except ValueError as err:
            raise InputError(
                f"Cannot split {len(idx)} cells of {len(self.prepared.classes)} types into pool "
                f"and validation with val_fraction={self.options.val_fraction}: {err}"
            ) from err
        pool, val = np.sort(pool), np.sort(val)
        return pool, val, initial_count(self.options.initial, len(pool))

    @property
    def pool(self) -> np.ndarray:
        return self._split[0]

    @property
    def val(self) -> np.ndarray:
        return self._split[1]

    @cached_property
    def initial(self) -> np.ndarray:
        """Positions (into the pool) of the initially labeled cells, sorted: drawn at random,
        or picked by the cold start (``initial_strategy``); they depend on the seed and the
        options only, so every process and worker finds the same ones."""
        rng = np.random.default_rng([self.seed, 0])
        if self.options.initial_strategy == "random":
            return np.sort(rng.choice(len(self.pool), self._split[2], replace=False))
        genes = self.prepared.marker_genes if self.options.initial_strategy == "markers" else None
        strategy = cold_start(self.prepared.adata.X[self.pool] if genes else None, genes)
        return np.sort(strategy.first_cells(self.embedding, self._split[2], rng))

    @cached_property
    def features(self) -> FeatureSpace:
        o = self.options
        return FeatureSpace(
            n_top_genes=o.n_top_genes,
            min_cells=o.min_cells,
            scale=o.scale,
            n_pcs=o.n_pcs,
            random_state=self.seed,
        ).fit(self.prepared.adata[self.pool])

    def pool_matrix(self, input: str = "scaled") -> np.ndarray:
        """The pool's matrix a learner of declared ``input`` reads (built once per input)."""
        return self._matrices(input)[0]

    def val_matrix(self, input: str = "scaled") -> np.ndarray:
        """The validation cells' matrix for a learner of declared ``input``."""
        return self._matrices(input)[1]

    def _matrices(self, input: str) -> tuple[np.ndarray, np.ndarray]:
        cache = self.__dict__.setdefault("_matrix_cache", {})
        if input not in cache:
            adata = self.prepared.adata
            cache[input] = (
                self.features.matrix(adata[self.pool], input),
                self.features.matrix(adata[self.val], input),
            )
        return cache[input]

    @property
    def X_pool(self) -> np.ndarray:
        """The pool's scaled feature genes (cells x genes)."""
        return self.pool_matrix("scaled")

    @property
    def X_val(self) -> np.ndarray:
        return self.val_matrix("scaled")

    @property
    def embedding(self) -> np.ndarray:
        """The pool PCA, for clustering strategies and plots."""
        return self.pool_matrix("pca")

    @property
    def y_pool(self) -> np.ndarray:
        return self.prepared.labels[self.pool]

    @property
    def y_val(self) -> np.ndarray:
        return self.prepared.labels[self.val]

    def roles(self) -> pd.DataFrame:
        """Each cell's role in this seed (validation, pool, initial, left_out) and PCA."""
        prepared = self.prepared
        names = prepared.adata.obs_names
        role = np.full(len(names), "pool", dtype=object)
        role[self.val] = "validation"
        role[self.pool[self.initial]] = "initial"
        pcs = np.full((len(names), 2), np.nan, dtype=np.float32)
        pcs[self.pool] = first_two(self.embedding)
        pcs[self.val] = first_two(self.val_matrix("pca"))
        kept = pd.DataFrame(
            {
                "cell": names,
                "seed": self.seed,
                "role": role,
                "reason": "",
                "label": prepared.labels,
                "pc1": pcs[:, 0],
                "pc2": pcs[:, 1],
            }
        )
        if prepared.left_out.empty:
            return kept
        out = prepared.left_out.assign(seed=self.seed, role="left_out", pc1=np.nan, pc2=np.nan)
        return pd.concat([kept, out[kept.columns]], ignore_index=True)
