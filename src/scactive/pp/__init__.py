"""Preprocessing: the paper's quality control and feature selection (section 2.1)."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    attributes={
        "._features": ("FeatureSpace",),
        "._qc": ("filter_cells", "gene_symbols", "genes_to_remove", "normalize", "remove_genes"),
        "._sparse": ("detected_per_cell", "detected_per_gene", "subset_csr"),
    },
)
