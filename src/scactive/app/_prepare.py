"""A session's data, prepared once: normalised, feature genes, PCA, UMAP, and its identity."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError
from ..io import data_checksum
from ..pp import FeatureSpace, genes_to_remove, normalize

#: Highly variable genes used as features.
N_TOP_GENES = 2000
#: Above this many cells a new session's UMAP is computed on a sketch (see compute_umap).
UMAP_SKETCH = 25_000


@dataclass(frozen=True)
class PreparedCells:
    """Every cell of a session as the engine and the evidence read it."""

    log: ad.AnnData  # the chosen matrix, log-normalised, every gene
    features: FeatureSpace
    X: np.ndarray  # what the learners read: features.matrix(log, input)
    pca: np.ndarray
    input: str = "scaled"


def prepare_cells(data: ad.AnnData, seed: int, input: str = "scaled") -> PreparedCells:
    """Normalise (if counts), fit features on every cell without mito/ribo/hemoglobin genes,
    and build the matrix learners of declared ``input`` read (the PCA is all that the
    default learner needs: a million cells' scaled genes would take 8 GB)."""
    data.X = data.X.copy()  # select_matrix may share the input's arrays
    normalize(data)
    data.X = sp.csr_matrix(data.X, dtype=np.float32)
    drop, _ = genes_to_remove(data)  # decided on the names: no copy of the matrix
    features = FeatureSpace(n_top_genes=N_TOP_GENES, random_state=seed)
    features.fit(data[:, ~drop])
    pca = features.matrix(data, "pca")
    X = pca if input == "pca" else features.matrix(data, input)
    return PreparedCells(data, features, X, pca, input)


def input_umap(adata: ad.AnnData) -> np.ndarray | None:
    """The 2-D UMAP the input carries in ``obsm['X_umap']`` (finite, one row per cell), or
    None: computing a UMAP is the slowest step of opening a large session."""
    umap = adata.obsm.get("X_umap") if "X_umap" in adata.obsm else None
    if umap is None:
        return None
    umap = np.asarray(umap)
    if umap.ndim != 2 or umap.shape[0] != adata.n_obs or umap.shape[1] < 2:
        return None
    umap = umap[:, :2].astype(np.float32)
    return umap if np.isfinite(umap).all() else None


def compute_umap(pca: np.ndarray, seed: int, *, sketch: int | None = None) -> np.ndarray:
    """A 2-D UMAP of the cells' PCA (the first two components below 10 cells).

    Above ``sketch`` cells (default :data:`UMAP_SKETCH`) the UMAP is computed on a random
    sketch of that many cells, and every other cell is placed at the distance-weighted mean
    position of its 10 nearest sketch cells in the PCA (a k-nearest-neighbour regression):
    UMAP's own ``transform`` would take half an hour for a million cells on 2 cores, this
    takes minutes, and the map looks the same at the scale it is drawn.
    """
    n = len(pca)
    sketch = UMAP_SKETCH if sketch is None else sketch
    if n > sketch:
        from sklearn.neighbors import KNeighborsRegressor

        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(n, sketch, replace=False))
        out = np.empty((n, 2), dtype=np.float32)
        out[chosen] = _umap(pca[chosen], seed)
        rest = np.setdiff1d(np.arange(n), chosen, assume_unique=True)
        place = KNeighborsRegressor(n_neighbors=10, weights="distance", algorithm="brute")
        place.fit(pca[chosen], out[chosen])
        for start in range(0, len(rest), 50_000):  # bounded memory for the distances
            block = rest[start : start + 50_000]
            out[block] = place.predict(pca[block])
        return out
    return _umap(pca, seed)


def _umap(pca: np.ndarray, seed: int) -> np.ndarray:
    n = len(pca)
    if n < 10:  # too few cells for a neighbour graph: the first two components
        out = np.zeros((n, 2), dtype=np.float32)
        out[:, : min(2, pca.shape[1])] = pca[:, :2]
        return out
    import scanpy as sc
    from sklearn.neighbors import KNeighborsTransformer

    tmp = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(n)]), obsm={"X_pca": pca})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = min(15, n - 1)
        # an exact neighbour search: scanpy's default above 4,096 cells (pynndescent) fails
        # with scipy >= 1.17 sparse arrays (no getnnz)
        sc.pp.neighbors(
            tmp,
            n_neighbors=k,
            use_rep="X_pca",
            random_state=seed,
            transformer=KNeighborsTransformer(n_neighbors=k, mode="distance"),
        )
        sc.tl.umap(tmp, random_state=seed)
    return np.asarray(tmp.obsm["X_umap"], dtype=np.float32)


def dataset_checksum(adata: ad.AnnData) -> str:
    """SHA-256 of a CSR matrix (values and structure) and the cell and gene names."""
    return data_checksum(adata.X, adata.obs_names, adata.var_names)


def check_same_data(meta: Mapping[str, str], checksum: str, n_cells: int, path: Path) -> None:
    """Refuse data other than the data a session file was made for."""
    recorded = meta["dataset_checksum"]
    if recorded != checksum:
        raise InputError(
            f"The session file '{path}' belongs to other data: it was made for data with "
            f"checksum {recorded[:16]} ({meta.get('n_cells', '?')} cells, matrix "
            f"{meta.get('matrix', 'X')}), but the data given has checksum {checksum[:16]} "
            f"({n_cells} cells). Open the session with the data it was made for (same file, "
            "same --layer / --use-raw), or give another --session file to start a new session."
        )


def source_meta(source, read_options, *, layer, use_raw) -> dict[str, str]:
    """The session metadata recording where the data was read from, and how."""
    path = Path(source).expanduser()
    return {
        "data_path": str(path.resolve()) if path.exists() else str(source),
        "data_read_options": json.dumps(
            {**dict(read_options), "layer": layer, "use_raw": bool(use_raw)}, sort_keys=True
        ),
    }


def recorded_source(meta: Mapping[str, str]) -> tuple[str | None, dict]:
    """The data path and read options a session file recorded (None, {} if none)."""
    try:
        options = json.loads(meta.get("data_read_options") or "{}")
    except ValueError:
        options = {}
    return meta.get("data_path") or None, options if isinstance(options, dict) else {}
