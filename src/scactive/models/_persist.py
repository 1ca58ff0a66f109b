"""Saving and loading a trained learner with its genes, feature space and classes."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import joblib
import numpy as np
import pandas as pd

from .._errors import InputError
from .._files import atomic_write
from .._meta import package_version
from ..pp import FeatureSpace


@dataclass
class TrainedModel:
    """A fitted learner, the feature space its inputs come from, and which of its matrices
    the learner reads (``input``, see :meth:`~scactive.pp.FeatureSpace.matrix`)."""

    learner: Any
    features: FeatureSpace
    version: str = ""
    input: str = "scaled"

    @property
    def genes(self) -> np.ndarray:
        return self.features.genes_

    @property
    def classes(self) -> np.ndarray:
        return np.asarray(self.learner.classes_)

    def predict_proba(self, adata: ad.AnnData) -> pd.DataFrame:
        """Class probabilities for log-normalised cells (cells x classes)."""
        proba = self.learner.predict_proba(self.features.matrix(adata, self.input))
        return pd.DataFrame(proba, index=adata.obs_names, columns=self.classes)

    def predict(self, adata: ad.AnnData) -> pd.Series:
        """The most probable class of each cell."""
        return self.predict_proba(adata).idxmax(axis=1)


def save_model(model: TrainedModel, path: str | Path) -> Path:
    """Write ``model`` to ``path`` (through a temporary file, so a crash leaves no half file)."""
    content = {
        "learner": model.learner,
        "features": model.features,
        "version": package_version(),
        "input": model.input,
    }
    return atomic_write(path, lambda tmp: joblib.dump(content, tmp))


def load_model(path: str | Path) -> TrainedModel:
    """Read a model written by :func:`save_model`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"Model file not found: '{path}'.")
    try:
        payload = joblib.load(path)
        return TrainedModel(
            payload["learner"],
            payload["features"],
            payload.get("version", ""),
            payload.get("input", "scaled"),  # files written before the field: scaled genes
        )
    # a file of another kind fails to unpickle; a pickle of another program's objects fails to
    # import them or lacks the keys
    except (
        OSError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        ImportError,
        pickle.UnpicklingError,
    ) as err:
        raise InputError(
            f"'{path}' is not a scactive model file (reading it failed: "
            f"{type(err).__name__}: {err}). A session's model is written by "
            "`scactive export --model model.joblib`, or in Python by scactive.models.save_model."
        ) from err
