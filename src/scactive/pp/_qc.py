"""The paper's quality control (section 2.1), on AnnData, via scanpy."""

from __future__ import annotations

import logging
import re
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from .._errors import InputError
from ..io import looks_like_counts
from ._sparse import detected_per_cell, scale_rows_to

logger = logging.getLogger("scactive")

# Human (upper case) and mouse (title case) gene-name patterns.
MITO = re.compile(r"^(MT|mt)-")
RIBO = re.compile(r"^(RP[SL]\d|Rp[sl]\d|MRP[SL]\d|Mrp[sl]\d)")
HEMOGLOBIN = re.compile(r"^(HB[ABDEGMQZ]\d*|Hb[ab]-.*|Hbq1[ab]?|Hb[bq]-?y?|Hbz)$")

_SYMBOL_COLUMNS = (
    "symbol",
    "gene_symbols",
    "gene_symbol",
    "gene_name",
    "gene_names",
    "feature_name",
)


def gene_symbols(adata: ad.AnnData) -> pd.Index:
    """Gene symbols: ``var_names``, or a symbol column when the names are Ensembl IDs."""
    names = adata.var_names
    if names.str.match(r"^ENS[A-Z]*G\d").mean() > 0.5:
        for column in _SYMBOL_COLUMNS:
            if column in adata.var:
                return pd.Index(adata.var[column].astype(str))
    return names


def remove_genes(
    adata: ad.AnnData,
    *,
    mito: bool = True,
    ribo: bool = True,
    hemoglobin: bool = True,
    copy: bool = False,
) -> ad.AnnData | None:
    """Drop mitochondrial, ribosomal and hemoglobin genes (human and mouse names).

    Writes ``adata.uns['scactive_removed_genes']`` (counts per group). With ``copy=True`` the
    input is left as it is and the filtered copy is returned.
    """
    adata = adata.copy() if copy else adata
    drop, removed = genes_to_remove(adata, mito=mito, ribo=ribo, hemoglobin=hemoglobin)
    adata._inplace_subset_var(~drop)
    adata.uns["scactive_removed_genes"] = removed
    return adata if copy else None


def genes_to_remove(
    adata: ad.AnnData, *, mito: bool = True, ribo: bool = True, hemoglobin: bool = True
) -> tuple[np.ndarray, dict[str, int]]:
    """The mask of the genes :func:`remove_genes` drops and their counts per group; decided
    on the names only, the matrix is not read."""
    symbols = gene_symbols(adata)
    drop = np.zeros(adata.n_vars, dtype=bool)
    removed = {}
    for name, enabled, pattern in (
        ("mitochondrial", mito, MITO),
        ("ribosomal", ribo, RIBO),
        ("hemoglobin", hemoglobin, HEMOGLOBIN),
    ):
        if enabled:
            hits = np.fromiter((bool(pattern.match(s)) for s in symbols), bool, len(symbols))
            removed[name] = int(hits.sum())
            drop |= hits
    if drop.all():
        raise InputError("Removing mitochondrial, ribosomal and hemoglobin genes left no genes.")
    logger.info("removed genes: %s", removed)
    return drop, removed


def filter_cells(
    adata: ad.AnnData,
    *,
    min_genes: int = 500,
    warn_fraction: float = 0.2,
    genes: np.ndarray | None = None,
    detected: np.ndarray | None = None,
) -> np.ndarray:
    """Mask of cells with at least ``min_genes`` detected genes (among the ``genes`` mask, if
    given; ``detected``: those counts, made already by :func:`detected_per_cell`); warns
    when many fail.

    Raises when no cell passes, with the number of genes the median cell has.
    """
    detected = detected_per_cell(adata.X, genes) if detected is None else detected
    n_genes = adata.n_vars if genes is None else int(genes.sum())
    keep = detected >= min_genes
    n_removed = int((~keep).sum())
    if not keep.any():
        raise InputError(
            f"No cell has at least min_genes={min_genes} detected genes (the median cell has "
            f"{int(np.median(detected))} of {n_genes}). Lower it with --min-genes, e.g. "
            "--min-genes 0 for data already cut to a gene subset."
        )
    if n_removed > warn_fraction * adata.n_obs:
        warnings.warn(
            f"min_genes={min_genes} removes {n_removed} of {adata.n_obs} cells "
            f"({n_removed / adata.n_obs:.0%}); the median cell has {int(np.median(detected))} "
            "detected genes. Lower --min-genes if that is too many.",
            UserWarning,
            stacklevel=2,
        )
    return keep


def normalize(adata: ad.AnnData, *, target_sum: float = 1e4, counts: bool | None = None) -> bool:
    """Normalise each cell to ``target_sum`` and log1p, in place, when ``X`` holds counts.

    Returns whether it normalised. ``counts=None`` tells counts (whole numbers) from
    log-normalised values by looking at the values.
    """
    counts = looks_like_counts(adata.X) if counts is None else counts
    if counts:
        if isinstance(adata.X, sp.csr_matrix) and adata.X.dtype == np.float32:
            scale_rows_to(adata.X, target_sum)  # in place: scanpy's copies the matrix
        else:
            sc.pp.normalize_total(adata, target_sum=target_sum)
        sc.pp.log1p(adata)
        logger.info("input holds counts: normalised to %g per cell and log1p", target_sum)
    else:
        if adata.X.max() > 50:
            warnings.warn(
                f"The values are not whole numbers but reach {adata.X.max():.3g}; log-normalised "
                "data rarely exceed 15. If these are normalised but not logged, log1p them first.",
                UserWarning,
                stacklevel=2,
            )
        logger.info("input holds non-integer values: taken as log-normalised, left as is")
    return counts
