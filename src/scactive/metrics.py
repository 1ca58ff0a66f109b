"""Validation metrics per round and learning-curve summaries."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, recall_score


def expand_proba(proba: np.ndarray, classes: np.ndarray, all_classes: np.ndarray) -> np.ndarray:
    """Probabilities over ``all_classes`` (classes the learner has not seen get 0)."""
    out = np.zeros((len(proba), len(all_classes)), dtype=np.float64)
    position = {c: i for i, c in enumerate(all_classes)}
    out[:, [position[c] for c in classes]] = proba
    return out


def evaluate(
    y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, all_classes: np.ndarray
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
        "weighted_f1": f1_score(y_true, y_pred, labels=present, average="weighted",
                                zero_division=0),
        "loss": log_loss(y_true, clipped, labels=all_classes),
    }
    recalls = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    out.update({f"recall:{c}": float(r) for c, r in zip(present, recalls, strict=True)})
    return {k: float(v) for k, v in out.items()}


def curve_area(n_labeled: np.ndarray, values: np.ndarray) -> float:
    """Mean value of a learning curve over its range of labeled cells (trapezoid rule)."""
    n_labeled = np.asarray(n_labeled, dtype=float)
    values = np.asarray(values, dtype=float)
    if len(n_labeled) < 2 or n_labeled[-1] == n_labeled[0]:
        return float(values.mean()) if len(values) else float("nan")
    return float(np.trapezoid(values, n_labeled) / (n_labeled[-1] - n_labeled[0]))


def labels_to_reach(n_labeled: np.ndarray, values: np.ndarray, target: float) -> float:
    """The first number of labeled cells at which ``values`` reaches ``target`` (NaN if never)."""
    reached = np.flatnonzero(np.asarray(values) >= target)
    return float(np.asarray(n_labeled)[reached[0]]) if len(reached) else float("nan")
