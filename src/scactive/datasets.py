"""Bundled and generated datasets."""

from __future__ import annotations

from collections.abc import Callable

import anndata as ad


def pbmc68k_reduced() -> ad.AnnData:
    """700 PBMCs from 10x's 68k dataset, shipped with scanpy (no download).

    ``X`` holds the log-normalised values of 765 genes (scanpy's ``.raw``; the scaled matrix it
    ships as ``X`` is kept in ``layers['scaled']``); labels are in ``obs['bulk_labels']``.
    """
    import scanpy as sc

    shipped = sc.datasets.pbmc68k_reduced()
    adata = shipped.raw.to_adata()
    adata.obs = shipped.obs.copy()
    adata.uns["scactive_default_label_key"] = "bulk_labels"
    adata.uns["scactive_genes_subset"] = True
    return adata


#: Datasets that :func:`scactive.io.read` accepts by name.
BUNDLED: dict[str, Callable[[], ad.AnnData]] = {"pbmc68k_reduced": pbmc68k_reduced}
