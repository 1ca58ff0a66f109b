"""Learners by name, each declaring what it reads and what it can do.

A preset names a learner class with its parameters and declares, the way scikit-learn
estimators declare tags, what the rest of scactive needs to know: which input it reads
(the pool's PCA, the scaled feature genes, or their log-normalised values), whether it is
stochastic (has ``sample_proba``, so MC-dropout strategies can use it), whether it takes
``epochs``, and whether it is an annotator that may answer "unassigned". The grid, ``compare``
and the command line read these declarations; nothing else lists learner names.

This module imports neither torch nor scikit-learn: classes are named by import path and
loaded when a learner is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .._errors import InputError, unknown_name
from .._plugins import load_entry_points
from .._random import derive_seed

if TYPE_CHECKING:
    from ..pp import FeatureSpace

Input = Literal["pca", "scaled", "log"]
_INPUTS = ("pca", "scaled", "log")


@dataclass(frozen=True)
class Preset:
    """A named learner: its class, its parameters and its declared capabilities.

    Attributes
    ----------
    factory
        The learner class (or any callable taking keyword parameters), or its import path
        ``"package.module:Name"``, loaded on first use.
    params
        Keyword parameters of ``factory``.
    input
        The matrix it reads (:meth:`~scactive.pp.FeatureSpace.matrix`). ``"pca"``: the
        scaled feature genes projected on the pool's PCA; ``"scaled"``: the
        scaled feature genes; ``"log"``: their log-normalised values.
    stochastic
        Has ``sample_proba(X, n_draws, rng=)`` (MC dropout): strategies that need MC draws
        can use it.
    takes_epochs
        Has an ``epochs`` parameter (``simulate(epochs=...)`` sets it).
    annotator
        A baseline annotator: its calls may be "unassigned" by the method's own rule
        (``predict_score``); ``compare`` runs it as a baseline.
    description
        One line for help texts and reports.
    """

    factory: Callable[..., Any] | str
    params: dict = field(default_factory=dict)
    input: Input = "scaled"
    stochastic: bool = False
    takes_epochs: bool = False
    annotator: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.input not in _INPUTS:
            raise InputError(f"input={self.input!r}; expected one of {', '.join(_INPUTS)}.")

    def resolve(self) -> Callable[..., Any]:
        """The learner class (imported if named by path)."""
        if not isinstance(self.factory, str):
            return self.factory
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)


#: Entry-point group of learners declared by other packages (each loads a :class:`Preset`).
ENTRY_POINT_GROUP = "scactive.learners"

#: Registered learners: name -> :class:`Preset`.
PRESETS: dict[str, Preset] = {}
_BUILT_IN: set[str] = set()


def register_learner(
    name: str,
    factory: Callable[..., Any] | str,
    *,
    params: dict | None = None,
    input: Input = "scaled",
    stochastic: bool = False,
    takes_epochs: bool = False,
    annotator: bool = False,
    description: str = "",
    replace: bool = False,
) -> Preset:
    """Add a learner under ``name`` (see :class:`Preset` for the parameters).

    ``factory`` builds an unfitted scikit-learn style classifier: ``fit(X, y)``,
    ``predict_proba(X)`` with columns in ``classes_``, and ``random_state`` if it is random.
    A factory defined at module level also reaches the worker processes of
    ``simulate(n_jobs=...)``.
    """
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"A learner name is a non-empty string; got {name!r}.")
    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
        raise InputError(
            f"The factory of learner {name!r} is neither callable nor an import path "
            f"'module:Name': {factory!r}."
        )
    preset = Preset(
        factory,
        dict(params or {}),
        input=input,
        stochastic=stochastic,
        takes_epochs=takes_epochs,
        annotator=annotator,
        description=description,
    )
    if name in PRESETS and PRESETS[name] != preset and not replace:
        raise InputError(
            f"A learner named {name!r} is registered already; pass replace=True to replace it "
            "or choose another name."
        )
    PRESETS[name] = preset
    return preset


def _load_entry_points() -> None:
    def register(name: str, preset) -> None:
        if not isinstance(preset, Preset):
            raise TypeError(f"entry point {name!r} must load a scactive.models.Preset")
        PRESETS.setdefault(name, preset)
        _BUILT_IN.add(name)  # every process loads entry points itself

    load_entry_points(ENTRY_POINT_GROUP, register)


def registered_learners() -> dict[str, Preset]:
    """Every registered learner, entry points of other packages included."""
    _load_entry_points()
    return dict(PRESETS)


def user_learners() -> dict[str, Preset]:
    """The learners registered at run time, for worker processes to register in turn."""
    _load_entry_points()
    return {name: p for name, p in PRESETS.items() if name not in _BUILT_IN}


def get_preset(name: str) -> Preset:
    """The preset registered as ``name``; an unknown name lists the valid ones."""
    _load_entry_points()
    if not isinstance(name, str) or name not in PRESETS:
        raise unknown_name("model", str(name), PRESETS)
    return PRESETS[name]


def make_learner(
    model: str | Any,
    features: FeatureSpace | None = None,
    *,
    rng: np.random.Generator | int | None = None,
    given: Input = "scaled",
    **overrides,
) -> Any:
    """A new, unfitted learner.

    Parameters
    ----------
    model
        A preset name (see ``PRESETS``) or any scikit-learn classifier with ``predict_proba``
        (it is cloned, and reads what it is given).
    features
        The fitted feature space; a preset given the scaled genes while it reads the pool's
        PCA or the log values takes its projection or scaling from here.
    rng
        Seeds the learner (its ``random_state``).
    given
        The matrix the learner will be given (:meth:`~scactive.pp.FeatureSpace.matrix`):
        ``"scaled"``, the feature genes every preset can be built on, or the preset's own
        input (:func:`learner_input`), which it reads as it is. The pool's PCA of a million
        cells takes 200 MB; their scaled genes, 8 GB.
    overrides
        Parameters replacing the preset's, e.g. ``epochs=50``.
    """
    seed = derive_seed(rng)
    if not isinstance(model, str):
        from sklearn.base import clone

        learner = clone(model)
        if "random_state" in learner.get_params():
            learner.set_params(random_state=seed)
        return learner.set_params(**overrides) if overrides else learner
    preset = get_preset(model)
    learner = preset.resolve()(**{**preset.params, **overrides})
    if "random_state" in learner.get_params():
        learner.set_params(random_state=seed)
    if "features" in learner.get_params():  # a learner that builds others on the features
        learner.set_params(features=features)
    if given == preset.input:
        return learner
    if given != "scaled":
        raise ValueError(
            f"model {model!r} reads the {preset.input!r} matrix; it can be built on that or on "
            f"the 'scaled' genes, not on {given!r}"
        )
    if features is None:
        raise ValueError(f"model {model!r} needs the fitted feature space (its PCA and scaling)")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    if preset.input == "log":
        return make_pipeline(FunctionTransformer(features.unscale), learner)
    if "projection" in learner.get_params():  # the MLP takes a fixed input projection
        return _fold_pca(learner, features)
    return make_pipeline(FunctionTransformer(features.embed), learner)


def learner_input(model: str | Any) -> Input:
    """The matrix ``model`` reads: its preset's ``input``; ``"scaled"`` for an estimator."""
    return get_preset(model).input if isinstance(model, str) else "scaled"


