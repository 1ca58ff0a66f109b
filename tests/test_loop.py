"""The label state and the active-learning loop."""

from __future__ import annotations

import numpy as np
import pytest

from scactive.loop import LabelState, SimulatedOracle, active_learning
from scactive.models import MLPClassifier
from scactive.strategies import get_strategy


def test_label_state_records_rounds_and_refuses_relabeling():
    state = LabelState(10)
    state.add([3, 1], ["a", "b"], round_=0, strategy="initial")
    state.add([7], ["a"], round_=1, strategy="entropy")
    assert state.n_labeled == 3 and state.n_unlabeled == 7
    assert list(state.positions) == [1, 3, 7]
    assert state.strategy[7] == "entropy" and state.round_[7] == 1
    with pytest.raises(ValueError, match="labeled already"):
        state.add([3], ["a"], round_=2, strategy="x")
    with pytest.raises(ValueError, match="duplicates"):
        state.add([4, 4], ["a", "a"], round_=2, strategy="x")


def _data(seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(3, 10))
    y = np.array(["a", "b", "c"])[rng.integers(3, size=130)]
    X = centers[np.searchsorted(["a", "b", "c"], y)] + rng.normal(size=(130, 10))
    return X[:100].astype(np.float32), y[:100], X[100:].astype(np.float32), y[100:]


def _run(strategy="entropy", **kwargs):
    X, y, Xv, yv = _data()
    params = dict(
        new_learner=lambda r: MLPClassifier(hidden=(16,), min_steps=150, random_state=r),
        strategy=get_strategy(strategy),
        strategy_name=strategy,
        batch_size=9,
        initial=np.arange(6),
        rng=np.random.default_rng(0),
        n_rounds=3,
    )
    params.update(kwargs)
    return active_learning(X, SimulatedOracle(y), X_val=Xv, y_val=yv, **params)


def test_loop_labels_one_batch_per_round_and_records_metrics():
    result = _run()
    assert [r["round"] for r in result.rounds] == [0, 1, 2, 3]
    assert [r["n_labeled"] for r in result.rounds] == [6, 15, 24, 33]
    assert all(0 <= r["macro_f1"] <= 1 and r["loss"] > 0 for r in result.rounds)
    assert {"recall:a", "recall:b", "recall:c"} <= set(result.rounds[-1])
    assert len(result.picks) == 27 and len({p["position"] for p in result.picks}) == 27
    assert not set(range(6)) & {p["position"] for p in result.picks}
    assert result.rounds[-1]["accuracy"] > 0.9  # separable blobs


def test_loop_is_reproducible():
    a, b = _run(), _run()
    assert [p["position"] for p in a.picks] == [p["position"] for p in b.picks]
    assert [r["loss"] for r in a.rounds] == [r["loss"] for r in b.rounds]


def test_loop_stops_when_pool_runs_out():
    result = _run(batch_size=40, n_rounds=5)
    assert [r["n_labeled"] for r in result.rounds] == [6, 46, 86]
    assert result.pool_exhausted and result.rounds[-1]["pool_exhausted"]


def test_loop_runs_until_a_fraction_is_labeled():
    result = _run(stop_fraction=0.3, n_rounds=0)
    assert result.rounds[-1]["frac_labeled"] >= 0.3
    assert result.rounds[-2]["frac_labeled"] < 0.3


def test_continue_training_keeps_one_learner():
    made = []

    def new_learner(r):
        made.append(r)
        return MLPClassifier(hidden=(16,), min_steps=150, random_state=r)

    result = _run(new_learner=new_learner, retrain="continue")
    assert made == [0] and result.learner.warm_start
    _run(new_learner=new_learner)
    assert made == [0, 0, 1, 2, 3]


def _answer(cell, label, kind="label", round_=1, origin="user"):
    return dict(cell=cell, label=label, kind=kind, round=round_, strategy="entropy",
                origin=origin, answered_at="2026-01-01T00:00:00")  # fmt: skip


