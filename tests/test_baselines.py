"""Baseline annotators (scmap-cluster, scmap-cell, CHETAH, kNN transfer, logistic regression)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import scipy.sparse as sp

from scactive import InputError
from scactive.models import (
    BASELINE_DESCRIPTIONS,
    BASELINES,
    UNASSIGNED,
    Chetah,
    KNNTransfer,
    ScmapCluster,
    _annotator,
    make_baseline,
)

N_GENES = 400
# One block of 20 marker genes per type, on a weak background (as after selecting variable genes).
TYPES = {f"T{i}": [(20 * i, 20 * i + 20, 1.0)] for i in range(4)}


def log_expression(
    types: dict[str, list[tuple[int, int, float]]], n_per_type: int, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Log-normalised Poisson counts (log1p of counts per 10k), ``n_per_type`` cells per type.

    ``types`` maps a type to its marker blocks ``(start, stop, weight)``: the rate of a marker
    gene is the background plus ``weight`` times the gene's own marker level. The gene-wise
    background and marker levels are the same for every call; ``seed`` draws the cells.
    """
    genes = np.random.default_rng(12345)
    background = genes.gamma(2.0, 0.025, size=N_GENES)
    level = 10.0 * genes.lognormal(0.0, 0.5, size=N_GENES)
    rng = np.random.default_rng(seed)
    X, y = [], []
    for name, blocks in types.items():
        rate = background.copy()
        for start, stop, weight in blocks:
            rate[start:stop] += weight * level[start:stop]
        counts = rng.poisson(rate * rng.uniform(7, 13, size=(n_per_type, 1)))
        X.append(np.log1p(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) * 1e4))
        y += [name] * n_per_type
    return np.vstack(X).astype(np.float32), np.array(y)


@cache
def four_types() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = log_expression(TYPES, 50, seed=1)
    X_test, y_test = log_expression(TYPES, 40, seed=2)
    return X, y, X_test, y_test


@cache
def fitted(name: str):
    X, y, _, _ = four_types()
    return make_baseline(name).fit(X, y)


def test_registry_lists_every_baseline_with_a_description():
    assert set(BASELINES) == {"scmap-cluster", "scmap-cell", "chetah", "knn-transfer", "logreg-ovr"}
    assert set(BASELINE_DESCRIPTIONS) == set(BASELINES)
    assert all(BASELINE_DESCRIPTIONS.values())
    with pytest.raises(InputError, match="Valid methods: .*'scmap-cell'") as err:
        make_baseline("scmap")
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_classifies_held_out_cells(name):
    _, _, X_test, y_test = four_types()
    assert (fitted(name).predict(X_test) == y_test).mean() >= 0.95


@pytest.mark.parametrize("name", BASELINES)
def test_outputs_follow_the_api(name):
    _, _, X_test, _ = four_types()
    model = fitted(name)
    assert list(model.classes_) == ["T0", "T1", "T2", "T3"]
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 4)
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    labels = model.predict(X_test)
    assert labels.dtype == object and labels.shape == (len(X_test),)
    calls = set(model.classes_) | {UNASSIGNED} | set(getattr(model, "nodes_", {}))
    assert set(labels) <= calls
    # predict_proba ignores any rejection rule: its top class is right
    assert (model.classes_[proba.argmax(axis=1)] == four_types()[3]).mean() >= 0.95
    assert model.predict_score(X_test).shape == (len(X_test),)
    assert model.predict(X_test[:0]).shape == (0,)
    assert model.predict_proba(X_test[:0]).shape == (0, 4)


@pytest.mark.parametrize("name", BASELINES)
def test_sparse_input_and_chunks_give_the_same_answers(name, monkeypatch):
    X, y, X_test, _ = four_types()
    dense = fitted(name)
    monkeypatch.setattr(_annotator, "CHUNK_SIZE", 50)
    sparse = make_baseline(name).fit(sp.csr_matrix(X), y)
    assert (sparse.predict(sp.csr_matrix(X_test)) == dense.predict(X_test)).all()
    np.testing.assert_allclose(sparse.predict_proba(X_test), dense.predict_proba(X_test), atol=1e-5)
    np.testing.assert_allclose(
        sparse.predict_score(X_test), dense.predict_score(X_test), atol=1e-5, equal_nan=True
    )


