"""Pure array scores: higher means "ask about this cell"."""

from __future__ import annotations

import numpy as np


def entropy_scores(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of a probability matrix (cells x classes)."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def margin_scores(proba: np.ndarray) -> np.ndarray:
    """One minus the gap between the two most probable classes (1 when they tie)."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape[1] < 2:
        return np.zeros(len(proba))
    top2 = -np.partition(-proba, 1, axis=1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def least_confidence_scores(proba: np.ndarray) -> np.ndarray:
    """One minus the probability of the most probable class."""
    return 1.0 - np.asarray(proba, dtype=np.float64).max(axis=1)


def bald_scores(draws: np.ndarray) -> np.ndarray:
    """BALD mutual information from MC draws ``(n_draws, cells, classes)``.

    The entropy of the mean prediction minus the mean entropy of each draw: zero when all
    draws agree, high when confident draws disagree.
    """
    draws = np.asarray(draws, dtype=np.float64)
    mean_entropy = np.mean([entropy_scores(d) for d in draws], axis=0)
    return np.maximum(entropy_scores(draws.mean(axis=0)) - mean_entropy, 0.0)
