"""Bundled and generated datasets."""

from __future__ import annotations

import re
from collections.abc import Callable

import anndata as ad

__all__ = [
    "BUNDLED",
    "is_named",
    "load_named",
    "paper_scale",
    "pbmc68k_reduced",
    "synthetic",
]

#: ``synthetic:CELLS`` or ``synthetic:CELLSxGENES``: counts drawn by :func:`synthetic` (seed 0).
SYNTHETIC_NAME = re.compile(r"synthetic:([1-9][0-9]*)(?:x([1-9][0-9]*))?")


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


def synthetic(n_cells: int, n_genes: int | None = None, *, rng=0) -> ad.AnnData:
    """Realistic counts of ``n_cells`` PBMCs from a negative-binomial model fitted on pbmc3k.

    Per cell type and gene, the model holds the mean profile and a dispersion; library sizes
    are log-normal per type. Labels are in ``obs['cell_type']``. See
    :class:`scactive._synthetic.CountModel` to fit the generator on other labeled counts.
    """
    from ._synthetic import load_bundled

    return load_bundled().sample(n_cells, n_genes=n_genes, rng=rng)


def paper_scale(rng=0) -> ad.AnnData:
    """Synthetic counts at the paper's scale: 31,021 cells, 33,694 genes, 9 PBMC types."""
    from ._synthetic import paper_scale as _paper_scale

    return _paper_scale(31_021, 33_694, rng=rng)


BUNDLED["synthetic_paper_scale"] = paper_scale


def is_named(name: object) -> bool:
    """Whether ``name`` names a dataset :func:`load_named` makes: a bundled one, or
    ``synthetic:CELLS[xGENES]`` (e.g. ``synthetic:1000000x20000``)."""
    text = str(name)
    return text in BUNDLED or SYNTHETIC_NAME.fullmatch(text) is not None


def load_named(name: str) -> ad.AnnData:
    """The dataset ``name`` names (see :func:`is_named`): the same data on every call."""
    match = SYNTHETIC_NAME.fullmatch(str(name))
    if match is None:
        return BUNDLED[str(name)]()
    cells, genes = match.groups()
    return synthetic(int(cells), int(genes) if genes else None, rng=0)
