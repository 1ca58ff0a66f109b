"""Every registered strategy obeys one contract; scores and selectors have planted answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from scactive import InputError
from scactive.models import MLPClassifier
from scactive.strategies import (
    STRATEGIES,
    bald_scores,
    entropy_scores,
    get_strategy,
    kmeans_one_per_cluster,
    least_confidence_scores,
    margin_scores,
    top_k,
)
from strategy_contract import check_strategy_contract


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 4, size=(3, 20))
    y = np.repeat(np.arange(3), 40)
    X = (centers[y] + rng.normal(size=(120, 20))).astype(np.float32)
    labeled = np.zeros(120, bool)
    labeled[rng.choice(120, 15, replace=False)] = True
    learner = MLPClassifier(hidden=(16,), min_steps=50, random_state=0)
    learner.fit(X[labeled], y[labeled])
    return learner, X, labeled


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_contract(name, fitted):
    learner, X, labeled = fitted
    check_strategy_contract(get_strategy(name), learner, X, labeled)


def test_unknown_strategy_lists_valid_names():
    with pytest.raises(InputError, match="Did you mean 'entropy'.*'wkmc'"):
        get_strategy("entropi")


def test_mc_strategies_refuse_learner_without_sampling(fitted):
    _, X, labeled = fitted
    y = np.arange(len(X)) % 3
    logreg = LogisticRegression().fit(X[labeled], y[labeled])
    with pytest.raises(InputError, match="sample_proba"):
        get_strategy("qbc")(logreg, X, labeled=labeled, batch_size=3, rng=0)


def test_uniform_row_has_highest_entropy():
    proba = np.array([[0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0], [1, 0, 0]])
    scores = entropy_scores(proba)
    assert np.argmax(scores) == 1
    assert scores[1] == pytest.approx(np.log(3))
    assert scores[3] == pytest.approx(0, abs=1e-9)


def test_margin_and_least_confidence_planted():
    proba = np.array([[0.5, 0.5, 0.0], [0.8, 0.1, 0.1], [0.4, 0.3, 0.3]])
    np.testing.assert_allclose(margin_scores(proba), [1.0, 0.3, 0.9])
    np.testing.assert_allclose(least_confidence_scores(proba), [0.5, 0.2, 0.6])


def test_bald_zero_when_draws_agree_and_high_when_they_disagree():
    agree = np.tile(np.array([[0.7, 0.2, 0.1]]), (10, 4, 1))
    np.testing.assert_allclose(bald_scores(agree), 0, atol=1e-9)
    disagree = np.zeros((10, 1, 2))
    disagree[::2, 0, 0] = 1
    disagree[1::2, 0, 1] = 1
    assert bald_scores(disagree)[0] == pytest.approx(np.log(2), rel=1e-6)


def test_top_k_picks_highest_and_breaks_ties_by_rng():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.2])
    assert set(top_k(scores, 2, np.random.default_rng(0))) == {1, 3}
    tied = np.ones(100)
    a = top_k(tied, 5, np.random.default_rng(1))
    b = top_k(tied, 5, np.random.default_rng(2))
    assert not np.array_equal(a, b)


def test_kmeans_picks_cover_well_separated_blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 50, size=(7, 5))
    blob = np.repeat(np.arange(7), [200, 10, 50, 30, 120, 15, 75])
    points = centers[blob] + rng.normal(size=(len(blob), 5))
    picks = kmeans_one_per_cluster(points, 7, rng)
    assert len(np.unique(picks)) == 7
    assert sorted(blob[picks]) == list(range(7))


def test_diversity_uses_embedding(fitted):
    learner, X, labeled = fitted
    # an embedding in which the unlabeled cells form two far-apart groups
    embedding = np.zeros((len(X), 2))
    embedding[::2, 0] = 100.0
    picks = get_strategy("diversity")(
        learner, X, labeled=labeled, batch_size=2, rng=0, embedding=embedding
    )
    assert {p % 2 for p in picks} == {0, 1}


def test_wkmc_picks_among_most_uncertain(fitted):
    learner, X, labeled = fitted
    candidates = np.flatnonzero(~labeled)
    entropy = entropy_scores(learner.predict_proba(X[candidates]))
    shortlist = set(candidates[np.argsort(-entropy)[: 5 * 4]])
    picks = get_strategy("wkmc")(learner, X, labeled=labeled, batch_size=4, rng=0)
    assert set(picks) <= shortlist


@pytest.mark.parametrize("name", ["qbc", "bald", "diversity"])
def test_costly_strategies_choose_among_a_sample_of_a_large_pool(name, fitted):
    learner, X, labeled = fitted
    embedding = X[:, :5].copy()
    unlabeled = np.flatnonzero(~labeled)
    kwargs = dict(batch_size=6, embedding=embedding)
    full = get_strategy(name, max_candidates=None)
    # a pool within the limit is not sampled: the picks it always gave
    roomy = get_strategy(name, max_candidates=len(unlabeled))
    np.testing.assert_array_equal(
        roomy(learner, X, labeled=labeled, rng=3, **kwargs),
        full(learner, X, labeled=labeled, rng=3, **kwargs),
    )
    # above it: the full strategy run on a random sample of the unlabeled cells
    picks = get_strategy(name, max_candidates=40)(learner, X, labeled=labeled, rng=3, **kwargs)
    rng = np.random.default_rng(3)
    sample = np.sort(rng.choice(unlabeled, 40, replace=False))
    outside = ~np.isin(np.arange(len(X)), sample)
    expected = full(learner, X, labeled=outside, rng=rng, **kwargs)
    np.testing.assert_array_equal(picks, expected)
    assert np.isin(picks, sample).all() and len(set(picks)) == 6


def test_cold_start_clusters_the_labeled_cells_and_a_sample_of_the_unlabeled(fitted):
    _, X, labeled = fitted
    embedding = X[:, :5].copy()
    unlabeled = np.flatnonzero(~labeled)
    kwargs = dict(batch_size=6, embedding=embedding)
    full = get_strategy("cold-start", max_candidates=None)
    roomy = get_strategy("cold-start", max_candidates=len(unlabeled))
    np.testing.assert_array_equal(
        roomy(None, X, labeled=labeled, rng=3, **kwargs),
        full(None, X, labeled=labeled, rng=3, **kwargs),
    )
    picks = get_strategy("cold-start", max_candidates=40)(None, X, labeled=labeled, rng=3, **kwargs)
    rng = np.random.default_rng(3)
    sample = np.sort(rng.choice(unlabeled, 40, replace=False))
    seen = np.sort(np.concatenate([np.flatnonzero(labeled), sample]))
    expected = full(
        None, X[seen], labeled=labeled[seen], rng=rng, batch_size=6, embedding=embedding[seen]
    )
    np.testing.assert_array_equal(picks, seen[expected])


def test_uncertainty_is_the_paper_name_of_entropy():
    from scactive.bench import GridOptions

    strategy = get_strategy("uncertainty")
    assert strategy == get_strategy("entropy")
    options = GridOptions(strategies=("uncertainty", "random", "entropy"))
    assert options.strategies == ("entropy", "random")


def _three_blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [30.0, 0.0], [0.0, 30.0]])
    group = np.repeat(np.arange(3), n)
    return (centres[group] + rng.normal(size=(3 * n, 2))).astype(np.float32), group


@pytest.mark.parametrize("name", ["typiclust", "probcover", "maxherding", "coreset"])
def test_typicality_strategies_cover_every_blob_from_no_label(name):
    X, group = _three_blobs()
    labeled = np.zeros(len(X), bool)
    if name == "coreset":  # core-set needs a labeled cell to measure distances from
        labeled[0] = True
    picks = get_strategy(name)(None, X, labeled=labeled, batch_size=3, rng=0, embedding=X)
    covered = set(group[picks]) | ({0} if name == "coreset" else set())
    assert covered == {0, 1, 2}, (name, group[picks])


def test_coreset_asks_about_the_cells_far_from_every_labeled_one():
    X, group = _three_blobs()
    labeled = group == 0  # the first blob is labeled
    picks = get_strategy("coreset")(None, X, labeled=labeled, batch_size=2, rng=0, embedding=X)
    assert set(group[picks]) == {1, 2}


def test_typiclust_picks_a_typical_cell_not_an_outlier():
    X, group = _three_blobs()
    X[5] = [8.0, 8.0]  # an outlier of blob 0
    labeled = np.zeros(len(X), bool)
    picks = get_strategy("typiclust")(None, X, labeled=labeled, batch_size=3, rng=0, embedding=X)
    assert 5 not in picks
    centre = X[group == 0].mean(0)
    pick0 = picks[group[picks] == 0][0]
    assert np.linalg.norm(X[pick0] - centre) < 1.5


def _mean_distance_to_nearest(points: np.ndarray, k: int) -> np.ndarray:
    """Each point's mean distance to its ``k`` nearest other points, by brute force."""
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    return np.sort(distances, axis=1)[:, 1 : k + 1].mean(axis=1)


