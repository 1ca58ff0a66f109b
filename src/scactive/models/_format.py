"""A trained model as data only: arrays in a safetensors file, everything else in JSON.

A model file never runs code when it is read. Its arrays are stored as safetensors tensors
(a format that holds numbers and nothing else); its JSON document (the file's metadata) holds
every other value as a tree of plain nodes:

- JSON numbers, strings, booleans, ``null`` and lists stand for themselves;
- ``{"kind": "tuple", "items": [...]}``, ``{"kind": "dict", "items": {...}}`` (string keys)
  or ``{"kind": "pairs", "items": [[key, value], ...]}`` (other keys);
- ``{"kind": "array", "tensor": NAME}``: a numeric array, the tensor ``NAME``;
  ``{"kind": "strings", "dtype": ..., "shape": [...], "values": [...]}``: an array of text;
- ``{"kind": "scalar", "dtype": ..., "value": ...}``: a numpy number; ``{"kind": "float",
  "value": "nan"}``: a float JSON cannot hold;
- ``{"kind": "object", "class": NAME, "state": {...}}``: an object of one of the classes
  listed in :data:`CLASSES` (scactive's learners, the scikit-learn estimators they are built
  of), created without running its ``__init__`` and given the attributes ``state`` holds;
- ``{"kind": "network", ...}``: an MLP network, built from its shape and given its weights;
- ``{"kind": "neighbors", ...}``: a scikit-learn neighbour index, built again from its
  parameters and the points it indexes;
- ``{"kind": "feature_space"}``: the model's feature space, where a learner holds it;
- ``{"kind": "feature_map", "method": ...}``: a step of a learner's pipeline that maps the
  feature genes to the model's PCA (``embed``) or back to log values (``unscale``).

Class names are looked up in :data:`CLASSES`, a table written in this module; nothing named in
a file is imported. An object of any other class cannot be written (:class:`FormatError`), so a
learner scactive cannot rebuild from data is refused rather than pickled.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np


class FormatError(ValueError):
    """A value that the model format cannot hold, or a document it cannot read."""


#: Class name in a model file -> "module:attribute" it stands for. Only these are built.
CLASSES: dict[str, str] = {
    "scactive.FeatureSpace": "scactive.pp._features:FeatureSpace",
    "scactive.MLPClassifier": "scactive.models._classifier:MLPClassifier",
    "scactive.SelfTrainingMLP": "scactive.models._semi:SelfTrainingMLP",
    "scactive.LabelSpreading": "scactive.models._semi:LabelSpreading",
    "scactive.OneClassLearner": "scactive.models._one_class:OneClassLearner",
    "scactive.ScmapCluster": "scactive.models._scmap:ScmapCluster",
    "scactive.ScmapCell": "scactive.models._scmap:ScmapCell",
    "scactive.Chetah": "scactive.models._chetah:Chetah",
    "scactive.ChetahNode": "scactive.models._chetah:ChetahNode",
    "scactive.ChetahSplit": "scactive.models._chetah:_Split",
    "scactive.KNNTransfer": "scactive.models._transfer:KNNTransfer",
    "scactive.CellTypistLogReg": "scactive.models._transfer:CellTypistLogReg",
    "scactive.ChosenLearner": "scactive.models._choice:ChosenLearner",
    "sklearn.PCA": "sklearn.decomposition:PCA",
    "sklearn.LogisticRegression": "sklearn.linear_model:LogisticRegression",
    "sklearn.OneVsRestClassifier": "sklearn.multiclass:OneVsRestClassifier",
    "sklearn.LabelBinarizer": "sklearn.preprocessing:LabelBinarizer",
    "sklearn.LabelSpreading": "sklearn.semi_supervised:LabelSpreading",
    "sklearn.Pipeline": "sklearn.pipeline:Pipeline",
    "sklearn.FunctionTransformer": "sklearn.preprocessing:FunctionTransformer",
}

#: Classes registered at run time by :func:`register_model_class` (a plugin's learners).
_EXTRA: dict[str, type] = {}

#: The methods of a feature space a pipeline step may name (``feature_map`` nodes).
FEATURE_MAPS = ("embed", "unscale")


def register_model_class(cls: type, name: str | None = None) -> str:
    """Let objects of ``cls`` be written to and read from model files.

    ``cls`` must be rebuildable from its attributes alone (``cls.__new__`` then its
    ``__dict__``), as scikit-learn estimators are. Both the writing and the reading process
    register it (a plugin module imported by both); a file never names a class to import.
    Returns the name the file uses for it.
    """
    name = name or f"{cls.__module__}.{cls.__qualname__}"
    _EXTRA[name] = cls
    return name


def model_class(name: str) -> type:
    """The class a model file names ``name`` (:data:`CLASSES` or a registered one)."""
    if name in _EXTRA:
        return _EXTRA[name]
    if name not in CLASSES:
        raise FormatError(
            f"it names the class {name!r}, which is not one scactive builds from a model file"
        )
    module, _, attribute = CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def _class_name(cls: type) -> str | None:
    for name, found in _EXTRA.items():
        if found is cls:
            return name
    for name, target in CLASSES.items():
        module, _, attribute = target.partition(":")
        if attribute == cls.__qualname__ and _same_module(module, cls.__module__):
            return name
    return None


def _same_module(listed: str, actual: str) -> bool:
    # scikit-learn classes live in private modules below the public one they are listed by
    return actual == listed or actual.startswith(listed + ".")


# -- writing -------------------------------------------------------------------------------
class Encoder:
    """Turns a value into a JSON node, collecting its numeric arrays as named tensors.

    ``features`` is the feature space the model's pipeline steps may refer to.
    """

    def __init__(self, features: Any = None) -> None:
        self.features = features
        self.tensors: dict[str, np.ndarray] = {}
        self._seen: dict[int, str] = {}  # id of an array already stored -> its tensor
        self._keep: list[Any] = []  # the arrays of _seen, kept alive while encoding

    def encode(self, value: Any, path: str) -> Any:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int) and not isinstance(value, np.integer):
            return value
        if isinstance(value, float) and not isinstance(value, np.floating):
            return value if math.isfinite(value) else {"kind": "float", "value": repr(value)}
        if isinstance(value, np.generic):
            return self._scalar(value)
        if isinstance(value, np.ndarray):
            return self._array(value, path)
        if isinstance(value, list):
            return [self.encode(v, f"{path}.{i}") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"kind": "tuple", "items": self._items(value, path)}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                items = {k: self.encode(v, f"{path}.{k}") for k, v in value.items()}
                return {"kind": "dict", "items": items}
            pairs = [
                [self.encode(k, f"{path}.key{i}"), self.encode(v, f"{path}.{i}")]
                for i, (k, v) in enumerate(value.items())
            ]
            return {"kind": "pairs", "items": pairs}
        return self._object(value, path)

    def _items(self, values, path: str) -> list:
        return [self.encode(v, f"{path}.{i}") for i, v in enumerate(values)]

    def _scalar(self, value: np.generic) -> dict:
        if value.dtype.kind not in "biuf" and not isinstance(value, np.str_):
            raise FormatError(f"a numpy value of dtype {value.dtype}")
        item = value.item()
        if isinstance(item, float) and not math.isfinite(item):
            item = repr(item)
        return {"kind": "scalar", "dtype": value.dtype.str, "value": item}

    def _array(self, value: np.ndarray, path: str) -> dict:
        if value.dtype.kind in "biuf":
            # column-major layouts (Fortran order, or a view whose first axis has the shorter
            # stride) are kept as such, stored as their transpose's rows: matrix products of
            # the two layouts round differently
            fortran = (
                value.ndim > 1
                and not value.flags.c_contiguous
                and (value.flags.f_contiguous or abs(value.strides[0]) < abs(value.strides[-1]))
            )
            if id(value) not in self._seen:
                self.tensors[path] = np.ascontiguousarray(value.T if fortran else value)
                self._seen[id(value)] = path
                self._keep.append(value)
            node = {"kind": "array", "tensor": self._seen[id(value)]}
            return {**node, "order": "F"} if fortran else node
        if value.dtype.kind == "U" or value.dtype == object:
            values = value.ravel().tolist()
            for v in values:
                if not (v is None or isinstance(v, bool | int | float | str)):
                    raise FormatError(f"an array holding a {type(v).__name__} at {path}")
            dtype = "object" if value.dtype == object else value.dtype.str
            return {"kind": "strings", "dtype": dtype, "shape": list(value.shape), "values": values}
        raise FormatError(f"an array of dtype {value.dtype} at {path}")

    def _object(self, value: Any, path: str) -> dict:
        from sklearn.neighbors import NearestNeighbors

        if _is_network(value):
            return self._network(value, path)
        if type(value) is NearestNeighbors:
            return {
                "kind": "neighbors",
                "params": self.encode(value.get_params(deep=False), f"{path}.params"),
                "points": self.encode(np.asarray(value._fit_X), f"{path}.points"),
            }
        if value is self.features and path != "features":
            return {"kind": "feature_space"}  # the model's own, written once
        method = getattr(value, "__func__", None)
        if method is not None and self.features is not None and value.__self__ is self.features:
            if method.__name__ in FEATURE_MAPS:
                return {"kind": "feature_map", "method": method.__name__}
        name = _class_name(type(value))
        if name is None or not hasattr(value, "__dict__"):
            raise FormatError(
                f"an object of class {type(value).__module__}.{type(value).__qualname__} at {path}"
            )
        state = {k: self.encode(v, f"{path}.{k}") for k, v in vars(value).items()}
        return {"kind": "object", "class": name, "state": state}

    def _network(self, net, path: str) -> dict:
        from torch import nn

        project = net.project
        first = net.blocks[0][0]
        shape = {
            "n_features": first.in_features
            if isinstance(project, nn.Identity)
            else project.in_features,
            "n_classes": net.head.out_features,
            "hidden": [block[0].out_features for block in net.blocks],
            "dropout": float(net.blocks[0][-1].p),
            "layer_norm": any(isinstance(m, nn.LayerNorm) for m in net.blocks[0]),
            "projection": None if isinstance(project, nn.Identity) else project.out_features,
        }
        weights = {}
        for key, tensor in net.state_dict().items():
            name = f"{path}.{key}"
            self.tensors[name] = tensor.detach().cpu().numpy().copy()
            weights[key] = name
        return {"kind": "network", "shape": shape, "weights": weights}


def _is_network(value: Any) -> bool:
    from ._network import MLP

    return isinstance(value, MLP)
