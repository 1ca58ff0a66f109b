"""Learners by name, built for a fitted feature space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from .._errors import unknown_name
from ..pp import FeatureSpace
from ._baselines import BASELINE_DESCRIPTIONS, BASELINES
from ._classifier import MLPClassifier, torch_seed


@dataclass(frozen=True)
class Preset:
    """A named learner: its class, its parameters, and whether it reads the pool's PCA."""

    factory: Callable[..., Any]
    params: dict = field(default_factory=dict)
    pca_input: bool = False
    description: str = ""
    log_input: bool = False  # reads log-normalised values (the baselines), not scaled ones


_OURS = dict(
    optimizer="adam", weight_decay=1e-4, min_steps=300, max_steps=600, class_weight="balanced"
)
# The paper's settings: mini-batch SGD, 20 epochs, no floor on steps, no regularisation.
_PAPER = dict(optimizer="sgd", weight_decay=0.0, min_steps=0, class_weight=None, epochs=20)
_SHAPES = {
    "mlp2": dict(hidden=(256, 256)),
    "mlp3": dict(hidden=(256, 256, 64)),
    "mlp3-ln": dict(hidden=(256, 256, 64), layer_norm=True),
}

PRESETS: dict[str, Preset] = {}
for _name, _shape in _SHAPES.items():
    PRESETS[_name] = Preset(
        MLPClassifier,
        {**_shape, **_OURS},
        pca_input=True,
        description="MLP on the pool's PCA of the HVGs; AdamW, >= 300 steps, balanced classes",
    )
    PRESETS[f"{_name}-paper"] = Preset(
        MLPClassifier,
        {**_shape, **_PAPER},
        description="the paper's settings: HVG input, SGD, 20 epochs",
    )
PRESETS["logreg"] = Preset(
    LogisticRegression,
    dict(max_iter=1000),
    description="scikit-learn logistic regression on the scaled HVGs",
)
PRESETS["logreg-pca"] = Preset(
    LogisticRegression,
    dict(max_iter=1000),
    pca_input=True,
    description="logistic regression on the pool's PCA",
)

# The baselines that give class probabilities serve as learners too; they read log values.
for _name in ("scmap-cluster", "scmap-cell", "chetah", "knn-transfer"):
    PRESETS[_name] = Preset(
        BASELINES[_name], log_input=True, description=BASELINE_DESCRIPTIONS[_name]
    )

#: The default learner.
DEFAULT_MODEL = "mlp2"


def make_learner(
    model: str | Any,
    features: FeatureSpace | None = None,
    *,
    rng: np.random.Generator | int | None = None,
    **overrides,
) -> Any:
    """A new, unfitted learner.

    Parameters
    ----------
    model
        A preset name (see ``PRESETS``) or any scikit-learn classifier with ``predict_proba``
        (it is cloned).
    features
        The fitted feature space; presets that read the pool's PCA take it from here.
    rng
        Seeds the learner (its ``random_state``).
    overrides
        Parameters replacing the preset's, e.g. ``epochs=50``.
    """
    seed = torch_seed(rng)
    if not isinstance(model, str):
        learner = clone(model)
        if "random_state" in learner.get_params():
            learner.set_params(random_state=seed)
        return learner.set_params(**overrides) if overrides else learner
    if model not in PRESETS:
        raise unknown_name("model", model, PRESETS)
    preset = PRESETS[model]
    params = {**preset.params, **overrides}
    learner = preset.factory(**params)
    if "random_state" in learner.get_params():
        learner.set_params(random_state=seed)
    if preset.log_input:
        if features is None:
            raise ValueError(f"model {model!r} needs the fitted feature space (its scaling)")
        return make_pipeline(FunctionTransformer(features.unscale), learner)
    if preset.pca_input:
        if features is None:
            raise ValueError(f"model {model!r} needs the fitted feature space (its PCA)")
        learner = _with_pca(learner, features)
    return learner


def _with_pca(learner, features: FeatureSpace):
    pca = features.pca_
    if isinstance(learner, MLPClassifier):
        if features.scale:  # inputs are scaled already: project them
            return learner.set_params(
                projection=pca.components_.T.copy(), projection_offset=pca.mean_
            )
        # unscaled inputs: fold the scaling into the projection (clipping aside)
        return learner.set_params(
            projection=(pca.components_ / features.std_).T.copy(),
            projection_offset=features.mean_ + features.std_ * pca.mean_,
        )
    return make_pipeline(FunctionTransformer(features.embed), learner)


def accepts_epochs(model: str | Any) -> bool:
    """Whether ``epochs`` is a parameter of the learner (the MLP presets)."""
    return isinstance(model, str) and model in PRESETS and PRESETS[model].factory is MLPClassifier
