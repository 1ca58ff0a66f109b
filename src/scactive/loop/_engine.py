"""The active-learning engine: train on the labeled cells, ask about the next ones.

One engine serves both jobs. :func:`scactive.loop.active_learning` drives it with a simulated
oracle, round after round; an annotation session (:mod:`scactive.app`) drives it with a
person, whose answers arrive through the session store (:class:`~scactive.loop.StoreOracle`)
while the engine retrains and proposes the next cells. The engine holds no labels itself: each
call reads a :class:`~scactive.loop.LabelState`, so a driver may rebuild the state between
calls (a session does, from its store) and calls from several threads do not interfere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import InputError
from ..models._one_class import fit_learner, unlabeled_limit, uses_unlabeled
from ..strategies import Strategy
from ._state import LabelState

#: Labeled types below which the cold start (when the engine has one) picks the cells.
COLD_START_TYPES = 2


@dataclass
class Engine:
    """Training and querying over one pool of cells.

    Parameters
    ----------
    X
        Features of the pool (cells x features), as the learner reads them.
    new_learner
        ``new_learner(key)`` returns an unfitted learner; ``key`` is what the driver passes
        to :meth:`fit` (the simulation passes the round, a session the learner's seed).
    embedding
        A low-dimensional view of the pool (its PCA) for strategies that cluster.
    retrain
        ``"scratch"``: every fit starts from a new learner; ``"continue"``: the first learner
        is kept and trained further (``warm_start``) on each fit.
    cold_start
        The strategy used, whatever strategy is asked for, while fewer than
        :data:`COLD_START_TYPES` types are labeled (None: always the strategy asked for, on a
        learner that knows one type).
    """

    X: np.ndarray
    new_learner: Callable[[Any], Any]
    embedding: np.ndarray | None = None
    retrain: str = "scratch"
    cold_start: Strategy | None = None
    _base: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.retrain not in {"scratch", "continue"}:
            raise ValueError(f"retrain={self.retrain!r}; expected 'scratch' or 'continue'")
        if self.embedding is not None and len(self.embedding) != len(self.X):
            raise ValueError(f"embedding has {len(self.embedding)} rows; X has {len(self.X)}")

    def fit(self, state: LabelState, key: Any) -> Any:
        """A learner fitted on the labeled cells of ``state`` (one type: that type, p = 1)."""
        if self._base is None or self.retrain == "scratch":
            base = self.new_learner(key)
            if self.retrain == "continue" and "warm_start" in base.get_params():
                base.set_params(warm_start=True)
            self._base = base
        positions, labels = state.training_set()
        unlabeled = self._unlabeled(state) if uses_unlabeled(self._base) else None
        return fit_learner(
            self._base,
            self.X[positions],
            labels,
            unlabeled=unlabeled,
            sample_weight=state.training_weights(positions),
        )

    def _unlabeled(self, state: LabelState) -> np.ndarray:
        """The unlabeled cells a semi-supervised learner learns from: all of them, or a
        sample of its ``max_unlabeled`` that depends on the labeled count only."""
        limit = unlabeled_limit(self._base)
        positions = np.flatnonzero(~state.answered)
        if limit is not None and len(positions) > limit:
            rng = np.random.default_rng(state.n_labeled)
            positions = np.sort(rng.choice(positions, limit, replace=False))
        return self.X[positions]

    def query(
        self,
        learner: Any,
        state: LabelState,
        strategy: Strategy,
        batch_size: int,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, Strategy]:
        """The next ``batch_size`` cells to ask about (never answered ones) and the strategy
        that chose them: ``strategy``, or the cold start while too few types are labeled."""
        chooser = strategy
        if self.cold_start is not None and state.n_types < COLD_START_TYPES:
            chooser = self.cold_start
        elif learner is None and getattr(strategy, "needs_learner", True):
            raise InputError(
                f"Strategy {getattr(strategy, 'name', strategy)!r} needs a fitted learner; "
                "fit one first."
            )
        picks = chooser(
            learner,
            self.X,
            labeled=state.answered,
            batch_size=batch_size,
            rng=rng,
            embedding=self.embedding,
        )
        return np.asarray(picks, dtype=np.int64), chooser

    def estimate_accuracy(
        self,
        state: LabelState,
        new_learner: Callable[[Any], Any],
        seed: int,
        *,
        max_folds: int = 5,
    ) -> tuple[float | None, int]:
        """Stratified cross-validated accuracy on the labeled cells, with no ground truth.

        Returns the accuracy and the number of folds (``min(max_folds, smallest type)``), or
        ``(None, 0)`` when a type has a single labeled cell.
        """
        from sklearn.model_selection import StratifiedKFold

        positions, y = state.training_set()
        smallest = min(Counter(y).values(), default=0)
        if smallest < 2:
            return None, 0
        folds = min(max_folds, smallest)
        X = self.X[positions]
        correct = 0
        split = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for fit_idx, test_idx in split.split(X, y):
            learner = new_learner(seed)
            learner.fit(X[fit_idx], y[fit_idx])
            guess = np.asarray(learner.classes_)[learner.predict_proba(X[test_idx]).argmax(1)]
            correct += int((guess == y[test_idx]).sum())
        return correct / len(y), folds