def test_store_oracle_builds_the_label_state_with_provenance():
    from scactive.loop import StoreOracle

    answers = [
        _answer("c3", "B", round_=0, origin="seed"),
        _answer("c1", None, kind="unsure"),
        _answer("c0", "T"),
    ]
    oracle = StoreOracle(lambda: answers, [f"c{i}" for i in range(5)])
    state = oracle.state()
    assert list(state.positions) == [3, 0]  # by round, then in answer order
    assert state.n_labeled == 2 and state.n_types == 2
    assert state.answered.tolist() == [True, True, False, True, False]  # unsure: not asked again
    assert state.who[3] == "seed" and state.who[0] == "user" and state.kind[1] == "unsure"
    assert list(oracle(np.array([0, 2, 3]))) == ["T", None, "B"]


def test_engine_cold_starts_until_two_types_and_never_asks_an_answered_cell():
    from scactive.loop import Engine
    from scactive.strategies import ColdStart

    X, y, _, _ = _data()
    engine = Engine(X, lambda seed: MLPClassifier(hidden=(8,), min_steps=30, random_state=seed),
                    embedding=X[:, :2], cold_start=ColdStart())  # fmt: skip
    state = LabelState(len(X))
    first = np.flatnonzero(y == "a")[:3]
    state.add(first, y[first], round_=0, strategy="initial")
    learner = engine.fit(state, 0)
    picks, used = engine.query(learner, state, get_strategy("entropy"), 5, np.random.default_rng(0))
    assert isinstance(used, ColdStart) and not state.answered[picks].any()
    other = np.flatnonzero(y == "b")[:2]
    state.add(other, y[other], round_=1, strategy="cold-start")
    learner = engine.fit(state, 1)
    picks, used = engine.query(learner, state, get_strategy("entropy"), 5, np.random.default_rng(0))
    assert used.name == "entropy" and len(set(picks)) == 5 and not state.answered[picks].any()


def test_engine_continue_trains_one_learner_further():
    from scactive.loop import Engine

    X, y, _, _ = _data()
    made = []

    def new_learner(key):
        made.append(key)
        return MLPClassifier(hidden=(8,), min_steps=30, random_state=0)

    engine = Engine(X, new_learner, retrain="continue")
    state = LabelState(len(X))
    state.add(np.arange(10), y[:10], round_=0, strategy="initial")
    first = engine.fit(state, 0)
    state.add(np.arange(10, 20), y[10:20], round_=1, strategy="random")
    assert engine.fit(state, 1) is first and made == [0] and first.warm_start


def test_rounds_count_the_cell_types_found_so_far():
    import numpy as np

    from scactive.loop import SimulatedOracle, active_learning
    from scactive.strategies import get_strategy

    rng = np.random.default_rng(0)
    y = np.array(["common"] * 40 + ["rare"] * 4)
    X = rng.normal(size=(44, 5)).astype(np.float32)
    X[y == "rare"] += 8.0
    from sklearn.linear_model import LogisticRegression

    result = active_learning(
        X,
        SimulatedOracle(y),
        X_val=X,
        y_val=y,
        new_learner=lambda key: LogisticRegression(),
        strategy=get_strategy("random"),
        strategy_name="random",
        batch_size=10,
        initial=np.arange(5),  # only common cells to start
        rng=0,
        n_rounds=3,
        classes=np.unique(y),
    )
    found = [r["n_types_found"] for r in result.rounds]
    labeled = [set(y[:5])]
    for round_ in (1, 2, 3):
        labeled.append(labeled[-1] | {p["label"] for p in result.picks if p["round"] == round_})
    assert found == [len(s) for s in labeled] and found[0] == 1


def test_rounds_record_the_estimate_agreement_and_stop():
    result = _run(n_rounds=4)
    estimates = [r["estimated_f1"] for r in result.rounds]
    assert all(0 < e <= 1 for e in estimates)  # three types labeled from round 0
    assert np.isnan(result.rounds[0]["agreement"])
    assert all(-1 <= r["agreement"] <= 1 for r in result.rounds[1:])
    stops = [r["stop"] for r in result.rounds]
    assert all(isinstance(s, bool) for s in stops) and stops == sorted(stops)  # stays said
