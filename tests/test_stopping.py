"""When to stop: the estimate without held-out labels, the stopping rule, and where they show."""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing

import numpy as np
import pytest
from sklearn.metrics import f1_score

from conftest import make_counts
from scactive import simulate
from scactive.app import SCHEMA_VERSION, open_session
from scactive.loop._stopping import (
    StoppingMonitor,
    StoppingRule,
    expected_macro_f1,
    monitor_sample,
    prediction_agreement,
)
from test_simulate import FAST


def one_hot(codes: np.ndarray, n_types: int) -> np.ndarray:
    return np.eye(n_types)[codes]


# -- the estimate -----------------------------------------------------------------------------
def test_one_hot_correct_probabilities_give_the_true_macro_f1():
    rng = np.random.default_rng(0)
    truth = rng.integers(4, size=300)
    proba = one_hot(truth, 4)
    true_f1 = f1_score(truth, proba.argmax(1), average="macro")
    assert expected_macro_f1(proba) == pytest.approx(true_f1) == pytest.approx(1.0)


def test_hand_checked_example():
    # cells 0-1 called a with p_a 0.9 and 0.6; cell 2 called b with p_b 0.8
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    # a: E[TP] 1.5, 2 calls, E[n] 1.7 -> 3/3.7; b: E[TP] 0.8, 1 call, E[n] 1.3 -> 1.6/2.3
    expected = (3 / 3.7 + 1.6 / 2.3) / 2
    assert expected_macro_f1(proba) == pytest.approx(expected)
    # a third type of the task that the learner never met counts as missed
    assert expected_macro_f1(proba, n_types=3) == pytest.approx(expected * 2 / 3)
    assert expected_macro_f1(proba, n_types=1) == pytest.approx(expected)


def test_estimate_matches_the_truth_of_a_calibrated_model():
    """Labels drawn from the model's own probabilities: the estimate is what they give."""
    rng = np.random.default_rng(1)
    n, k = 40_000, 3
    proba = rng.dirichlet(np.full(k, 0.4), size=n)
    drawn = (rng.random(n)[:, None] > proba.cumsum(1)).sum(1)
    true_f1 = f1_score(drawn, proba.argmax(1), average="macro")
    assert expected_macro_f1(proba) == pytest.approx(true_f1, abs=0.01)


def test_estimate_is_nan_without_two_types_or_cells():
    assert math.isnan(expected_macro_f1(np.ones((5, 1))))
    assert math.isnan(expected_macro_f1(np.zeros((0, 3))))


def test_sample_is_fixed_and_bounded():
    assert list(monitor_sample(5)) == [0, 1, 2, 3, 4]
    sample = monitor_sample(1000, max_cells=100)
    assert len(sample) == 100 == len(np.unique(sample)) and np.all(np.diff(sample) > 0)
    assert np.array_equal(sample, monitor_sample(1000, max_cells=100))


# -- the rule ---------------------------------------------------------------------------------
def test_agreement_is_kappa_and_nan_without_a_previous_round():
    assert math.isnan(prediction_agreement(None, np.array(["a", "b"])))
    assert prediction_agreement(np.array(["a", "b", "a"]), np.array(["a", "b", "a"])) == 1.0
    assert prediction_agreement(np.array(["a", "a"]), np.array(["a", "a"])) == 1.0
    assert prediction_agreement(np.array(["a", "b"]), np.array(["b", "a"])) < 0


