"""scactive: active learning for cell type annotation of single-cell RNA-seq data.

>>> import scactive
>>> adata = scactive.read("pbmc68k_reduced")
>>> results = scactive.simulate(adata, label_key="bulk_labels", out="runs/demo")
>>> table = scactive.compare(adata, label_key="bulk_labels", out="runs/compare")

The names below are imported on first use, so ``import scactive`` (and the command line) does
not load torch, scanpy or scikit-learn until a function needs them.
"""

from ._lazy import lazy_exports
from ._meta import package_version

__version__ = package_version()

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    submodules=("comparison", "datasets", "metrics", "models", "pp", "strategies"),
    attributes={
        "._errors": ("InputError",),
        "._predict": ("predict",),
        "._simulate": ("simulate",),
        "._threads": ("set_threads",),
        ".comparison": ("compare",),
        ".io": ("read",),
    },
)