@pytest.mark.parametrize("name", BASELINES)
def test_bad_input_is_refused_with_a_clear_message(name):
    X, y, X_test, _ = four_types()
    model = fitted(name)
    with pytest.raises(ValueError, match="X has 399 genes.*fitted on 400 genes"):
        model.predict(X_test[:, :-1])
    with pytest.raises(ValueError, match="fitted on 400 genes"):
        model.predict_proba(X_test[:, 1:])
    with pytest.raises(ValueError, match="at least 2 cell types; received 1"):
        make_baseline(name).fit(X[y == "T0"], y[y == "T0"])
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values .*cell 3, gene 5"):
        make_baseline(name).fit(bad, y)
    with pytest.raises(ValueError, match="one label per cell"):
        make_baseline(name).fit(X, y[:-1])


def test_reserved_names_are_refused():
    X, y, _, _ = four_types()
    renamed = np.where(y == "T0", UNASSIGNED, y)
    with pytest.raises(ValueError, match="no reference type may be called 'unassigned'"):
        ScmapCluster().fit(X, renamed)
    make_baseline("logreg-ovr").fit(X, renamed)  # no rejection rule: the name is just a label
    with pytest.raises(ValueError, match="rename.*Node1"):
        Chetah().fit(X, np.where(y == "T0", "Node1", y))


@pytest.mark.parametrize("name", ["knn-transfer", "logreg-ovr"])
def test_random_state_fixes_the_result(name):
    X, y, X_test, _ = four_types()
    a = make_baseline(name, rng=7).fit(X, y).predict_proba(X_test)
    b = make_baseline(name, rng=7).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    seeded = make_baseline(name, rng=np.random.default_rng(7))
    assert seeded.random_state == make_baseline(name, rng=7).random_state
    assert make_baseline(name, rng=7, random_state=3).random_state == 3
    assert make_baseline(name).random_state == 0


@pytest.mark.parametrize("name", ["scmap-cluster", "scmap-cell"])
def test_scmap_leaves_a_type_missing_from_the_reference_unassigned(name):
    X, y, X_test, y_test = four_types()
    in_reference = y != "T3"
    model = make_baseline(name).fit(X[in_reference], y[in_reference])
    labels = model.predict(X_test)
    novel = y_test == "T3"
    assert (labels[novel] == UNASSIGNED).mean() >= 0.9
    assert (labels[~novel] == y_test[~novel]).mean() >= 0.95


def test_knn_transfer_threshold_leaves_a_missing_type_unassigned():
    X, y, X_test, y_test = four_types()
    in_reference = y != "T3"
    model = make_baseline("knn-transfer", threshold=0.8).fit(X[in_reference], y[in_reference])
    labels = model.predict(X_test)
    novel = y_test == "T3"
    assert (labels[novel] == UNASSIGNED).mean() >= 0.9
    assert (labels[~novel] == y_test[~novel]).mean() >= 0.95
    without = make_baseline("knn-transfer").fit(X[in_reference], y[in_reference])
    assert UNASSIGNED not in set(without.predict(X_test))


def test_scmap_cluster_rule_on_planted_cells():
    X, y, X_test, _ = four_types()
    model = ScmapCluster().fit(X, y)
    # a cell equal to a centroid: all three measures agree with similarity 1
    labels, score = model.predict(model.centroids_), model.predict_score(model.centroids_)
    assert list(labels) == list(model.classes_)
    np.testing.assert_allclose(score, 1.0)
    # an all-zero cell: cosine and correlations are undefined
    assert model.predict(np.zeros((1, N_GENES)))[0] == UNASSIGNED
    assert np.isnan(model.predict_score(np.zeros((1, N_GENES)))[0])
    # above the best possible similarity nothing is assigned, yet predict_proba still ranks
    strict = ScmapCluster(threshold=1.01).fit(X, y)
    assert set(strict.predict(X_test)) == {UNASSIGNED}
    np.testing.assert_allclose(strict.predict_proba(X_test), model.predict_proba(X_test))


