"""Saving and loading a trained learner with its genes, feature space and classes.

A model file is a safetensors file: the arrays (network weights, PCA loadings, gene means and
scales, regression coefficients...) are its tensors, and a JSON document in its metadata holds
everything else (genes, classes, the learner's class and parameters, the normalisation, the
versions): :mod:`scactive.models._format` says how. Reading one runs no code from it: the
objects are built by scactive from that data. Files of the earlier pickle format (joblib) are
refused unless ``trust_pickle=True``, since reading a pickle runs whatever code it holds.
"""

from __future__ import annotations

import json
import pickle
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import InputError
from .._files import atomic_write
from .._meta import package_version, versions
from ..pp import FeatureSpace
from ._decode import Decoder
from ._format import Encoder, FormatError

#: Written in every model file; a file of another format version is refused.
FORMAT, FORMAT_VERSION = "scactive-model", 1
#: The metadata key of the JSON document.
DOCUMENT_KEY = "scactive"
#: How the model's training cells were normalised (``scactive.pp.normalize``).
NORMALISATION = {"target_sum": 1e4, "log1p": True, "counts_detected": "whole numbers"}
_STACK = ("numpy", "scikit-learn", "torch", "safetensors")
# first bytes of a pickle (protocol 2 to 5) and of joblib's compressed files (zlib at each
# level, gzip, bz2, xz, lzma, lz4)
_PICKLE_STARTS = (
    *(bytes([0x80, protocol]) for protocol in range(2, 6)),
    *(bytes([0x78, level]) for level in (0x01, 0x5E, 0x9C, 0xDA)),
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ",
    b"\x5d\x00\x00",
    b"\x04\x22M\x18",
)


@dataclass
class TrainedModel:
    """A fitted learner, the feature space its inputs come from, and which of its matrices
    the learner reads (``input``, see :meth:`~scactive.pp.FeatureSpace.matrix`); ``preset``
    names the learner's preset when it was built from one."""

    learner: Any
    features: FeatureSpace
    version: str = ""
    input: str = "scaled"
    preset: str = ""

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
    """Write ``model`` to ``path`` as data only (safetensors arrays and a JSON document).

    The file goes through a temporary file, so a crash leaves no half file. A learner of a
    class scactive cannot rebuild from data (see :data:`scactive.models._format.CLASSES`) is
    refused with an :class:`InputError`; nothing is written.
    """
    from safetensors.numpy import save

    encoder = Encoder(model.features)
    try:
        features = encoder.encode(model.features, "features")
        learner = encoder.encode(model.learner, "learner")
    except FormatError as err:
        raise InputError(
            f"This model cannot be written to a model file: it holds {err}. Model files hold "
            "data only (arrays and JSON, never code), so scactive writes only the learners it "
            "can rebuild from their data: its presets, and classes registered with "
            "scactive.models.register_model_class."
        ) from None
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scactive_version": package_version(),
        "versions": versions(_STACK),
        "input": model.input,
        "preset": model.preset,
        "normalisation": NORMALISATION,
        "genes": [str(g) for g in model.features.genes_],
        "classes": [_plain(c) for c in np.asarray(model.learner.classes_).tolist()],
        "features": features,
        "learner": learner,
    }
    content = save(encoder.tensors, metadata={DOCUMENT_KEY: json.dumps(document)})
    return atomic_write(path, content)


def _plain(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) or value is None else str(value)


