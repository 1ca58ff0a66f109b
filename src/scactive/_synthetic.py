"""Realistic synthetic count data at any size, from a negative-binomial model fitted per cell type.

A :class:`CountModel` holds, for every cell type, a mean expression profile (the expected fraction
of a cell's library that each gene takes), a log-normal library-size distribution, and one
dispersion per gene. :meth:`CountModel.sample` draws cells from it at any number of cells and
genes, so the paper's scale (31,021 cells x 33,694 genes, 9 types) can be benchmarked without a
download: :func:`paper_scale` does that from the model bundled with the package (fitted on the
2,638 labeled PBMCs of 10x's pbmc3k with ``tools/fit_synthetic.py``).

Counts follow NB(mean=mu, var=mu + phi * mu**2) drawn as a gamma-Poisson mixture. Most entries
of a single-cell matrix have a tiny mean, so genes that are rarely detected are sampled sparsely:
candidate cells are picked by thinning and each candidate's count comes from one uniform number
through the inverse CDF, which gives exactly the same distribution as drawing every entry.
"""

from __future__ import annotations

from importlib import resources

import anndata as ad

# The model and its constants, importable from here as before.
from ._count_model import FLOOR_COUNTS as FLOOR_COUNTS
from ._count_model import FORMAT_VERSION as FORMAT_VERSION
from ._count_model import PRIOR_CELLS as PRIOR_CELLS
from ._count_model import CountModel
from ._nb_fit import PHI_RANGE as PHI_RANGE

__all__ = ["CountModel", "load_bundled", "paper_scale"]

BUNDLED_FILE = "pbmc3k_nb.npz"


def load_bundled() -> CountModel:
    """The model bundled with scactive: 9 PBMC types fitted on 10x pbmc3k (Seurat labels)."""
    with resources.as_file(resources.files("scactive") / "data" / BUNDLED_FILE) as path:
        if not path.exists():
            raise FileNotFoundError(
                f"Bundled model {path} is missing; regenerate it with tools/fit_synthetic.py."
            )
        return CountModel.load(path)


def paper_scale(n_cells: int = 31021, n_genes: int = 33694, rng=0) -> ad.AnnData:
    """A synthetic PBMC dataset at the paper's scale (31,021 cells x 33,694 genes, 9 types).

    Samples the bundled model (:func:`load_bundled`); see :meth:`CountModel.sample`.
    """
    return load_bundled().sample(n_cells, n_genes=n_genes, rng=rng)
