"""The pool-based batch active-learning loop (paper section 3)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..metrics import evaluate
from ..strategies import Strategy
from ._engine import Engine
from ._state import LabelState
from ._stopping import StoppingMonitor, StoppingRule

if TYPE_CHECKING:
    from .._hierarchy import Hierarchy

logger = logging.getLogger("scactive")


@dataclass
class LoopResult:
    """Per-round metrics and every pick of one active-learning run."""

    rounds: list[dict] = field(default_factory=list)
    picks: list[dict] = field(default_factory=list)
    state: LabelState | None = None
    learner: Any = None
    pool_exhausted: bool = False


def active_learning(
    X_pool: np.ndarray,
    oracle: Callable[[np.ndarray], np.ndarray],
    *,
    X_val: np.ndarray,
    y_val: np.ndarray,
    new_learner: Callable[[int], Any],
    strategy: Strategy,
    strategy_name: str,
    batch_size: int,
    initial: np.ndarray,
    rng: np.random.Generator,
    n_rounds: int = 10,
    stop_fraction: float | None = None,
    embedding: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    retrain: str = "scratch",
    on_round: Callable[[dict], None] | None = None,
    on_fit: Callable[[int, Any, LabelState], None] | None = None,
    stopping: StoppingRule | None = None,
    hierarchy: Hierarchy | None = None,
) -> LoopResult:
    """Run one active-learning experiment: train, evaluate, query, label, repeat.

    Parameters
    ----------
    X_pool
        Features of the pool cells (the cells that may be queried).
    oracle
        Maps pool positions to their labels (``SimulatedOracle`` or a person).
    X_val, y_val
        The held-out validation cells, never queried.
    new_learner
        ``new_learner(round)`` returns an unfitted learner. With ``retrain="scratch"`` (the
        default) every round trains a new learner from random weights on all labeled cells;
        with ``"continue"`` the round-0 learner is kept and trained further each round
        (``warm_start``), which is faster on large labeled sets.
    strategy, strategy_name
        The query strategy and the name recorded in the results.
    batch_size
        Cells labeled per round.
    initial
        Pool positions labeled before round 1 (round 0).
    rng
        Drives every random choice of the strategy.
    n_rounds
        Query rounds after round 0. Ignored when ``stop_fraction`` is given.
    stop_fraction
        Query until at least this fraction of the pool is labeled (the paper's Figure 6).
    embedding
        Low-dimensional view of the pool for clustering strategies (the pool PCA).
    classes
        Every class of the task, for metrics (default: those of ``y_val``).
    on_round
        Called with each round's record (e.g. to advance a progress bar).
    on_fit
        Called after each round's training with the round, the fitted learner and the label
        state (e.g. to read the model's calls on every cell); it must not change either.
    stopping
        The stopping rule whose verdict each round records (default: :class:`StoppingRule`).
        The loop runs its rounds either way.
    hierarchy
        A cell-type hierarchy over ``classes`` (the finest level): each round also records
        ``macro_f1_level1`` ... ``macro_f1_levelN`` (:func:`scactive.metrics.level_f1`);
        ``macro_f1`` stays the plain argmax over ``classes``.

    Returns
    -------
    A :class:`LoopResult`. When fewer than ``batch_size`` cells remain unlabeled the loop stops
    early and ``pool_exhausted`` is set. Besides the validation metrics, each round records
    what is known without held-out labels (:mod:`scactive.loop._stopping`):
    ``estimated_f1`` (the model's expected macro-F1 on the unlabeled pool over the types of
    ``classes``, those it has not met counting as missed; NaN while it knows one type),
    ``agreement`` (Cohen's kappa with the previous round's predictions; NaN at round 0) and
    ``stop`` (whether the rule has said stop by this round).
    """
    engine = Engine(X_pool, new_learner, embedding=embedding, retrain=retrain)
    classes = np.unique(y_val) if classes is None else np.asarray(classes)
    who = getattr(oracle, "who", "oracle")
    state = LabelState(len(X_pool))
    state.add(initial, oracle(initial), round_=0, strategy="initial", who=who)
    result = LoopResult(state=state)
    learner = None
    monitor = StoppingMonitor(len(X_pool), stopping or StoppingRule())

    def fit_and_record(round_: int, query_seconds: float) -> None:
        nonlocal learner
        start = time.perf_counter()
        learner = engine.fit(state, round_)
        train_seconds = time.perf_counter() - start
        if on_fit is not None:
            on_fit(round_, learner, state)
        proba = learner.predict_proba(X_val)
        metrics = evaluate(y_val, proba, learner.classes_, all_classes=classes, hierarchy=hierarchy)
        sample = monitor.sample
        whole = len(sample) == len(X_pool)  # no copy of a pool read whole
        watched = monitor.update(
            learner.predict_proba(X_pool if whole else X_pool[sample]),
            learner.classes_,
            state.labeled[sample],
            n_types=len(classes),  # the task's vocabulary: a type never labeled counts missed
        )
        record = {
            "round": round_,
            "n_labeled": state.n_labeled,
            "frac_labeled": state.n_labeled / len(X_pool),
            "n_types_found": state.n_types,  # a rare type found early is worth labels
            **metrics,
            **watched,
            "train_seconds": train_seconds,
            "query_seconds": query_seconds,
            "pool_exhausted": False,
        }
        result.rounds.append(record)
        if on_round is not None:
            on_round(record)

    fit_and_record(0, 0.0)
    round_ = 0
    while True:
        if stop_fraction is not None:
            if state.n_labeled / len(X_pool) >= stop_fraction:
                break
        elif round_ >= n_rounds:
            break
        if state.n_unlabeled < batch_size:
            result.pool_exhausted = True
            result.rounds[-1]["pool_exhausted"] = True
            logger.info("pool exhausted after round %d", round_)
            break
        round_ += 1
        start = time.perf_counter()
        picked, _ = engine.query(learner, state, strategy, batch_size, rng)
        query_seconds = time.perf_counter() - start
        labels = oracle(picked)
        state.add(picked, labels, round_=round_, strategy=strategy_name, who=who)
        result.picks.extend(
            {"round": round_, "position": int(p), "label": str(lab)}
            for p, lab in zip(picked, labels, strict=True)
        )
        fit_and_record(round_, query_seconds)
    result.learner = learner
    return result
