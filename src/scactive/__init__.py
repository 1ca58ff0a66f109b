"""scactive: active learning for cell type annotation of single-cell RNA-seq data.

>>> import scactive
>>> adata = scactive.read("pbmc68k_reduced")
>>> results = scactive.simulate(adata, label_key="bulk_labels", out="runs/demo")
>>> table = scactive.compare(adata, label_key="bulk_labels", out="runs/compare")
"""

from importlib.metadata import PackageNotFoundError, version

from . import comparison, datasets, metrics, models, pp, strategies
from ._errors import InputError
from ._simulate import simulate
from .comparison import compare
from .io import read

try:
    __version__ = version("scactive")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

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
