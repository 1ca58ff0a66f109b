"""Learners: the MLP network, its scikit-learn classifier, presets and persistence."""

from ._classifier import MLPClassifier
from ._network import MLP
from ._persist import TrainedModel, load_model, save_model
from ._registry import DEFAULT_MODEL, PRESETS, accepts_epochs, make_learner

__all__ = [
    "DEFAULT_MODEL",
    "MLP",
    "MLPClassifier",
    "PRESETS",
    "TrainedModel",
    "accepts_epochs",
    "load_model",
    "make_learner",
    "save_model",
]
