"""A session's model: trained by the engine on the current answers, swapped in when ready.

Training runs outside the model lock (it may take seconds, in a background thread, while
answers keep arriving); the lock is held only to read the learner or swap a new one in. Each
training records a round in the store with the seed and a checksum of the labels it used, so
a reopened session rebuilds the same learner without a new round.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._hierarchy import LEVEL_PREFIX
from .._meta import package_version
from .._random import derive_seed
from ..loop import Engine, LabelState
from ..loop._stopping import StoppingMonitor, StoppingRule
from ..models import TrainedModel, make_learner
from ._answers import now as _now
from ._estimate import estimate_range
from ._levels import stored_hierarchy
from ._prepare import PreparedCells
from ._store import SessionError, SessionStore

logger = logging.getLogger("scactive")


@dataclass(frozen=True)
class Snapshot:
    """The current answers, and the label state they make."""

    answers: list[dict]
    state: LabelState

    @property
    def n_types(self) -> int:
        return self.state.n_types

    @property
    def labels(self) -> np.ndarray:
        """The labels of the labeled cells, in training order."""
        return self.state.labels[self.state.positions]

    @property
    def sha(self) -> str:
        """SHA-256 of the (position, label) pairs: which labels a model was trained on."""
        labeled = np.flatnonzero(self.state.labeled)
        pairs = [[int(p), str(self.state.labels[p])] for p in labeled]
        return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


class SessionModel:
    """The current learner of a session, its predictions over every cell, and its training."""

    def __init__(
        self,
        store: SessionStore,
        engine: Engine,
        data: PreparedCells,
        *,
        model: str,
        cv_model: str,
        seed: int,
    ) -> None:
        self._store = store
        self._engine = engine
        self._data = data
        self.model = model
        self.cv_model = cv_model
        self.seed = seed
        self.lock = threading.Lock()  # the learner and its predictions
        self._train_lock = threading.Lock()  # one training at a time
        self.learner = None
        self.proba: np.ndarray | None = None
        self.trained_sha: str | None = None
        self.trained_round: int | None = None
        # the estimate and the stopping rule of simulate, on the same sample of cells
        self._monitor = StoppingMonitor(len(data.X))
        self.hierarchy = stored_hierarchy(store)  # the cell-type levels, None: a flat vocabulary

    def current(self) -> tuple[object, np.ndarray | None]:
        """The learner and its predictions (None, None untrained)."""
        with self.lock:
            return self.learner, self.proba

    def train(self, snapshot: Callable[[], Snapshot], progress) -> dict:
        """Train on the answers of ``snapshot()`` (taken once the training lock is held)."""
        with self._train_lock:
            return self._train(snapshot(), progress)

    def ensure_trained(self, snapshot: Callable[[], Snapshot]) -> dict | None:
        """Train if the model is missing or older than the labels, and labels allow it;
        rebuild the last round's learner when it used exactly the current labels."""
        with self._train_lock:
            snap = snapshot()
            if snap.n_types < 2 or (self.learner is not None and self.trained_sha == snap.sha):
                return None
            rounds = self._store.rounds()
            last = rounds[-1] if rounds else None
            if last and last["labels_sha256"] == snap.sha and last["model"] == self.model:
                learner, proba = self._fit(snap, last["learner_seed"])
                self._install(learner, proba, snap.sha, last["round"])
                return {**round_summary(last), "restored": True}
            return self._train(snap, None)

    def _train(self, snap: Snapshot, progress) -> dict:
        report = progress or (lambda step, fraction: None)
        labels = snap.labels
        if snap.n_types < 2:
            raise SessionError(
                f"Training needs labels of at least 2 cell types; the session has "
                f"{len(labels)} labeled cells of {snap.n_types} type(s) "
                f"{sorted(set(labels))}. Label cells of another type first (next_batch "
                "spreads its picks across clusters until then)."
            )
        started, t0 = _now(), time.perf_counter()
        round_ = self._store.current_round()
        learner_seed = derive_seed([self.seed, round_])
        report("fit", 0.0)
        learner, proba = self._fit(snap, learner_seed)
        watched = self._watch(snap, learner, proba)
        report("cross-validation", 0.6)
        cv, folds = self._engine.estimate_accuracy(
            snap.state,
            lambda seed: make_learner(
                self.cv_model, self._data.features, rng=seed, given=self._data.input
            ),
            learner_seed,
        )
        strategies = Counter(
            a["strategy"] for a in snap.answers if a["round"] == round_ and a["origin"] == "user"
        )
        row = dict(
            strategy=strategies.most_common(1)[0][0] if strategies else None,
            model=self.model,
            started_at=started,
            finished_at=_now(),
            n_labeled=len(labels),
            n_types=snap.n_types,
            cv_accuracy=cv,
            cv_folds=folds,
            cv_model=self.cv_model if cv is not None else None,
            learner_seed=learner_seed,
            labels_sha256=snap.sha,
            **watched,
        )
        recorded = self._store.record_round(**row)
        self._install(learner, proba, snap.sha, recorded)
        report("done", 1.0)
        logger.info(
            "round %d: %d labeled cells of %d types, estimated macro-F1 %s, agreement %s",
            recorded,
            len(labels),
            snap.n_types,
            watched["estimated_f1"],
            watched["agreement"],
        )
        return {**round_summary({**row, "round": recorded}), "seconds": time.perf_counter() - t0}

    def _watch(self, snap: Snapshot, learner, proba: np.ndarray) -> dict:
        """The new model's estimated macro-F1 on the unlabeled cells (over the vocabulary's
        types), its agreement with the current model's predictions and the stopping rule's
        verdict on the recorded rounds."""
        monitor = self._monitor
        sample = monitor.sample
        previous_learner, previous_proba = self.current()
        monitor.previous = (
            None
            if previous_learner is None
            else np.asarray(previous_learner.classes_, dtype=object)[
                previous_proba[sample].argmax(axis=1)
            ]
        )
        # a round's verdict reads the recorded agreements: it holds across reopening
        monitor.agreements = [_number(r.get("agreement")) for r in self._store.rounds()]
        monitor.stopped = False  # a person may find a new type: the verdict is the current one
        n_types = self.n_task_types(self._store.vocabulary(), learner.classes_)
        watched = monitor.update(
            proba[sample], learner.classes_, snap.state.labeled[sample], n_types=n_types
        )
        return {
            "estimated_f1": _number(watched["estimated_f1"]),  # NULL in the store, not NaN
            "agreement": _number(watched["agreement"]),
            "stop": int(watched["stop"]),
        }

    def n_task_types(self, vocabulary: list[dict], classes=None) -> int:
        """The types the estimate averages over: the learner's (``classes``, default the
        current learner's) and the vocabulary's without labels, which count as missed as
        simulate's unfound types do; with a hierarchy a parent type (one with subtypes) counts
        only when it was answered, since its cells are the subtypes'."""
        if classes is None:
            learner, _ = self.current()
            classes = [] if learner is None else learner.classes_
        h = self.hierarchy
        vocab = {v["label"] for v in vocabulary if h is None or not h.children(v["label"])}
        return len(vocab | set(classes))

    def _fit(self, snap: Snapshot, learner_seed: int):
        learner = self._engine.fit(snap.state, learner_seed)
        return learner, np.asarray(learner.predict_proba(self._data.X), dtype=np.float32)

    def _install(self, learner, proba: np.ndarray, sha: str, round_: int) -> None:
        with self.lock:
            self.learner, self.proba = learner, proba
            self.trained_sha, self.trained_round = sha, round_

    def predictions(self, cells: pd.Index) -> pd.DataFrame:
        """The model's call for every cell: cell, predicted, confidence (empty untrained).

        With a hierarchy the calls roll up (:meth:`~scactive._hierarchy.Hierarchy.decode`,
        top-down and consistent): ``predicted`` is the finest level's call and ``confidence``
        the probability under it, and ``level<k>``, ``level<k>_confidence`` give each level's.
        """
        learner, proba = self.current()
        if learner is None:
            return pd.DataFrame({"cell": [], "predicted": [], "confidence": []})
        classes = np.asarray(learner.classes_, dtype=object)
        if self.hierarchy is not None:
            levels = self.hierarchy.decode(proba, classes)
            table = {"cell": np.asarray(cells, dtype=object)}
            table["predicted"], table["confidence"] = levels[-1]
            for k, (calls, confidence) in enumerate(levels, start=1):
                table[f"{LEVEL_PREFIX}{k}"] = calls
                table[f"{LEVEL_PREFIX}{k}_confidence"] = confidence
            return pd.DataFrame(table)
        return pd.DataFrame(
            {
                "cell": np.asarray(cells, dtype=object),
                "predicted": classes[proba.argmax(axis=1)],
                "confidence": proba.max(axis=1),
            }
        )

    def trained_model(self) -> TrainedModel | None:
        """The current learner with its feature space (None before any training)."""
        learner, _ = self.current()
        if learner is None:
            return None
        return TrainedModel(
            learner, self._data.features, package_version(), self._data.input, self.model
        )


