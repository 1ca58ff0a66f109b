"""Who is labeled, when, and by which strategy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LabelState:
    """The labeled set of a pool of ``n_cells`` cells.

    Attributes
    ----------
    labels
        The label of each labeled cell (``None`` elsewhere).
    round_
        The round in which each cell was labeled (-1: unlabeled; 0: the initial set).
    strategy
        The strategy that picked each cell (``"initial"`` for the initial set).
    """

    n_cells: int
    labels: np.ndarray = field(init=False)
    round_: np.ndarray = field(init=False)
    strategy: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.labels = np.full(self.n_cells, None, dtype=object)
        self.round_ = np.full(self.n_cells, -1, dtype=np.int64)
        self.strategy = np.full(self.n_cells, "", dtype=object)

    @property
    def labeled(self) -> np.ndarray:
        """Boolean mask of labeled cells."""
        return self.round_ >= 0

    @property
    def n_labeled(self) -> int:
        return int(self.labeled.sum())

    @property
    def n_unlabeled(self) -> int:
        return self.n_cells - self.n_labeled

    @property
    def positions(self) -> np.ndarray:
        """Positions of the labeled cells, in the order they were labeled (by round)."""
        labeled = np.flatnonzero(self.labeled)
        return labeled[np.argsort(self.round_[labeled], kind="stable")]

    def add(self, positions: np.ndarray, labels, *, round_: int, strategy: str) -> None:
        """Record ``labels`` for the cells at ``positions`` (which must be unlabeled)."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(np.unique(positions)) != len(positions):
            raise ValueError("positions hold duplicates")
        if self.labeled[positions].any():
            raise ValueError("some positions are labeled already")
        self.labels[positions] = list(labels)
        self.round_[positions] = round_
        self.strategy[positions] = strategy
