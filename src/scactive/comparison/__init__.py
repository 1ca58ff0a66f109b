"""Comparing annotation methods on the same cells: baselines, real tools and the learners.

>>> import scactive
>>> adata = scactive.read("pbmc68k_reduced")
>>> table = scactive.comparison(adata, label_key="bulk_labels", out="runs/compare")
"""

from ._compare import compare
from ._methods import methods, resolve_methods, run_method
from ._sets import SimulationRun, TrainingSet

__all__ = ["SimulationRun", "TrainingSet", "compare", "methods", "resolve_methods", "run_method"]
