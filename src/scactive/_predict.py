"""``scactive.predict``: carry a trained model to new cells, as CellTypist's ``annotate`` does.

A model (:class:`~scactive.models.TrainedModel`, written by the app's export or
:func:`~scactive.models.save_model`) knows its genes, its feature space and its classes. New
data are read through the same steps as the model's training cells: the matrix is chosen and
checked (:func:`scactive.io.select_matrix`), counts are normalised to 10,000 per cell and
log1p'd (:func:`scactive.pp.normalize`, the function training uses; log-normalised values are
used as they are), and the model's genes are looked up by name. Genes the data lack are set to
0; too few shared genes are refused.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._errors import InputError
from ._predict_options import (
    MIN_SHARED_GENES,
    UNKNOWN,
    UNKNOWN_BELOW,
    call_labels,
    check_predict_options,
)
from ._random import derive_seed
from .io import looks_like_counts, select_matrix
from .models import TrainedModel, load_model
from .pp import FeatureSpace, genes_to_remove, normalize

logger = logging.getLogger("scactive")

#: The per-cell columns :func:`predict` writes into ``obs``.
PREDICTION, CONFIDENCE, CALL = "scactive_predicted", "scactive_confidence", "scactive_call"
MAJORITY, CLUSTERS = "scactive_majority_voting", "scactive_over_clustering"
#: Where the probabilities (``obsm``) and the run's settings and class names (``uns``) go.
PROBA_KEY, UNS_KEY = "scactive_proba", "scactive_predict"
#: CellTypist's over-clustering resolution by cell count: 5 below 5,000 cells, 10 below
#: 20,000 ... 30 from 200,000 on.
RESOLUTIONS = ((5_000, 5.0), (20_000, 10.0), (40_000, 15.0), (100_000, 20.0), (200_000, 25.0))
LARGEST_RESOLUTION = 30.0


def predict(
    adata: ad.AnnData,
    model: TrainedModel | str | Path,
    *,
    unknown_below: float = UNKNOWN_BELOW,
    majority_vote: bool = False,
    over_clustering: str | Sequence | None = None,
    resolution: float | None = None,
    min_shared_genes: float = MIN_SHARED_GENES,
    layer: str | None = None,
    use_raw: bool = False,
    inplace: bool = False,
    rng: np.random.Generator | int | None = 0,
) -> ad.AnnData | pd.DataFrame:
    """Predict the cell type of every cell of ``adata`` with a trained model.

    Parameters
    ----------
    adata
        The cells to annotate: counts (normalised here to 10,000 per cell and log1p'd, as the
        model's training cells were) or log-normalised values (used as they are), in ``X``,
        a ``layer`` or ``.raw``. Genes are matched by name: ``var_names``, or the ``var``
        column (such as ``symbol`` or ``gene_ids``) that holds more of the model's genes; a
        name held twice is read from its first column.
    model
        A :class:`~scactive.models.TrainedModel`, or the path of one saved by
        :func:`~scactive.models.save_model` (``scactive export --model``). A model file holds
        data only: reading it runs no code (files of the earlier pickle format are refused;
        read one with ``load_model(path, trust_pickle=True)`` if you trust it).
    unknown_below
        Cells whose most probable type has a probability below this are labeled
        ``"unknown"`` in ``scactive_call`` (``0``: never). The default, 0.5, is
        CellTypist's ``p_thres``: the call is kept when the model gives it better than even
        odds.
    majority_vote
        Also give each cluster of an over-clustering of the cells the most common of its
        cells' labels (``scactive_call``; ties go to the first in sorted order), as
        CellTypist's majority voting does.
    over_clustering
        The clusters majority voting uses: an ``obs`` column or one value per cell. Default:
        Leiden clusters of the cells' kNN graph (15 neighbours) on a PCA of their own 2,000
        highly variable genes (mitochondrial, ribosomal and hemoglobin genes left out), at
        CellTypist's resolution for the number of cells (5 below 5,000 cells, 10 below 20,000,
        15 below 40,000, 20 below 100,000, 25 below 200,000, else 30). Needs igraph.
    resolution
        The Leiden resolution of the over-clustering, in place of CellTypist's.
    min_shared_genes
        Refuse data that hold fewer than this fraction of the model's genes (the others are
        set to 0, which the model never saw in training). A warning names how many are
        missing whenever any is.
    layer, use_raw
        Read this layer, or ``.raw``, instead of ``X``.
    inplace
        Write into ``adata`` and return the per-cell table; else (the default) return a copy
        of ``adata`` holding the results.
    rng
        Seeds the over-clustering's PCA and Leiden.

    Returns
    -------
    A copy of ``adata`` (or, with ``inplace=True``, the per-cell table, indexed by cell) with:

    - ``obs['scactive_predicted']``: the most probable type;
    - ``obs['scactive_confidence']``: its probability;
    - ``obs['scactive_call']``: the prediction, or ``"unknown"`` below ``unknown_below``;
    - with ``majority_vote``: ``obs['scactive_majority_voting']``, and the clusters in
      ``obs['scactive_over_clustering']`` when they were computed here;
    - ``obsm['scactive_proba']``: the probability of every type (cells x types);
    - ``uns['scactive_predict']``: the types in the column order of ``scactive_proba``
      (``classes``), the genes shared and missing, whether the input held counts, the
      settings.

    Columns of these names that ``adata`` held are replaced.
    """
    check_predict_options(
        unknown_below=unknown_below,
        min_shared_genes=min_shared_genes,
        majority_vote=majority_vote,
        over_clustering=over_clustering,
    )
    clusters = given_clusters(adata, over_clustering) if over_clustering is not None else None
    model = _trained_model(model)
    log, counts = log_normalised(adata, layer=layer, use_raw=use_raw)
    genes, matched = model_genes(log, model.genes, min_shared_genes=min_shared_genes)
    proba = model.predict_proba(genes)
    classes = proba.columns.to_numpy(dtype=object)
    values = proba.to_numpy(dtype=np.float32)
    table = calls_table(adata.obs_names, classes, values, unknown_below)
    if majority_vote:
        if clusters is None:
            clusters = over_cluster(log, resolution=resolution, rng=rng)
            table[CLUSTERS] = pd.Categorical(clusters)
        table[MAJORITY] = pd.Categorical(majority_labels(table[CALL].to_numpy(), clusters))
    info = {
        "classes": [str(c) for c in classes],
        "unknown_below": float(unknown_below),
        "unknown_label": UNKNOWN,
        "n_model_genes": int(len(model.genes)),
        "n_shared_genes": int(matched.sum()),
        "missing_genes": [str(g) for g in np.asarray(model.genes)[~matched]],
        "input_counts": bool(counts),
        "majority_vote": bool(majority_vote),
        "model_input": model.input,
        "model_version": model.version or "",
    }
    out = adata if inplace else adata.copy()
    _write_results(out, table, values, info)
    return table if inplace else out


def _trained_model(model: TrainedModel | str | Path) -> TrainedModel:
    """``model`` itself, or the model file it names, read."""
    if isinstance(model, TrainedModel):
        return model
    if not isinstance(model, str | Path):
        raise InputError(
            f"model={type(model).__name__}; expected a TrainedModel or the path of a "
            "model file (scactive export --model, scactive.models.save_model)."
        )
    return load_model(model)


def _write_results(out: ad.AnnData, table: pd.DataFrame, proba: np.ndarray, info: dict) -> None:
    """The per-cell columns into ``out.obs``, the probabilities and ``info`` beside them."""
    for column in table.columns:
        out.obs[column] = table[column].to_numpy() if column == CONFIDENCE else table[column].array
    out.obsm[PROBA_KEY] = proba
    out.uns[UNS_KEY] = info
    logger.info(
        "predicted %d cells with %d of %d model genes; %d unknown (confidence < %g)",
        len(table),
        info["n_shared_genes"],
        info["n_model_genes"],
        int((table[CALL] == UNKNOWN).sum()),
        info["unknown_below"],
    )


def calls_table(
    cells: pd.Index, classes: np.ndarray, proba: np.ndarray, unknown_below: float
) -> pd.DataFrame:
    """Per cell: the most probable of ``classes`` (``proba``: cells x classes), its
    probability, and the call (``unknown`` below ``unknown_below``)."""
    best = proba.argmax(axis=1)
    prediction = classes[best]
    confidence = proba[np.arange(len(proba)), best]
    table = pd.DataFrame(index=cells.copy())
    table[PREDICTION] = pd.Categorical(prediction)
    table[CONFIDENCE] = confidence
    table[CALL] = pd.Categorical(call_labels(prediction, confidence, unknown_below))
    return table


def given_clusters(adata: ad.AnnData, over_clustering: str | Sequence) -> np.ndarray:
    """The clusters the user gave: an ``obs`` column or one value per cell, as strings."""
    if isinstance(over_clustering, str):
        if over_clustering not in adata.obs:
            raise InputError(
                f"over_clustering={over_clustering!r} is not a column of adata.obs; available: "
                f"{list(adata.obs.columns)}. Name the column holding the clusters, or leave it "
                "out to over-cluster the cells here."
            )
        values, what = adata.obs[over_clustering], f"column {over_clustering!r}"
    else:
        values, what = pd.Series(np.asarray(over_clustering, dtype=object)), "over_clustering"
        if len(values) != adata.n_obs:
            raise InputError(
                f"over_clustering holds {len(values)} values for {adata.n_obs} cells; give one "
                "cluster per cell, or an obs column name."
            )
    missing = int(values.isna().sum())
    if missing:
        raise InputError(
            f"The clusters in {what} are missing for {missing} cells; give every cell a "
            "cluster, or leave over_clustering out to over-cluster the cells here."
        )
    return values.astype(str).to_numpy(dtype=object)


def log_normalised(
    adata: ad.AnnData, *, layer: str | None = None, use_raw: bool = False
) -> tuple[ad.AnnData, bool]:
    """The chosen matrix as the model's training cells were: checked, CSR float32, counts
    normalised and log1p'd. Returns it (all genes; ``adata`` is left as it is) and whether
    it held counts."""
    data = select_matrix(adata, layer=layer, use_raw=use_raw)
    counts = looks_like_counts(data.X)
    if counts:
        data.X = data.X.copy()  # select_matrix may share the input's arrays
    normalize(data, counts=counts)
    return data, counts


def gene_columns(adata: ad.AnnData, genes: Sequence[str]) -> tuple[np.ndarray, str]:
    """Each of ``genes``' column in ``adata`` (-1: missing), looked up in ``var_names`` or
    the string ``var`` column holding the most of them; and where they were found."""
    genes = pd.Index(np.asarray(genes, dtype=str))
    best, where = None, "var_names"
    names = {"var_names": adata.var_names}
    for column in adata.var.columns:
        dtype = adata.var[column].dtype
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
            names[f"var[{column!r}]"] = pd.Index(adata.var[column].astype(str))
    for name, index in names.items():
        first = ~index.duplicated()
        found = pd.Index(index[first]).get_indexer(genes)
        columns = np.where(found >= 0, np.flatnonzero(first)[found], -1)
        if best is None or (columns >= 0).sum() > (best >= 0).sum():
            best, where = columns, name
    return best, where


def model_genes(
    log: ad.AnnData, genes: Sequence[str], *, min_shared_genes: float = MIN_SHARED_GENES
) -> tuple[ad.AnnData, np.ndarray]:
    """The cells of ``log`` over the model's ``genes``, in their order, missing genes 0.

    Warns naming how many are missing; refuses fewer than ``min_shared_genes`` (a fraction)
    shared. Returns the cells and the mask of the genes found.
    """
    columns, where = gene_columns(log, genes)
    found = columns >= 0
    n_shared, n = int(found.sum()), len(columns)
    if n_shared < min_shared_genes * n:
        sample = ", ".join(map(str, list(genes[:3])))
        raise InputError(
            f"The data hold {n_shared:,} of the model's {n:,} genes ({n_shared / n:.0%}); "
            f"predicting needs at least {min_shared_genes:.0%} (min_shared_genes="
            f"{min_shared_genes:g}, --min-shared-genes). The model's genes look like "
            f"{sample}; the data's var_names like {', '.join(log.var_names[:3])}. Name the "
            "data's genes as the model's (gene symbols or Ensembl IDs, in var_names or a var "
            "column), train the model on the genes these data have, or lower "
            "min_shared_genes to predict with the missing genes set to 0."
        )
    if n_shared < n:
        warnings.warn(
            f"{n - n_shared:,} of {n:,} model genes are missing from the data; they are set "
            f"to 0 (e.g. {', '.join(map(str, np.asarray(genes)[~found][:3]))}).",
            UserWarning,
            stacklevel=3,
        )
    logger.info("model genes: %d of %d found in %s", n_shared, n, where)
    pick = sp.csr_matrix(
        (np.ones(n_shared, dtype=np.float32), (columns[found], np.flatnonzero(found))),
        shape=(log.n_vars, n),
    )
    X = sp.csr_matrix(log.X @ pick, dtype=np.float32)
    var = pd.DataFrame(index=pd.Index(np.asarray(genes, dtype=str)))
    return ad.AnnData(X, obs=pd.DataFrame(index=log.obs_names), var=var), found


def over_cluster(
    log: ad.AnnData,
    *,
    resolution: float | None = None,
    rng: np.random.Generator | int | None = 0,
) -> np.ndarray:
    """Leiden clusters of the log-normalised cells, as strings: their kNN graph on a PCA of
    their own highly variable genes, at ``resolution`` (default: CellTypist's by cell count)."""
    from .strategies._cold import leiden_clusters

    seed = derive_seed(rng)
    if resolution is None:
        resolution = next((r for n, r in RESOLUTIONS if log.n_obs < n), LARGEST_RESOLUTION)
    if log.n_obs < 3:
        return np.zeros(log.n_obs, dtype=np.int64).astype(str).astype(object)
    drop, _ = genes_to_remove(log)
    features = FeatureSpace(random_state=seed).fit(log[:, ~drop])
    try:
        clusters = leiden_clusters(features.matrix(log, "pca"), None, seed, resolution=resolution)
    except ImportError as err:
        raise InputError(
            f"Majority voting over-clusters the cells with Leiden, which needs igraph ({err}). "
            "Install it (pip install igraph), or give the clusters with over_clustering= "
            "(--over-clustering COLUMN)."
        ) from None
    logger.info("over-clustering: %d clusters at resolution %g", clusters.max() + 1, resolution)
    return clusters.astype(str).astype(object)


def majority_labels(labels: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Each cell's label replaced by the most common label of its cluster (ties: the first
    label in sorted order)."""
    table = pd.crosstab(pd.Series(clusters, name="cluster"), pd.Series(labels, name="label"))
    winner = table.idxmax(axis=1)
    return winner.loc[np.asarray(clusters)].to_numpy(dtype=object)
