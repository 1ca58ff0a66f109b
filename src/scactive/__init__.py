"""scactive: active learning for cell type annotation of single-cell RNA-seq data.

>>> import scactive
>>> adata = scactive.read("pbmc68k_reduced")
>>> results = scactive.simulate(adata, label_key="bulk_labels", out="runs/demo")
>>> table = scactive.compare(adata, label_key="bulk_labels", out="runs/compare")
"""

from . import comparison, datasets, metrics, models, pp, strategies
from ._errors import InputError
from ._meta import package_version
from ._simulate import simulate
from .comparison import compare
from .io import read

__version__ = package_version()

__all__ = [
    "InputError",
    "compare",
    "comparison",
    "datasets",
    "metrics",
    "models",
    "pp",
    "read",
    "simulate",
    "strategies",
]