def test_rule_stops_on_a_planted_plateau_and_not_while_predictions_change():
    rng = np.random.default_rng(0)
    n, k = 500, 3
    monitor = StoppingMonitor(n)
    labeled = np.zeros(n, dtype=bool)
    stops = []
    codes = rng.integers(k, size=n)
    for round_ in range(10):
        # rounds 1-4: a tenth of the calls change; from round 5 on, none
        if 1 <= round_ <= 4:
            flip = rng.choice(n, n // 10, replace=False)
            codes[flip] = (codes[flip] + 1) % k
        proba = 0.1 + 0.7 * one_hot(codes, k)
        record = monitor.update(proba, np.array(["a", "b", "c"]), labeled)
        stops.append(record["stop"])
        if round_ == 0:
            assert math.isnan(record["agreement"])
        elif round_ <= 4:
            assert record["agreement"] < 0.9
        else:
            assert record["agreement"] == 1.0
    # stable from round 5 on: the third stable round in a row is round 7, and it stays said
    assert stops == [False] * 7 + [True] * 3


def test_rule_needs_a_window_of_stable_rounds_in_a_row():
    rule = StoppingRule(kappa=0.99, window=3)
    assert not rule.says_stop([math.nan, 1.0, 1.0])
    assert not rule.says_stop([1.0, 1.0, 0.98, 1.0, 1.0])
    assert rule.says_stop([math.nan, 0.995, 1.0, 0.99])
    assert rule.stops([math.nan, 1.0, 1.0, 1.0, 0.5]) == [False, False, False, True, True]
    assert rule.stable_rounds([1.0, None, 1.0]) == 1
    with pytest.raises(ValueError, match="kappa"):
        StoppingRule(kappa=1.5)
    with pytest.raises(ValueError, match="window"):
        StoppingRule(window=0)


# -- where they show --------------------------------------------------------------------------
def test_simulate_results_carry_the_estimate_the_agreement_and_the_stop():
    table = simulate(
        make_counts(n_cells=150, n_genes=300),
        label_key="cell_type",
        report=False,
        **{**FAST, "strategies": ["random"], "n_rounds": 3},
    )
    runs = table[table.strategy != "ceiling"]
    assert runs["estimated_f1"].between(0, 1).all()
    assert math.isnan(runs["agreement"].iloc[0]) and runs["agreement"].iloc[1:].between(-1, 1).all()
    assert runs["stop"].dtype == bool and runs["stop"].is_monotonic_increasing
    ceiling = table[table.strategy == "ceiling"]
    assert ceiling["estimated_f1"].isna().all() and ceiling["agreement"].isna().all()
    assert not ceiling["stop"].astype(bool).any()


@pytest.fixture(scope="module")
def adata():
    return make_counts(n_cells=150, n_genes=300, n_types=3)


def _label_some(session, adata, n_per_type: int, seed: int = 0) -> None:
    truth = adata.obs["cell_type"].astype(str)
    rng = np.random.default_rng(seed)
    answered = set(session.labels()["cell"])
    rows = []
    for t in sorted(truth.unique()):
        free = [c for c in truth.index[truth == t] if c not in answered]
        rows += [(str(c), t) for c in rng.choice(free, n_per_type, replace=False)]
    session.answer_many(rows)


def test_session_status_carries_the_estimate_and_suggests_stopping(adata, tmp_path):
    # a deterministic learner: on planted types its calls stop changing at once
    with open_session(adata, tmp_path / "s.scactive", model="logreg-pca") as session:
        before = session.status()["estimate"]
        assert before["estimated_f1"] is None and not before["stop"]  # nothing to estimate
        _label_some(session, adata, 3)
        result = session.train()
        assert 0 < result["estimated_f1"] <= 1 and result["agreement"] is None
        assert not result["stop"]
        for seed in (1, 2, 3):
            _label_some(session, adata, 1, seed=seed)
            session.train()
        status = session.status()
        history = status["cv_history"]
        assert [r["agreement"] is None for r in history] == [True, False, False, False]
        assert all(0 < r["estimated_f1"] <= 1 for r in history)
        estimate = status["estimate"]
        assert estimate["estimated_f1"] == history[-1]["estimated_f1"]
        assert estimate["n_types"] == 3 and estimate["window"] == 3
        assert estimate["stable_rounds"] == 3 and estimate["stop"] and history[-1]["stop"]


def test_a_session_file_of_schema_1_opens_and_gains_the_columns(adata, tmp_path):
    path = tmp_path / "old.scactive"
    with open_session(adata, path, model="logreg-pca") as session:
        _label_some(session, adata, 3)
        session.train()
    with closing(sqlite3.connect(path)) as conn:  # as scactive wrote it before the estimate
        for column in ("estimated_f1", "agreement", "stop"):
            conn.execute(f"ALTER TABLE rounds DROP COLUMN {column}")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    with open_session(adata, path, model="logreg-pca") as session:
        history = session.status()["cv_history"]
        assert len(history) == 1 and history[0]["estimated_f1"] is None
        assert not session.status()["estimate"]["stop"]
        _label_some(session, adata, 1)
        assert session.train()["estimated_f1"] > 0
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_app_state_carries_the_estimate(adata, tmp_path):
    from starlette.testclient import TestClient

    from scactive.app._server import create_app

    local = "http://127.0.0.1:8765"
    with open_session(adata, tmp_path / "s.scactive", model="logreg-pca") as session:
        _label_some(session, adata, 3)
        session.train()
        app = create_app(session, batch_size=6)
        app.state.trainer.wait(300)
        with TestClient(app, base_url=local, headers={"Origin": local}) as client:
            state = client.get("/api/state").json()
    assert 0 < state["estimate"]["estimated_f1"] <= 1
    assert state["estimated_f1_history"] == [state["estimate"]["estimated_f1"]]
    assert state["estimate"]["stop"] is False and state["estimate"]["agreement"] is None
