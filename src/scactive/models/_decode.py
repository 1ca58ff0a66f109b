"""Reading a model file's JSON document back into objects (see :mod:`._format`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._format import FEATURE_MAPS, FormatError, model_class


class Decoder:
    """Builds values from JSON nodes and the file's tensors (see the module docstring)."""

    def __init__(self, tensors: Callable[[str], np.ndarray], features: Any = None) -> None:
        self.tensor = tensors
        self.features = features
        self._arrays: dict[tuple[str, str], np.ndarray] = {}

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or not isinstance(node.get("kind"), str):
            raise FormatError(f"a node that is neither a value nor a tagged object: {node!r:.80}")
        kind = node["kind"]
        reader = getattr(self, f"_{kind}", None) if kind.isidentifier() else None
        if reader is None or kind.startswith("_"):
            raise FormatError(f"a node of unknown kind {kind!r}")
        return reader(node)

    def _tuple(self, node: dict) -> tuple:
        return tuple(self.decode(v) for v in _list(node, "items"))

    def _dict(self, node: dict) -> dict:
        items = node.get("items")
        if not isinstance(items, dict):
            raise FormatError("a dict node without its items")
        return {k: self.decode(v) for k, v in items.items()}

    def _pairs(self, node: dict) -> dict:
        out = {}
        for pair in _list(node, "items"):
            if not isinstance(pair, list) or len(pair) != 2:
                raise FormatError("a pair that is not [key, value]")
            key = self.decode(pair[0])
            try:
                out[key] = self.decode(pair[1])
            except TypeError as err:  # an unhashable key
                raise FormatError(f"a dict key of type {type(key).__name__}") from err
        return out

    def _float(self, node: dict) -> float:
        value = node.get("value")
        if value not in ("nan", "inf", "-inf"):
            raise FormatError(f"a float node holding {value!r}")
        return float(value)

    def _scalar(self, node: dict) -> np.generic:
        dtype = _dtype(node.get("dtype"))
        value = node.get("value")
        if isinstance(value, str) and dtype.kind == "f":
            value = self._float({"value": value})
        if not isinstance(value, bool | int | float | str):
            raise FormatError(f"a scalar node holding {value!r:.40}")
        return np.array(value, dtype=dtype)[()]

    def _array(self, node: dict) -> np.ndarray:
        name = node.get("tensor")
        if not isinstance(name, str):
            raise FormatError("an array node without its tensor's name")
        order = node.get("order", "C")
        if order not in ("C", "F"):
            raise FormatError(f"an array of order {order!r}")
        if (name, order) not in self._arrays:
            array = self.tensor(name)
            self._arrays[name, order] = array.T if order == "F" else array
        return self._arrays[name, order]

    def _strings(self, node: dict) -> np.ndarray:
        values = _list(node, "values")
        shape = _list(node, "shape")
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise FormatError(f"an array shape {shape!r}")
        if math.prod(shape) != len(values):
            raise FormatError(f"{len(values)} values for an array of shape {tuple(shape)}")
        if not all(v is None or isinstance(v, bool | int | float | str) for v in values):
            raise FormatError("a text array holding other values")
        raw = node.get("dtype")
        dtype = np.dtype(object) if raw == "object" else _dtype(raw)
        if dtype.kind not in "UO":
            raise FormatError(f"a text array of dtype {raw!r}")
        out = np.empty(len(values), dtype=dtype)
        out[:] = values
        return out.reshape(shape)

    def _object(self, node: dict) -> Any:
        name = node.get("class")
        if not isinstance(name, str):
            raise FormatError("an object node without its class")
        cls = model_class(name)
        state = node.get("state")
        if not isinstance(state, dict):
            raise FormatError(f"an object of class {name!r} without its state")
        obj = cls.__new__(cls)
        for key, value in state.items():
            if not key.isidentifier() or key.startswith("__"):
                raise FormatError(f"an attribute named {key!r}")
            obj.__dict__[key] = self.decode(value)
        return obj

    def _network(self, node: dict) -> Any:
        import torch

        from ._network import MLP

        shape = node.get("shape")
        weights = node.get("weights")
        if not isinstance(shape, dict) or not isinstance(weights, dict):
            raise FormatError("a network without its shape or weights")
        ints = [shape.get("n_features"), shape.get("n_classes"), *(shape.get("hidden") or [])]
        projection = shape.get("projection")
        if projection is not None:
            ints.append(projection)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in ints):
            raise FormatError(f"a network of shape {shape!r:.120}")
        dropout, layer_norm = shape.get("dropout"), shape.get("layer_norm")
        if not isinstance(dropout, float | int) or not isinstance(layer_norm, bool):
            raise FormatError(f"a network of shape {shape!r:.120}")
        n_features = shape["n_features"]
        placeholder = None if projection is None else np.zeros((n_features, projection))
        net = MLP(
            n_features,
            shape["n_classes"],
            tuple(shape["hidden"]),
            float(dropout),
            layer_norm,
            placeholder,
        )
        state = {}
        for key, name in weights.items():
            if not isinstance(name, str):
                raise FormatError("a network weight without its tensor's name")
            state[key] = torch.from_numpy(np.array(self.tensor(name)))
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise FormatError(f"network weights that do not fit its shape ({err})") from err
        return net.eval()

    def _neighbors(self, node: dict) -> Any:
        from sklearn.neighbors import NearestNeighbors

        params = self.decode(node.get("params"))
        points = self.decode(node.get("points"))
        if not isinstance(params, dict) or not isinstance(points, np.ndarray):
            raise FormatError("a neighbour index without its parameters or points")
        allowed = NearestNeighbors().get_params()
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise FormatError(f"a neighbour index with the unknown parameters {unknown}")
        return NearestNeighbors(**params).fit(points)

    def _feature_space(self, node: dict) -> Any:
        if self.features is None:
            raise FormatError("a reference to the feature space outside the learner")
        return self.features

    def _feature_map(self, node: dict) -> Any:
        method = node.get("method")
        if method not in FEATURE_MAPS or self.features is None:
            raise FormatError(f"a pipeline step {method!r} that maps no feature space")
        return getattr(self.features, method)


def _list(node: dict, key: str) -> list:
    value = node.get(key)
    if not isinstance(value, list):
        raise FormatError(f"a {node.get('kind')} node without its {key}")
    return value


def _dtype(raw: Any) -> np.dtype:
    if not isinstance(raw, str):
        raise FormatError(f"a dtype {raw!r}")
    try:
        dtype = np.dtype(raw)
    except TypeError as err:
        raise FormatError(f"a dtype {raw!r}") from err
    if dtype.kind not in "biufU":
        raise FormatError(f"a dtype {raw!r}")
    return dtype
