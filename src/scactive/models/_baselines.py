"""Baseline cell-type annotators by name.

The estimator they share, :class:`BaselineAnnotator`, and its helpers live in ``_annotator``;
each method in its own module (``_scmap``, ``_chetah``, ``_transfer``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import unknown_name
from ._annotator import UNASSIGNED, BaselineAnnotator
from ._chetah import Chetah
from ._scmap import ScmapCell, ScmapCluster
from ._transfer import CellTypistLogReg, KNNTransfer

__all__ = [
    "BASELINES",
    "BASELINE_DESCRIPTIONS",
    "UNASSIGNED",
    "BaselineAnnotator",
    "make_baseline",
]

#: Baseline annotators by name.
BASELINES: dict[str, type] = {
    "scmap-cluster": ScmapCluster,
    "scmap-cell": ScmapCell,
    "chetah": Chetah,
    "knn-transfer": KNNTransfer,
    "logreg": CellTypistLogReg,
}

#: One line per baseline.
BASELINE_DESCRIPTIONS: dict[str, str] = {
    "scmap-cluster": "scmap-cluster: median centroids; 2 of cosine/Pearson/Spearman agree, >= 0.7",
    "scmap-cell": "scmap-cell: cosine 10-NN; first 3 neighbours agree, similarity > 0.5",
    "chetah": "CHETAH: walk down a tree of reference types while the confidence is >= 0.1",
    "knn-transfer": "Seurat-style label transfer: weighted vote of 30 neighbours in 30 PCs",
    "logreg": "CellTypist-style one-vs-rest logistic regression on the scaled genes",
}


def make_baseline(
    name: str, *, rng: np.random.Generator | int | None = None, **params: Any
) -> BaselineAnnotator:
    """A new, unfitted baseline.

    Parameters
    ----------
    name
        One of :data:`BASELINES`.
    rng
        Seeds ``random_state`` for the baselines that have one (unless ``params`` sets it);
        ``None`` keeps the class default.
    params
        Parameters of the baseline's class, e.g. ``threshold=0.5``.
    """
    if name not in BASELINES:
        raise unknown_name("method", name, BASELINES)
    model = BASELINES[name](**params)
    if rng is not None and "random_state" in model.get_params() and "random_state" not in params:
        model.set_params(random_state=int(np.random.default_rng(rng).integers(2**31 - 1)))
    return model
