"""When to stop labeling: an estimate of the model's macro-F1 without held-out labels, and a
stopping rule on the stability of its predictions.

Both read the model's probabilities on a fixed sample of pool cells (every cell up to
:data:`MONITOR_CELLS`), so a round stays cheap at a million cells.

- The **estimate** is the macro-F1 the model expects of itself on the unlabeled cells of the
  sample: a cell predicted ``k`` is right with probability ``p_k``, so for each type
  ``E[TP_k] = sum of p_k over the cells predicted k`` and ``E[n_k] = sum of p_k over all
  cells``, ``F1_k = 2 E[TP_k] / (n_pred_k + E[n_k])``, averaged over the task's types (the
  vocabulary): a type the learner has never met counts as missed (F1 0), since the model
  cannot expect to miss a type it does not know. No label of any cell outside the labeled
  ones is read; the labeled cells are left out, like the validation cells the truth is
  measured on are. Measured on pbmc3k and Kang in ``benchmarks/stopping.py``.
- The **rule** is stabilizing predictions (Bloodgood & Vijay-Shanker 2009): stop once Cohen's
  kappa between consecutive rounds' predictions on the sample has been at least
  :data:`STOP_KAPPA` for :data:`STOP_WINDOW` rounds in a row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Pool cells the estimate and the agreement are computed on (a fixed random sample above it).
MONITOR_CELLS = 50_000
#: Cohen's kappa between consecutive rounds' predictions that counts as stable.
STOP_KAPPA = 0.99
#: Consecutive stable rounds after which the rule says stop.
STOP_WINDOW = 3


def monitor_sample(n_cells: int, max_cells: int = MONITOR_CELLS, seed: int = 0) -> np.ndarray:
    """Sorted positions of the cells the monitor reads: all, or a fixed random sample.

    The sample depends only on ``n_cells``, ``max_cells`` and ``seed`` (never on a run's
    random generator, whose picks it must not change).
    """
    if n_cells <= max_cells:
        return np.arange(n_cells, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_cells, size=max_cells, replace=False)).astype(np.int64)


def expected_macro_f1(proba: np.ndarray, *, n_types: int | None = None) -> float:
    """The macro-F1 a model expects of its own argmax calls under its probabilities.

    Parameters
    ----------
    proba
        Class probabilities (cells x the learner's types), rows summing to 1.
    n_types
        The task's types, when it has more than the learner knows: the others count as
        missed (F1 0) in the mean.

    Returns
    -------
    The mean over types of ``2 E[TP_k] / (n_pred_k + E[n_k])`` (learner types with neither
    a call nor probability mass are left out); NaN for a learner of fewer than two types or
    no cells.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 2 or proba.shape[0] == 0:
        return math.nan
    known = proba.shape[1]
    called = proba.argmax(axis=1)
    n_pred = np.bincount(called, minlength=known)
    tp = np.bincount(called, weights=proba[np.arange(len(proba)), called], minlength=known)
    denominator = n_pred + proba.sum(axis=0)
    present = denominator > 0
    unknown = max(0, (n_types or 0) - known)  # types the learner has never met: F1 0
    return float(np.sum(2 * tp[present] / denominator[present]) / (present.sum() + unknown))


def prediction_agreement(previous: np.ndarray | None, current: np.ndarray) -> float:
    """Cohen's kappa between two rounds' predicted labels of the same cells (NaN without a
    previous round; 1.0 when both rounds call every cell the same single type)."""
    from sklearn.metrics import cohen_kappa_score

    if previous is None or len(previous) == 0:
        return math.nan
    previous, current = np.asarray(previous).astype(str), np.asarray(current).astype(str)
    if len(np.union1d(previous, current)) == 1:
        return 1.0  # kappa is 0/0 when one type is called everywhere twice
    return float(cohen_kappa_score(previous, current))


@dataclass(frozen=True)
class StoppingRule:
    """Stop once ``window`` consecutive agreements reach ``kappa`` (NaN never counts)."""

    kappa: float = STOP_KAPPA
    window: int = STOP_WINDOW

    def __post_init__(self) -> None:
        if not 0 < self.kappa <= 1:
            raise ValueError(f"kappa={self.kappa}; expected a value in (0, 1]")
        if self.window < 1:
            raise ValueError(f"window={self.window}; expected a whole number >= 1")

    def stable_rounds(self, agreements: Sequence[float]) -> int:
        """How many of the latest agreements in a row reach ``kappa``."""
        count = 0
        for value in reversed(list(agreements)):
            if not (value is not None and value >= self.kappa):  # NaN and None fail
                break
            count += 1
        return count

    def says_stop(self, agreements: Sequence[float]) -> bool:
        """Whether the stop applies after these agreements (oldest first)."""
        return self.stable_rounds(agreements) >= self.window

    def stops(self, agreements: Sequence[float]) -> list[bool]:
        """For each round, whether the rule has said stop by then (stays True once it has)."""
        out, stopped = [], False
        for i in range(len(agreements)):
            stopped = stopped or self.says_stop(agreements[: i + 1])
            out.append(stopped)
        return out


@dataclass
class StoppingMonitor:
    """Follows one run round by round: the estimate, the agreement and the stop.

    Parameters
    ----------
    n_cells
        Cells in the pool; :func:`monitor_sample` chooses the ones read.
    rule
        The stopping rule.
    previous
        The previous round's predicted labels of the sample cells (None: no previous round).
    agreements
        The agreements of the rounds so far, oldest first (a driver that keeps them
        elsewhere, as a session does in its store, passes them in).
    stopped
        Whether the rule said stop in an earlier round (it stays said).
    """

    n_cells: int
    rule: StoppingRule = field(default_factory=StoppingRule)
    previous: np.ndarray | None = None
    agreements: list[float] = field(default_factory=list)
    stopped: bool = False
    max_cells: int = MONITOR_CELLS
    sample: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.sample = monitor_sample(self.n_cells, self.max_cells)

    def update(
        self,
        proba: np.ndarray,
        classes: np.ndarray,
        labeled: np.ndarray,
        *,
        n_types: int | None = None,
    ) -> dict:
        """Read a round's model: its probabilities on :attr:`sample` (columns ``classes``),
        which sample cells are labeled and how many types the task has (see
        :func:`expected_macro_f1`). Returns ``estimated_f1``, ``agreement`` and ``stop``.
        """
        proba = np.asarray(proba)
        labeled = np.asarray(labeled, dtype=bool)
        predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
        agreement = prediction_agreement(self.previous, predicted)
        self.previous = predicted
        self.agreements.append(agreement)
        self.stopped = self.stopped or self.rule.says_stop(self.agreements)
        return {
            "estimated_f1": expected_macro_f1(proba[~labeled], n_types=n_types),
            "agreement": agreement,
            "stop": self.stopped,
        }
