"""Oracles: who answers the question "what type is this cell?"."""

from __future__ import annotations

import numpy as np


class SimulatedOracle:
    """Reveals known labels, as an expert would give them, for simulations."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = np.asarray(labels)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        return self.labels[np.asarray(positions, dtype=np.int64)]