def shared_input(*models: str | Any) -> Input:
    """One matrix every one of ``models`` can be built on: their input when they all read the
    same, else the scaled genes."""
    inputs = {learner_input(m) for m in models}
    return inputs.pop() if len(inputs) == 1 else "scaled"


def _fold_pca(learner, features: FeatureSpace):
    pca = features.pca_
    if features.scale:  # inputs are scaled already: project them
        return learner.set_params(projection=pca.components_.T.copy(), projection_offset=pca.mean_)
    # unscaled inputs: fold the scaling into the projection (clipping aside)
    return learner.set_params(
        projection=(pca.components_ / features.std_).T.copy(),
        projection_offset=features.mean_ + features.std_ * pca.mean_,
    )


def accepts_epochs(model: str | Any) -> bool:
    """Whether the preset ``model`` declares an ``epochs`` parameter (the MLP presets)."""
    return isinstance(model, str) and model in PRESETS and PRESETS[model].takes_epochs


def _shipped(name: str, factory: str, **declared) -> None:
    register_learner(name, factory, **declared)
    _BUILT_IN.add(name)


_MLP = "scactive.models._classifier:MLPClassifier"
_LOGREG = "sklearn.linear_model:LogisticRegression"
# 300 steps per fit, of at most 128 cells: 20 epochs up to 1,920 labeled cells, then fewer, so
# a round stays under a second (whole-pool macro-F1 unchanged on pbmc3k and Kang: docs/learners.md)
_OURS = dict(
    optimizer="adam",
    weight_decay=1e-4,
    min_steps=300,
    max_steps=300,
    max_batch_size=128,
    class_weight="balanced",
)
# The paper's settings: mini-batch SGD, 20 epochs, no floor on steps, no regularisation.
_PAPER = dict(optimizer="sgd", weight_decay=0.0, min_steps=0, class_weight=None, epochs=20)
_SHAPES = {
    "mlp2": dict(hidden=(256, 256)),
    "mlp3": dict(hidden=(256, 256, 64)),
    "mlp3-ln": dict(hidden=(256, 256, 64), layer_norm=True),
}
for _name, _shape in _SHAPES.items():
    _shipped(
        _name,
        _MLP,
        params={**_shape, **_OURS},
        input="pca",
        stochastic=True,
        takes_epochs=True,
        description="MLP on the pool's PCA of the HVGs; AdamW, 300 steps, balanced classes",
    )
    _shipped(
        f"{_name}-paper",
        _MLP,
        params={**_shape, **_PAPER},
        stochastic=True,
        takes_epochs=True,
        description="the paper's settings: HVG input, SGD, 20 epochs",
    )