def load_model(path: str | Path, *, trust_pickle: bool = False) -> TrainedModel:
    """Read a model written by :func:`save_model`.

    Nothing in the file is run: the learner and its feature space are built from the file's
    data, then checked on a probe cell. A file of the earlier pickle format (joblib) is
    refused unless ``trust_pickle=True``: reading a pickle runs whatever code it holds, so
    pass it only for a file from someone you trust.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"Model file not found: '{path}'.")
    if not path.is_file():
        raise InputError(f"'{path}' is not a file; give the path of a model file.")
    kind = _sniff(path)
    if kind == "pickle":
        if not trust_pickle:
            raise InputError(
                f"'{path}' is a model file in the earlier pickle format (joblib). Reading a "
                "pickle runs whatever code the file holds, so scactive does not open one by "
                "default. If the file comes from you or from someone you trust, read it with "
                "`scactive predict --trust-pickle` (in Python: load_model(path, "
                "trust_pickle=True)), which runs that code, and write it again in the safe "
                "format with scactive.models.save_model(model, 'model.safetensors')."
            )
        return _load_pickle(path)
    try:
        if kind == "truncated":
            raise FormatError("it is cut short (its header announces more than the file holds)")
        if kind != "safetensors":
            raise FormatError("it is not a safetensors file")
        model = _load_safetensors(path)
        _probe(model)
    except FormatError as err:
        reason = " ".join(str(err).split())  # one paragraph
        raise InputError(
            f"'{path}' is not a scactive model file, or a damaged one: {reason}. A model file is "
            "written by `scactive export --model model.safetensors`, or in Python by "
            "scactive.models.save_model; if this one was, it was cut short or edited on the "
            "way: write it again."
        ) from None
    return model


def _sniff(path: Path) -> str:
    """``"safetensors"``, ``"pickle"`` (or joblib) or ``"other"``, from the first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) == 9:
        (size,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and size > 0:
            return "safetensors" if size <= path.stat().st_size - 8 else "truncated"
    return "pickle" if head.startswith(_PICKLE_STARTS) else "other"


def _load_safetensors(path: Path) -> TrainedModel:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            metadata = fh.metadata() or {}
            names = set(fh.keys())
            tensors = {name: fh.get_tensor(name) for name in names}
    except (SafetensorError, OSError, ValueError) as err:
        raise FormatError(f"its arrays cannot be read ({err})") from None
    raw = metadata.get(DOCUMENT_KEY)
    if raw is None:
        raise FormatError("it holds no scactive document (a safetensors file of another program)")
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as err:
        raise FormatError(f"its JSON document is damaged ({err})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise FormatError("its document is not a scactive model's")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise FormatError(
            f"it is of model format version {version!r}, and this scactive reads version "
            f"{FORMAT_VERSION}"
            + ("; it was written by a newer scactive: upgrade scactive to read it" if newer else "")
        )
    _warn_versions(document.get("versions"))

    def tensor(name: str) -> np.ndarray:
        if name not in tensors:
            raise FormatError(f"it lacks the array {name!r}")
        return tensors[name]

    try:
        return _build(document, tensor)
    except RecursionError:
        raise FormatError("its document nests too deep") from None
    except FormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as err:
        # a constructor or a refit refused the values the document gave it, or a value of
        # the wrong type stands where another is needed
        raise FormatError(
            f"its values do not build a model ({type(err).__name__}: {err})"
        ) from None


def _build(document: dict, tensor: Callable[[str], np.ndarray]) -> TrainedModel:
    """The model a document describes, its summary lists checked against its objects."""
    features = Decoder(tensor).decode(document.get("features"))
    if not isinstance(features, FeatureSpace):
        raise FormatError("its feature space is not one")
    learner = Decoder(tensor, features).decode(document.get("learner"))
    if not hasattr(learner, "predict_proba") or not hasattr(learner, "classes_"):
        raise FormatError("its learner has no predict_proba or no classes")
    input_ = document.get("input")
    if input_ not in ("scaled", "log", "pca"):
        raise FormatError(f"its input {input_!r} is not one of scaled, log, pca")
    model = TrainedModel(
        learner,
        features,
        str(document.get("scactive_version", "")),
        input_,
        str(document.get("preset") or ""),
    )
    genes, classes = document.get("genes"), document.get("classes")
    if genes != [str(g) for g in np.asarray(features.genes_).tolist()]:
        raise FormatError("its gene list differs from its feature space's")
    if classes != [_plain(c) for c in model.classes.tolist()]:
        raise FormatError("its class list differs from its learner's")
    return model


def _warn_versions(written: Any) -> None:
    if not isinstance(written, dict):
        return
    import sklearn

    here, theirs = sklearn.__version__, written.get("scikit-learn")
    if isinstance(theirs, str) and theirs.split(".")[:2] != here.split(".")[:2]:
        warnings.warn(
            f"The model file was written with scikit-learn {theirs}, and this is {here}; its "
            "learner was checked on a probe cell, but predictions may differ slightly.",
            UserWarning,
            stacklevel=3,
        )


def _probe(model: TrainedModel) -> None:
    """Predict one cell, so that arrays of the wrong shape are found at load, not later."""
    cell = np.zeros((1, len(model.features.genes_)), np.float32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proba = np.asarray(
                model.learner.predict_proba(model.features.from_log(cell, model.input))
            )
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, RuntimeError) as err:
        raise FormatError(
            f"its arrays do not fit together (a probe cell failed: {type(err).__name__}: "
            f"{str(err)[:200]})"
        ) from None
    if proba.shape != (1, len(model.classes)):
        raise FormatError(
            f"its learner gives {proba.shape[1]} probabilities per cell for "
            f"{len(model.classes)} classes"
        )


def _load_pickle(path: Path) -> TrainedModel:
    """The earlier format: a joblib pickle of the learner and the feature space."""
    import joblib

    try:
        payload = joblib.load(path)
        return TrainedModel(
            payload["learner"],
            payload["features"],
            payload.get("version", ""),
            payload.get("input", "scaled"),  # files written before the field: scaled genes
        )
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
            f"'{path}' is not a scactive model file (reading it as a pickle failed: "
            f"{type(err).__name__}: {err})."
        ) from err
