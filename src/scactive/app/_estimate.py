"""How far the accuracy estimate may be from the truth, and when a call becomes "unknown".

The app's estimate is the model's expected macro-F1 on the unlabeled cells
(:func:`~scactive.loop._stopping.expected_macro_f1`). Simulated sessions
(``benchmarks/calibration.py``: ``mlp2`` on pbmc3k and the Kang reference, three strategies,
5 seeds, every round to 200 labels) measured truth minus estimate; its 10% and 90% quantiles per
labels-per-type bin are kept in ``scactive/data/estimate_band.json`` and shown as the
estimate's range. The same runs chose the default threshold below which a session's call is
"unknown" (:data:`UNKNOWN_BELOW`, by the rule written in the benchmark: a call is kept when it is
more likely right than wrong).
"""

from __future__ import annotations

import functools
import json
from importlib import resources

#: The band's file in the package data.
BAND_FILE = "estimate_band.json"


@functools.cache
def estimate_band() -> dict:
    """The measured band: ``labels_per_type_from`` (bin left edges), ``low``, ``high``
    (quantiles of truth minus estimate), ``rounds``, ``model``, ``unknown_below``, ``about``."""
    with resources.files("scactive").joinpath("data", BAND_FILE).open() as f:
        return json.load(f)


def default_unknown_below() -> float:
    """Below this confidence a session's call is "unknown" (measured: see the module
    docstring)."""
    return float(estimate_band()["unknown_below"])


def estimate_range(estimated_f1: float | None, n_labeled: int | None, n_types: int | None) -> dict:
    """The range simulated sessions found around an estimate at as many labels per type.

    Returns ``low`` and ``high`` (the estimate plus the band's quantiles, clipped to 0..1;
    None without an estimate), ``labels_per_type`` and ``band_model`` (the learner the band
    was measured with).
    """
    band = estimate_band()
    out = {"low": None, "high": None, "labels_per_type": None, "band_model": band["model"]}
    if estimated_f1 is None or not n_labeled or not n_types:
        return out
    per_type = n_labeled / n_types
    edges = band["labels_per_type_from"]
    i = max(k for k, edge in enumerate(edges) if per_type >= edge or k == 0)
    out["low"] = min(1.0, max(0.0, estimated_f1 + band["low"][i]))
    out["high"] = min(1.0, max(0.0, estimated_f1 + band["high"][i]))
    out["labels_per_type"] = per_type
    return out