def test_typiclust_picks_the_densest_point_of_each_planted_cluster():
    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [40.0, 0.0], [0.0, 40.0]])
    group = np.repeat(np.arange(3), [90, 50, 25])
    X = centres[group] + rng.normal(size=(len(group), 2)) * np.array([3.0, 1.0, 2.0])[group, None]
    labeled = np.zeros(len(X), bool)
    picks = get_strategy("typiclust")(None, X, labeled=labeled, batch_size=3, rng=0, embedding=X)
    for blob in range(3):  # scikit-activeml's typicality: the mean distance to 5 neighbours
        members = np.flatnonzero(group == blob)
        densest = members[np.argmin(_mean_distance_to_nearest(X[members], 5))]
        assert densest in picks, (blob, picks)


def test_coreset_picks_the_farthest_point_then_the_farthest_from_both():
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, size=(60, 2))
    X[0] = [0.0, 0.0]  # the labeled cell
    X[17] = [50.0, 0.0]  # the farthest from it
    X[33] = [-30.0, 0.0]  # the farthest from it and from X[17]
    labeled = np.arange(60) == 0
    picks = get_strategy("coreset")(None, X, labeled=labeled, batch_size=2, rng=0, embedding=X)
    assert list(picks) == [17, 33]


def test_hybrid_switches_from_typical_to_uncertain_cells_by_labels_per_type(fitted):
    learner, X, labeled = fitted  # 15 labeled cells of 3 types
    kwargs = dict(batch_size=4, embedding=X[:, :5].copy())

    def picks(name, **params):
        return get_strategy(name, **params)(learner, X, labeled=labeled, rng=1, **kwargs)

    np.testing.assert_array_equal(picks("hybrid", per_type=6), picks("maxherding"))  # 15 < 18
    np.testing.assert_array_equal(picks("hybrid", per_type=5), picks("bald"))  # 15 >= 15