#: What a round reports, in training results and in the session's status.
ROUND_KEYS = (
    "round",
    "model",
    "n_labeled",
    "n_types",
    "cv_accuracy",
    "cv_folds",
    "cv_model",
    "estimated_f1",
    "agreement",
    "stop",
)


def round_summary(row: dict) -> dict:
    """What a training reports of a round: its labels, ``cv_accuracy`` (cross-validated on
    the labeled cells, with ``cv_folds`` and ``cv_model``), and what simulate records too:
    ``estimated_f1``, ``agreement`` (None: not known) and ``stop`` (a bool)."""
    out = {k: row.get(k) for k in ROUND_KEYS}
    for key in ("estimated_f1", "agreement"):
        out[key] = _number(out[key])
    out["stop"] = bool(out["stop"])
    return out


def stopping_summary(
    rounds: list[dict], rule: StoppingRule | None = None, *, n_types: int | None = None
) -> dict:
    """The latest round's estimate and the stopping rule's reading of the recorded rounds:
    ``estimated_f1`` (None: not enough labels to estimate), its range ``low``..``high``
    (:func:`~scactive.app._estimate.estimate_range` at the round's labels per type of the
    task's ``n_types``, the vocabulary's; default the learner's), ``labels_per_type``,
    ``band_model``, ``n_types`` (the learner's types), ``agreement``, ``stable_rounds``,
    ``window``, ``kappa`` and ``stop``."""
    rule = rule or StoppingRule()
    last = round_summary(rounds[-1]) if rounds else {}
    agreements = [_number(r.get("agreement")) for r in rounds]
    task_types = max(n_types or 0, last.get("n_types") or 0)
    return {
        "estimated_f1": last.get("estimated_f1"),
        **estimate_range(last.get("estimated_f1"), last.get("n_labeled"), task_types),
        "n_types": last.get("n_types"),
        "agreement": last.get("agreement"),
        "stable_rounds": rule.stable_rounds(agreements),
        "window": rule.window,
        "kappa": rule.kappa,
        "stop": rule.says_stop(agreements),
    }


def _number(value) -> float | None:
    """A stored REAL as a float, None for NULL and NaN."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
