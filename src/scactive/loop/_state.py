"""Who is labeled, when, by whom, and by which strategy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

#: Answer kinds: a label, or a reply that gives none (the cell is not asked about again).
KINDS = ("label", "unsure", "doublet", "skip")


#: The training weight of a label given to a selection (lasso, box, cluster) in one action,
#: against 1 for a cell answered on its own: a person labeling a cluster on the map labels
#: its cells of other types too. Measured in ``benchmarks/bulk_weight.py`` (docs/annotate.md):
#: on pbmc3k, where the 3 largest clusters' bulk labels are 16% wrong, macro-F1 rose from
#: weight 1 to 0.5, 0.2 and 0.1; on Kang (0.2% wrong) it was the same at every weight.
BULK_WEIGHT = 0.1


@dataclass
class LabelState:
    """The answers given on a pool of ``n_cells`` cells, with their provenance.

    Attributes
    ----------
    labels
        The label of each labeled cell (``None`` elsewhere, and for answers without a label).
    kind
        The answer's kind (:data:`KINDS`; ``""``: not answered).
    round_
        The round in which each cell was answered (-1: not answered; 0: the initial set).
    strategy
        The strategy that picked each cell (``"initial"`` for the initial set).
    who
        Who answered: ``"oracle"`` (a simulated expert), ``"initial"``, ``"user"`` (a person)
        or ``"seed"`` (labels that came with the data).
    answered_at
        When (ISO time; ``None`` in simulations).
    order
        The order of the answers within a round (training reads the labeled cells by round,
        then by this order).
    """

    n_cells: int
    labels: np.ndarray = field(init=False)
    kind: np.ndarray = field(init=False)
    round_: np.ndarray = field(init=False)
    strategy: np.ndarray = field(init=False)
    who: np.ndarray = field(init=False)
    answered_at: np.ndarray = field(init=False)
    order: np.ndarray = field(init=False)
    weight: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = self.n_cells
        self.labels = np.full(n, None, dtype=object)
        self.kind = np.full(n, "", dtype=object)
        self.round_ = np.full(n, -1, dtype=np.int64)
        self.strategy = np.full(n, "", dtype=object)
        self.who = np.full(n, "", dtype=object)
        self.answered_at = np.full(n, None, dtype=object)
        self.order = np.arange(n, dtype=np.int64)
        self.weight = np.ones(n, dtype=np.float64)  # a label's training weight

    @classmethod
    def from_answers(
        cls, n_cells: int, answers: Iterable[Mapping], position: Mapping[str, int]
    ) -> LabelState:
        """The state of a session's current answers (dicts with ``cell``, ``label``, ``kind``,
        ``round``, ``strategy``, ``origin`` and ``answered_at``), in the order given; a label
        given to a selection in one action (``action`` set) trains with :data:`BULK_WEIGHT`."""
        state = cls(n_cells)
        for i, a in enumerate(answers):
            p = position[a["cell"]]
            state.labels[p] = a["label"] if a["kind"] == "label" else None
            state.kind[p] = a["kind"]
            state.round_[p] = a["round"]
            state.strategy[p] = a["strategy"]
            state.who[p] = a.get("origin", "user")
            state.answered_at[p] = a.get("answered_at")
            state.order[p] = i
            state.weight[p] = BULK_WEIGHT if a.get("action") else 1.0
        return state

    @property
    def answered(self) -> np.ndarray:
        """Boolean mask of answered cells (with a label or not): never asked about again."""
        return self.round_ >= 0

    @property
    def labeled(self) -> np.ndarray:
        """Boolean mask of cells with a label."""
        return self.kind == "label"

    @property
    def n_labeled(self) -> int:
        return int(self.labeled.sum())

    @property
    def n_unlabeled(self) -> int:
        """Cells that may still be asked about (not answered)."""
        return self.n_cells - int(self.answered.sum())

    @property
    def n_types(self) -> int:
        """Distinct labels among the labeled cells."""
        return len(set(self.labels[self.labeled].tolist()))

    @property
    def positions(self) -> np.ndarray:
        """Positions of the labeled cells, by round and then in answer order."""
        labeled = np.flatnonzero(self.labeled)
        return labeled[np.lexsort((self.order[labeled], self.round_[labeled]))]

    def training_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The labeled cells' positions (see :attr:`positions`) and their labels as str."""
        positions = self.positions
        return positions, self.labels[positions].astype(str)

    def training_weights(self, positions: np.ndarray) -> np.ndarray | None:
        """The training weights of the cells at ``positions``; None when all are 1."""
        weights = self.weight[positions]
        return None if np.all(weights == 1.0) else weights

    def add(
        self,
        positions: np.ndarray,
        labels,
        *,
        round_: int,
        strategy: str,
        who: str = "oracle",
        answered_at: str | None = None,
    ) -> None:
        """Record ``labels`` for the cells at ``positions`` (which must be unanswered)."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(np.unique(positions)) != len(positions):
            raise ValueError("positions hold duplicates")
        if self.answered[positions].any():
            raise ValueError("some positions are labeled already")
        self.labels[positions] = list(labels)
        self.kind[positions] = "label"
        self.round_[positions] = round_
        self.strategy[positions] = strategy
        self.who[positions] = who
        self.answered_at[positions] = answered_at
