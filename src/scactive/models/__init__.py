"""Learners: the MLP network, its scikit-learn classifier, presets and persistence."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    attributes={
        "._baselines": (
            "BASELINE_DESCRIPTIONS",
            "BASELINES",
            "UNASSIGNED",
            "BaselineAnnotator",
            "make_baseline",
        ),
        "._chetah": ("Chetah", "ChetahNode"),
        "._classifier": ("MLPClassifier",),
        "._network": ("MLP",),
        "._format": ("register_model_class",),
        "._persist": ("TrainedModel", "load_model", "save_model"),
        "._registry": (
            "DEFAULT_MODEL",
            "PRESETS",
            "Preset",
            "accepts_epochs",
            "get_preset",
            "learner_input",
            "make_learner",
            "register_learner",
            "shared_input",
        ),
        "._scmap": ("ScmapCell", "ScmapCluster"),
        "._semi": ("LabelSpreading", "SelfTrainingMLP"),
        "._transfer": ("CellTypistLogReg", "KNNTransfer"),
    },
)
