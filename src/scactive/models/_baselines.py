"""Baseline cell-type annotators by name.

The estimator they share, :class:`BaselineAnnotator`, and its helpers live in ``_annotator``;
each method in its own module (``_scmap``, ``_chetah``, ``_transfer``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import unknown_name
from .._random import derive_seed
from ._annotator import UNASSIGNED, BaselineAnnotator
from ._registry import PRESETS

__all__ = [
    "BASELINES",
    "BASELINE_DESCRIPTIONS",
    "UNASSIGNED",
    "BaselineAnnotator",
    "make_baseline",
]

#: Baseline annotators by name: the learners of :data:`~scactive.models.PRESETS` that declare
#: ``annotator=True`` (their calls may be "unassigned").
BASELINES: dict[str, type] = {name: p.resolve() for name, p in PRESETS.items() if p.annotator}

#: One line per baseline.
BASELINE_DESCRIPTIONS: dict[str, str] = {name: PRESETS[name].description for name in BASELINES}


def make_baseline(
    name: str, *, rng: np.random.Generator | int | None = None, **params: Any
) -> BaselineAnnotator:
    """A new, unfitted baseline.

    Parameters
    ----------
    name
        A learner registered with ``annotator=True`` (:data:`BASELINES`).
    rng
        Seeds ``random_state`` for the baselines that have one (unless ``params`` sets it);
        ``None`` keeps the class default.
    params
        Parameters of the baseline's class, e.g. ``threshold=0.5``.
    """
    annotators = [n for n, p in PRESETS.items() if p.annotator]
    if name not in annotators:
        raise unknown_name("method", name, annotators)
    model = PRESETS[name].resolve()(**params)
    if rng is not None and "random_state" in model.get_params() and "random_state" not in params:
        model.set_params(random_state=derive_seed(rng))
    return model