# Semi-supervised: they also learn from the pool's unlabeled cells (docs/learners.md).
_shipped(
    "mlp2-self",
    "scactive.models._semi:SelfTrainingMLP",
    params={**_SHAPES["mlp2"], **_OURS},
    input="pca",
    stochastic=True,
    takes_epochs=True,
    description="mlp2, trained again with its confident pseudo-labels of unlabeled cells",
)
_shipped(
    "spread",
    "scactive.models._semi:LabelSpreading",
    input="pca",
    description="label spreading over the kNN graph of labeled and unlabeled pool cells",
)
_shipped(
    "logreg",
    _LOGREG,
    params=dict(max_iter=1000),
    description="scikit-learn logistic regression on the scaled HVGs",
)
_shipped(
    "logreg-log",
    _LOGREG,
    params=dict(max_iter=1000),
    input="log",
    description="logistic regression on the log-normalised HVGs (not scaled)",
)
_shipped(
    "auto",
    "scactive.models._choice:ChosenLearner",
    stochastic=True,
    description="chosen by 3-fold cross-validation on the labeled cells: mlp2 or logreg-log",
)
_shipped(
    "logreg-pca",
    _LOGREG,
    params=dict(max_iter=1000),
    input="pca",
    description="logistic regression on the pool's PCA",
)
# The baseline annotators give class probabilities too, so they serve as learners; they read
# log-normalised values and may answer "unassigned" by their own rule.
for _name, _path, _description in (
    (
        "scmap-cluster",
        "scactive.models._scmap:ScmapCluster",
        "scmap-cluster: median centroids; 2 of cosine/Pearson/Spearman agree, >= 0.7",
    ),
    (
        "scmap-cell",
        "scactive.models._scmap:ScmapCell",
        "scmap-cell: cosine 10-NN; first 3 neighbours agree, similarity > 0.5",
    ),
    (
        "chetah",
        "scactive.models._chetah:Chetah",
        "CHETAH: walk down a tree of reference types while the confidence is >= 0.1",
    ),
    (
        "knn-transfer",
        "scactive.models._transfer:KNNTransfer",
        "Seurat-style label transfer: weighted vote of 30 neighbours in 30 PCs",
    ),
    (
        "logreg-ovr",
        "scactive.models._transfer:CellTypistLogReg",
        "CellTypist-style one-vs-rest logistic regression on the scaled genes",
    ),
):
    _shipped(_name, _path, input="log", annotator=True, description=_description)

#: The default learner.
DEFAULT_MODEL = "mlp2"
