"""Validation metrics per round and learning-curve summaries."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, recall_score

__all__ = [
    "curve_area",
    "evaluate",
    "evaluate_labels",
    "expand_proba",
    "labels_to_reach",
]


def expand_proba(proba: np.ndarray, classes: np.ndarray, all_classes: np.ndarray) -> np.ndarray:
    """Probabilities over ``all_classes`` (classes the learner has not seen get 0)."""
    out = np.zeros((len(proba), len(all_classes)), dtype=np.float64)
    position = {c: i for i, c in enumerate(all_classes)}
    out[:, [position[c] for c in classes]] = proba
    return out


def evaluate(
    y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, *, all_classes: np.ndarray
) -> dict[str, float]:
    """Accuracy, macro and weighted F1, cross-entropy loss and per-class recall.

    ``proba`` has columns ``classes`` (the learner's); ``all_classes`` are every class of the
    task, so that a class the learner has not seen yet counts as always missed. The loss clips
    probabilities at 1e-7 so an unseen class gives a large but finite loss.
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
    recalls = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    out.update({f"recall:{c}": float(r) for c, r in zip(present, recalls, strict=True)})
    return {k: float(v) for k, v in out.items()}


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