class _PlantedLearner:
    """Confident on the first 50 cells, unsure on three cells that point three ways."""

    classes_ = np.array([0, 1, 2])

    def predict_proba(self, X):
        proba = np.tile([1.0, 0.0, 0.0], (len(X), 1))
        proba[X[:, 3] > 0] = [0.4, 0.3, 0.3]
        return proba

    def hidden_activations(self, X):
        return X[:, :3]


def test_badge_gradient_is_zero_for_a_sure_call_and_grows_with_doubt():
    from scactive.strategies import gradient_embedding

    proba = np.array([[1.0, 0.0], [0.5, 0.5]])
    hidden = np.array([[2.0, 1.0], [2.0, 1.0]])
    np.testing.assert_allclose(
        gradient_embedding(proba, hidden), [[0, 0, 0, 0], [-1, -0.5, 1, 0.5]]
    )


@pytest.mark.parametrize("seed", range(5))
def test_badge_asks_about_every_unsure_cell_and_one_sure_cell_at_most(seed):
    X = np.zeros((53, 4), np.float32)
    X[:, :3] = 1.0
    X[50:, :3] = 5 * np.eye(3)  # the unsure cells, in three directions
    X[50:, 3] = 1.0
    picks = get_strategy("badge")(
        _PlantedLearner(), X, labeled=np.zeros(53, bool), batch_size=4, rng=seed
    )
    assert {50, 51, 52} <= set(picks)
    assert len(set(picks)) == 4


def test_badge_reads_the_mlps_last_hidden_layer(fitted):
    learner, X, _ = fitted
    hidden = learner.hidden_activations(X)
    assert hidden.shape == (len(X), 16) and (hidden >= 0).all()  # after ReLU
    logits = (
        hidden @ learner.network_.head.weight.detach().numpy().T
        + learner.network_.head.bias.detach().numpy()
    )
    np.testing.assert_allclose(
        np.exp(logits) / np.exp(logits).sum(1, keepdims=True), learner.predict_proba(X), atol=1e-5
    )


def test_badge_embeds_a_sample_when_the_gradients_would_be_too_wide(fitted, monkeypatch):
    from scactive.strategies import _badge

    learner, X, labeled = fitted
    monkeypatch.setattr(_badge, "EMBEDDING_VALUES", 16 * 3 * 30)  # 30 cells of 16 units, 3 types
    seen = []
    original = type(learner).hidden_activations
    monkeypatch.setattr(
        type(learner),
        "hidden_activations",
        lambda self, X: seen.append(len(X)) or original(self, X),
    )
    picks = get_strategy("badge")(learner, X, labeled=labeled, batch_size=5, rng=0)
    assert seen == [30] and len(set(picks)) == 5 and not labeled[picks].any()
