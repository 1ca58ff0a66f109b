"""Oracles: who answers the question "what type is this cell?".

An oracle is called with pool positions and returns their labels; ``who`` names it in the
label state's provenance. A simulation asks :class:`SimulatedOracle`, which knows every
label. A person answers in their own time, so :class:`StoreOracle` reads the answers given so
far from where they are recorded (an annotation session's store) and builds the label state
the engine trains on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import numpy as np

from ._state import LabelState


class Oracle(Protocol):
    """Labels for pool positions."""

    who: str

    def __call__(self, positions: np.ndarray) -> np.ndarray: ...


class SimulatedOracle:
    """Reveals known labels, as an expert would give them, for simulations."""

    who = "oracle"

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = np.asarray(labels)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        return self.labels[np.asarray(positions, dtype=np.int64)]


class StoreOracle:
    """A person's answers, read from the store they are recorded in.

    Parameters
    ----------
    read_answers
        Returns the current answers, oldest first: mappings with ``cell``, ``label``,
        ``kind``, ``round``, ``strategy``, ``origin`` and ``answered_at``.
    cells
        The pool's cell names, in pool order.
    """

    who = "user"

    def __init__(self, read_answers: Callable[[], Iterable[Mapping]], cells: Iterable[str]):
        self._read = read_answers
        self.cells = list(cells)
        self.position = {cell: i for i, cell in enumerate(self.cells)}

    def answers(self) -> list[Mapping]:
        """The current answers (a snapshot)."""
        return list(self._read())

    def state(self, answers: Iterable[Mapping] | None = None) -> LabelState:
        """The label state of the current answers (or of ``answers``, a snapshot)."""
        answers = self.answers() if answers is None else answers
        return LabelState.from_answers(len(self.cells), answers, self.position)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """The labels given so far for ``positions`` (None where none was given yet)."""
        state = self.state()
        return state.labels[np.asarray(positions, dtype=np.int64)]
