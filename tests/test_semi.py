"""Semi-supervised learners: they learn from the unlabeled cells the engine gives them."""

from __future__ import annotations

import numpy as np
import pytest

from scactive.loop import Engine, LabelState, SimulatedOracle, active_learning
from scactive.models import LabelSpreading, MLPClassifier, SelfTrainingMLP, make_learner
from scactive.models._one_class import fit_learner, unlabeled_limit, uses_unlabeled
from scactive.models._semi import confident_pseudo_labels
from scactive.pp import FeatureSpace
from scactive.strategies import get_strategy

FAST = dict(hidden=(64,), min_steps=200, max_steps=200, random_state=0)


def clusters(k=4, per=60, d=5, spread=0.6, seed=0):
    """``k`` tight clusters far apart, labeled t0..t{k-1}, and one cell of each to label."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 8, size=(k, d))
    y = np.repeat([f"t{i}" for i in range(k)], per)
    X = (centres[np.repeat(np.arange(k), per)] + rng.normal(0, spread, (k * per, d))).astype(
        np.float32
    )
    return X, y, np.arange(k) * per


def test_label_spreading_recovers_planted_clusters_from_one_label_each():
    X, y, one_each = clusters()
    rest = np.setdiff1d(np.arange(len(X)), one_each)
    model = LabelSpreading().fit(X[one_each], y[one_each], X_unlabeled=X[rest])
    assert (model.predict(X) == y).all()
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert list(model.classes_) == ["t0", "t1", "t2", "t3"]


def test_label_spreading_follows_the_graph_where_nearest_labels_mislead():
    """Two long chains; a labeled end of one chain is nearer the far end of the other: a
    nearest-labeled-cell rule calls that end wrong, spreading along the chain does not."""
    t = np.linspace(0, 10, 40)
    a = np.c_[t, np.zeros_like(t)]
    b = np.c_[t, np.full_like(t, 1.5)]
    X = np.r_[a, b].astype(np.float32)
    y = np.repeat(["a", "b"], 40)
    labeled = np.array([0, 79])  # chain a's left end, chain b's right end
    rest = np.setdiff1d(np.arange(80), labeled)
    spread = LabelSpreading(n_neighbors=4, alpha=0.9, max_iter=1000)
    spread.fit(X[labeled], y[labeled], X_unlabeled=X[rest])
    assert (spread.predict(X) == y).mean() > 0.95
    alone = LabelSpreading(n_neighbors=1).fit(X[labeled], y[labeled])
    assert (alone.predict(X) == y).mean() < 0.8


def test_pseudo_labels_take_the_surest_cells_up_to_a_cap_per_type():
    proba = np.array(
        [[0.95, 0.05], [0.99, 0.01], [0.97, 0.03], [0.5, 0.5], [0.02, 0.98], [0.1, 0.9]]
    )
    y = np.array(["a", "b"])  # one labeled cell of each type
    rows, labels = confident_pseudo_labels(
        proba, y, np.array(["a", "b"]), threshold=0.9, per_class=2
    )
    # "a": the two surest of three (0.99, 0.97); "b": both, 0.90 is at the threshold
    assert rows.tolist() == [1, 2, 4, 5]
    assert labels.tolist() == ["a", "a", "b", "b"]
    rows, _ = confident_pseudo_labels(proba, y, np.array(["a", "b"]), threshold=0.96, per_class=5)
    assert rows.tolist() == [1, 2, 4]


def test_self_training_learns_from_confident_unlabeled_cells():
    X, y, one_each = clusters(k=3, per=80)
    rest = np.setdiff1d(np.arange(len(X)), one_each)
    model = SelfTrainingMLP(**FAST, per_class=20)
    model.fit(X[one_each], y[one_each], X_unlabeled=X[rest])
    assert 0 < model.n_pseudo_ <= 3 * 20
    assert (model.predict(X) == y).mean() > 0.95


def test_self_training_without_unlabeled_cells_is_the_mlp():
    X, y, _ = clusters(k=3)
    plain = MLPClassifier(**FAST).fit(X, y).predict_proba(X)
    model = SelfTrainingMLP(**FAST).fit(X, y)
    assert model.n_pseudo_ == 0
    np.testing.assert_array_equal(model.predict_proba(X), plain)


def test_sample_weight_zero_ignores_a_cell():
    X, y, _ = clusters(k=2, per=40)
    wrong = y.copy()
    wrong[:10] = "t1"  # ten cells of t0 labeled t1, with weight 0
    weight = np.ones(len(y), np.float32)
    weight[:10] = 0
    model = MLPClassifier(**FAST).fit(X, wrong, sample_weight=weight)
    assert (model.predict(X[:10]) == "t0").all()
    unit = MLPClassifier(**FAST).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(
        unit.predict_proba(X), MLPClassifier(**FAST).fit(X, y).predict_proba(X), atol=1e-5
    )


def test_unlabeled_cells_reach_the_learner_through_a_pipeline():
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    counts = rng.poisson(1.0, size=(120, 60)).astype(np.float32)
    counts[:60, :5] += 6
    adata = ad.AnnData(sp.csr_matrix(np.log1p(counts)))
    adata.var_names = [f"g{i}" for i in range(60)]
    features = FeatureSpace(n_top_genes=40, n_pcs=5).fit(adata)
    X = features.transform(adata)
    y = np.repeat(["a", "b"], 60)
    learner = make_learner("spread", features, rng=0)  # on the scaled genes: a pipeline
    assert uses_unlabeled(learner)
    assert unlabeled_limit(learner) == learner.steps[-1][1].max_unlabeled
    labeled = np.array([0, 60])
    fit_learner(learner, X[labeled], y[labeled], unlabeled=X[1:60])
    assert learner.steps[-1][1].model_.X_.shape == (61, 5)  # in the PCA, with the unlabeled
    assert not uses_unlabeled(make_learner("mlp2", features))


def test_engine_gives_a_bounded_sample_of_the_unlabeled_cells():
    X, y, one_each = clusters(k=2, per=50)
    seen = []

    class Recorder(LabelSpreading):
        def fit(self, X, y, X_unlabeled=None):
            seen.append(None if X_unlabeled is None else X_unlabeled.copy())
            return super().fit(X, y, X_unlabeled)

    engine = Engine(X, lambda key: Recorder(max_unlabeled=30))
    state = LabelState(len(X))
    state.add(one_each, y[one_each], round_=0, strategy="initial")
    engine.fit(state, 0)
    engine.fit(state, 1)
    assert seen[0].shape == (30, X.shape[1])
    np.testing.assert_array_equal(seen[0], seen[1])  # the sample depends on the labels only
    labeled_rows = {tuple(r) for r in X[one_each]}
    assert not labeled_rows & {tuple(r) for r in seen[0]}
    seen.clear()
    Engine(X, lambda key: Recorder(max_unlabeled=None)).fit(state, 0)
    assert len(seen[0]) == len(X) - len(one_each)


@pytest.mark.parametrize("model", ["mlp2-self", "spread"])
def test_semi_supervised_presets_run_in_the_loop(model):
    X, y, one_each = clusters(k=3, per=40)
    result = active_learning(
        X,
        SimulatedOracle(y),
        X_val=X,
        y_val=y,
        new_learner=lambda key: make_learner(
            model, None, rng=0, given="pca", **({"min_steps": 60} if model != "spread" else {})
        ),
        strategy=get_strategy("bald" if model == "mlp2-self" else "entropy"),
        strategy_name="test",
        batch_size=3,
        initial=one_each,
        rng=np.random.default_rng(0),
        n_rounds=2,
    )
    assert [r["n_labeled"] for r in result.rounds] == [3, 6, 9]
    assert result.rounds[-1]["macro_f1"] > 0.9
