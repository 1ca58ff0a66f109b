"""Preprocessing: the paper's quality control and feature selection (section 2.1)."""

from ._features import FeatureSpace
from ._qc import filter_cells, gene_symbols, normalize, remove_genes

__all__ = ["FeatureSpace", "filter_cells", "gene_symbols", "normalize", "remove_genes"]
