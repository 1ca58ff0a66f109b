"""Comparing annotation methods on the same cells: baselines, real tools and the learners.

>>> import scactive
>>> adata = scactive.read("pbmc68k_reduced")
>>> table = scactive.comparison(adata, label_key="bulk_labels", out="runs/compare")
"""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    attributes={
        "._compare": ("compare",),
        "._methods": ("methods", "resolve_methods", "run_method"),
        "._sets": ("SimulationRun", "TrainingSet"),
    },
)
