"""scactive: active learning for cell type annotation of single-cell RNA-seq data.

>>> import scactive
>>> adata = scactive.read("pbmc68k_reduced")
>>> results = scactive.simulate(adata, label_key="bulk_labels", out="runs/demo")
"""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, metrics, models, pp, strategies
from ._errors import InputError
from ._simulate import simulate
from .io import read

try:
    __version__ = version("scactive")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["InputError", "datasets", "metrics", "models", "pp", "read", "simulate", "strategies"]
