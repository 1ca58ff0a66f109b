"""A label given to a selection in one action trains with the bulk weight; single answers and
simulated labels with weight 1 (no weights passed at all)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from scactive.loop import Engine, LabelState
from scactive.loop._state import BULK_WEIGHT
from scactive.models._one_class import fit_learner


class Recorder(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        self.seen_weight_ = sample_weight
        return super().fit(X, y, sample_weight=sample_weight)


def answers(n_bulk: int, n_single: int) -> list[dict]:
    rows = []
    for i in range(n_bulk + n_single):
        rows.append(
            dict(cell=f"c{i}", label="a" if i % 2 else "b", kind="label", round=1,
                 strategy="entropy", action=7 if i < n_bulk else None)
        )  # fmt: skip
    return rows


def test_bulk_answers_weigh_less_in_training():
    assert 0 < BULK_WEIGHT < 1
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    state = LabelState.from_answers(20, answers(6, 4), {f"c{i}": i for i in range(20)})
    learner = Engine(X, lambda key: Recorder()).fit(state, 0)
    positions, _ = state.training_set()
    expected = np.where(positions < 6, BULK_WEIGHT, 1.0)
    np.testing.assert_allclose(learner.seen_weight_, expected)


def test_no_weights_without_bulk_answers():
    X = np.random.default_rng(1).normal(size=(10, 3))
    state = LabelState.from_answers(10, answers(0, 6), {f"c{i}": i for i in range(10)})
    assert state.training_weights(state.positions) is None
    assert Engine(X, lambda key: Recorder()).fit(state, 0).seen_weight_ is None


def test_weights_reach_a_pipeline_and_skip_learners_without_them():
    X = np.random.default_rng(2).normal(size=(8, 2))
    y = np.array(["a", "b"] * 4)
    weight = np.linspace(0.1, 1, 8)
    pipe = fit_learner(make_pipeline(StandardScaler(), Recorder()), X, y, sample_weight=weight)
    np.testing.assert_allclose(pipe[-1].seen_weight_, weight)
    # k-nearest neighbours take no weights: trained on every label alike, no error
    knn = fit_learner(KNeighborsClassifier(n_neighbors=1), X, y, sample_weight=weight)
    assert (knn.predict(X) == y).all()
