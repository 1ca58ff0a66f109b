"""Learners: the MLP network, its scikit-learn classifier, presets and persistence."""

from ._baselines import (
    BASELINE_DESCRIPTIONS,
    BASELINES,
    UNASSIGNED,
    BaselineAnnotator,
    make_baseline,
)
from ._chetah import Chetah, ChetahNode
from ._classifier import MLPClassifier
from ._network import MLP
from ._persist import TrainedModel, load_model, save_model
from ._registry import DEFAULT_MODEL, PRESETS, accepts_epochs, make_learner
from ._scmap import ScmapCell, ScmapCluster
from ._transfer import CellTypistLogReg, KNNTransfer

__all__ = [
    "BASELINES",
    "BASELINE_DESCRIPTIONS",
    "BaselineAnnotator",
    "CellTypistLogReg",
    "Chetah",
    "ChetahNode",
    "DEFAULT_MODEL",
    "KNNTransfer",
    "MLP",
    "MLPClassifier",
    "PRESETS",
    "ScmapCell",
    "ScmapCluster",
    "TrainedModel",
    "UNASSIGNED",
    "accepts_epochs",
    "load_model",
    "make_baseline",
    "make_learner",
    "save_model",
]
