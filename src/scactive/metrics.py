"""Validation metrics per round and learning-curve summaries."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, recall_score

if TYPE_CHECKING:
    from ._hierarchy import Hierarchy

__all__ = [
    "curve_area",
    "evaluate",
    "evaluate_labels",
    "expand_proba",
    "labels_to_reach",
    "level_columns",
    "level_f1",
]

#: The column prefix of macro-F1 at a level of a cell-type hierarchy (``macro_f1_level1``...).
LEVEL_F1 = "macro_f1_level"


def expand_proba(proba: np.ndarray, classes: np.ndarray, all_classes: np.ndarray) -> np.ndarray:
    """Probabilities over ``all_classes`` (classes the learner has not seen get 0)."""
    out = np.zeros((len(proba), len(all_classes)), dtype=np.float64)
    position = {c: i for i, c in enumerate(all_classes)}
    out[:, [position[c] for c in classes]] = proba
    return out


def evaluate(
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: np.ndarray,
    *,
    all_classes: np.ndarray,
    hierarchy: Hierarchy | None = None,
) -> dict[str, float]:
    """Accuracy, macro and weighted F1, cross-entropy loss and per-class recall.

    ``proba`` has columns ``classes`` (the learner's); ``all_classes`` are every class of the
    task, so that a class the learner has not seen yet counts as always missed. The loss clips
    probabilities at 1e-7 so an unseen class gives a large but finite loss. Every metric
    scores the plain argmax over ``all_classes``; with a ``hierarchy`` the macro-F1 of each of
    its levels is added (:func:`level_f1`), from calls decoded top-down.
    """
    full = expand_proba(proba, np.asarray(classes), np.asarray(all_classes))
    y_pred = np.asarray(all_classes)[full.argmax(axis=1)]
    present = np.unique(y_true)
    eps = 1e-7
    clipped = np.clip(full, eps, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    out = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0),
        "weighted_f1": f1_score(
            y_true, y_pred, labels=present, average="weighted", zero_division=0
        ),
        "loss": log_loss(y_true, clipped, labels=all_classes),
    }
    if hierarchy is not None:
        out.update(level_f1(y_true, full, all_classes, hierarchy=hierarchy))
    recalls = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    out.update({f"recall:{c}": float(r) for c, r in zip(present, recalls, strict=True)})
    return {k: float(v) for k, v in out.items()}


def level_f1(
    y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, *, hierarchy: Hierarchy
) -> dict[str, float]:
    """Macro-F1 at each level of a cell-type hierarchy: ``macro_f1_level1`` (the top level)
    to ``macro_f1_levelN`` (N: the depth of the deepest of ``classes``).

    At each level the truth is each label's ancestor there (:meth:`Hierarchy.at_level`; a
    label shallower than the level is itself) and the prediction is the call of
    :meth:`Hierarchy.decode` at that level (top-down: the best top-level type by the
    probability summed under it, then its best child, and so on). The averages run over the
    types present in the truth at that level. At the finest level the decoded call may differ
    from the plain argmax that ``macro_f1`` scores: the argmax class need not lie under the
    best parent.
    """
    classes = [str(c) for c in classes]
    n_levels = hierarchy.n_levels_for(classes)
    truth = hierarchy.levels(np.asarray(y_true).astype(str), n_levels=n_levels)
    calls = hierarchy.decode(proba, classes, n_levels=n_levels)
    out = {}
    for level, (called, _) in enumerate(calls, start=1):
        true = truth.iloc[:, level - 1].to_numpy(dtype=str)
        called = called.astype(str)
        present = np.unique(true)
        score = f1_score(true, called, labels=present, average="macro", zero_division=0)
        out[f"{LEVEL_F1}{level}"] = float(score)
    return out


def level_columns(columns: Iterable[str]) -> list[str]:
    """The per-level macro-F1 columns among ``columns`` (:func:`level_f1`), by level."""
    found = {int(m[1]): c for c in columns if (m := re.fullmatch(f"{LEVEL_F1}(\\d+)", str(c)))}
    return [found[level] for level in sorted(found)]


def evaluate_labels(
    y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray
) -> tuple[dict[str, float], dict[str, float]]:
    """Metrics of predicted labels that may include calls outside ``classes``.

    A call that is not one of ``classes`` ("unassigned", or an intermediate node of a
    hierarchical method) counts as wrong in accuracy and F1 and is counted in
    ``frac_unassigned``. F1 averages run over the cell types present in ``y_true``.

    Returns
    -------
    The summary metrics, and the F1 score of each cell type present in ``y_true``.
    """
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    present = np.unique(y_true)
    out = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0),
        "weighted_f1": f1_score(
            y_true, y_pred, labels=present, average="weighted", zero_division=0
        ),
        "frac_unassigned": float(np.mean(~np.isin(y_pred, np.asarray(classes).astype(str)))),
    }
    per_class = f1_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    return (
        {k: float(v) for k, v in out.items()},
        {c: float(f) for c, f in zip(present, per_class, strict=True)},
    )


def curve_area(n_labeled: np.ndarray, values: np.ndarray) -> float:
    """Mean of a learning curve: trapezoid area over ``n_labeled`` divided by its range.

    A curve with a single point (or no spread in ``n_labeled``) returns the mean value.
    """
    x = np.asarray(n_labeled, dtype=float)
    y = np.asarray(values, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size == 0:
        return math.nan
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    span = x[-1] - x[0]
    if span <= 0:
        return float(y.mean())
    return float(np.trapezoid(y, x) / span)


def labels_to_reach(n_labeled: np.ndarray, values: np.ndarray, threshold: float) -> float:
    """First ``n_labeled`` (in curve order) where ``values >= threshold``; NaN if never."""
    if math.isnan(threshold):
        return math.nan
    x = np.asarray(n_labeled, dtype=float)
    y = np.asarray(values, dtype=float)
    hit = np.flatnonzero(y >= threshold - 1e-12)
    return float(x[hit[0]]) if hit.size else math.nan