def chetah_reference(n_per_type: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A1 and A2 share 40 marker genes and have 20 of their own each; B and C are apart."""
    return log_expression(
        {
            "A1": [(0, 40, 1.0), (40, 60, 1.0)],
            "A2": [(0, 40, 1.0), (60, 80, 1.0)],
            "B": [(100, 140, 1.0)],
            "C": [(140, 180, 1.0)],
        },
        n_per_type,
        seed=seed,
    )


def test_chetah_stops_cells_between_siblings_at_their_node():
    X, y = chetah_reference(60, seed=1)
    model = Chetah().fit(X, y)
    node = [name for name, types in model.nodes_.items() if types == ["A1", "A2"]]
    assert len(node) == 1 and node[0] != "Node0"
    # halfway between A1 and A2: the shared markers and half of each private block
    hybrid, _ = log_expression({"H": [(0, 40, 1.0), (40, 80, 0.5)]}, 100, seed=5)
    assert (model.predict(hybrid) == node[0]).mean() >= 0.9
    # pure cells reach their leaf (CHETAH leaves a few cells of any type at a node)
    X_test, y_test = chetah_reference(100, seed=2)
    labels = model.predict(X_test)
    assert (labels == y_test).mean() >= 0.95
    for t in ["A1", "A2", "B", "C"]:
        assert (labels[y_test == t] == t).mean() >= 0.9


def test_chetah_tree_names_nodes_top_down():
    X, y = chetah_reference(30, seed=1)
    model = Chetah().fit(X, y)
    assert model.nodes_ == {
        "Node0": ["A1", "A2", "B", "C"],
        "Node1": ["A1", "A2"],
        "Node2": ["B", "C"],
    }
    assert str(model.tree_).splitlines() == [
        "Node0 (stopping here: unassigned): A1, A2, B, C",
        "├── Node1: A1, A2",
        "│   ├── A1",
        "│   └── A2",
        "└── Node2: B, C",
        "    ├── B",
        "    └── C",
    ]
    assert [n.name for n in model.tree_.walk()] == ["Node0", "Node1", "A1", "A2", "Node2", "B", "C"]
    assert set(model.genes_["Node1"]) == {"A1", "A2"}
    # the private markers separate A1 from A2
    assert set(range(40, 80)) <= set(model.genes_["Node1"]["A1"].tolist())


def test_chetah_threshold_bounds():
    X, y = chetah_reference(30, seed=1)
    X_test, _ = chetah_reference(20, seed=2)
    everything = Chetah(threshold=-np.inf).fit(X, y)
    assert set(everything.predict(X_test)) <= set(everything.classes_)
    nothing = Chetah(threshold=2.01).fit(X, y)  # confidence lies in [-2, 2]
    assert set(nothing.predict(X_test)) == {UNASSIGNED}
    scores = everything.predict_score(X_test)
    assert (scores >= -2).all() and (scores <= 2).all()
    # predict_proba's top type is the leaf the walk reaches with no threshold, hybrids included
    hybrid, _ = log_expression({"H": [(0, 40, 1.0), (40, 80, 0.5)]}, 50, seed=5)
    cells = np.vstack([X_test, hybrid])
    top = everything.classes_[everything.predict_proba(cells).argmax(axis=1)]
    assert (top == everything.predict(cells)).all()


def test_logreg_feature_selection_keeps_the_markers():
    X, y, X_test, y_test = four_types()
    model = make_baseline("logreg-ovr", feature_selection=True, top_genes=10).fit(X, y)
    assert len(model.genes_) <= 40
    assert np.isin(model.genes_, np.arange(80)).mean() >= 0.9
    assert (model.predict(X_test) == y_test).mean() >= 0.95
    everything = make_baseline("logreg-ovr", feature_selection=True, top_genes=N_GENES).fit(X, y)
    assert len(everything.genes_) == N_GENES


def test_knn_transfer_small_unbalanced_reference():
    # 4 cells of each type plus 40 more of T0: on PCs fitted to 56 cells, the reference cells
    # sit far out and query cells near the centre; without the unit-length scaling, the big
    # type's cells are the nearest neighbours of many cells of other types
    X, y = log_expression(TYPES, 4, seed=3)
    X_big, y_big = log_expression({"T0": TYPES["T0"]}, 40, seed=4)
    X, y = np.vstack([X, X_big]), np.concatenate([y, y_big])
    X_test, y_test = log_expression(TYPES, 40, seed=5)
    accuracy = {
        l2: np.mean(KNNTransfer(l2_norm=l2).fit(X, y).predict(X_test) == y_test)
        for l2 in (True, False)
    }
    assert accuracy[True] >= 0.95
    assert accuracy[False] < accuracy[True] - 0.1
