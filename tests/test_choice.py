"""The data-chosen learner (``auto``): planted data decide which representation wins."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import f1_score

from scactive.models import load_model, make_learner, save_model
from scactive.models._persist import TrainedModel
from scactive.pp import FeatureSpace


def planted(kind: str, seed: int, n: int = 600, n_genes: int = 300):
    """Log-normalised cells whose types differ where one representation sees them.

    ``fine``: two lineages apart on 40 genes (the main axis), and within each two subtypes
    that differ only in 3 genes each, of low expression: the top PCs miss them, the genes
    hold them. ``xor``: two programs of 30 genes each, on or off at random; the type is
    whether exactly one is on, which no linear model of the genes can tell, and an MLP on the
    PCs (the programs are the main axes) can.
    """
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 0.5, size=n_genes)
    rates = np.tile(base, (n, 1)) * rng.uniform(0.7, 1.3, size=(n, 1))
    if kind == "fine":
        types = rng.integers(0, 4, n)
        rates[types // 2 == 1, :40] *= 4
        for t in range(4):
            rates[types == t, 200 + 3 * t : 203 + 3 * t] += 3
    else:
        a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
        rates[a == 1, :30] *= 4
        rates[b == 1, 30:60] *= 4
        types = a ^ b
    counts = rng.poisson(rates).astype(np.float32)
    log = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4).astype(np.float32)
    adata = ad.AnnData(sp.csr_matrix(log))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    features = FeatureSpace(n_top_genes=n_genes, n_pcs=20, min_cells=1).fit(adata)
    return features, features.transform(adata), np.array([f"t{t}" for t in types])


def split(n: int, n_labeled: int, seed: int):
    labeled = np.random.default_rng(seed).choice(n, n_labeled, replace=False)
    return labeled, np.setdiff1d(np.arange(n), labeled)


def score(learner, X, y, rest) -> float:
    return f1_score(y[rest], learner.predict(X[rest]), average="macro")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_types_outside_the_top_pcs_choose_the_gene_level_model(seed):
    features, X, y = planted("fine", seed)
    labeled, rest = split(len(y), 300, seed)
    auto = make_learner("auto", features, rng=seed).fit(X[labeled], y[labeled])
    genes = make_learner("logreg-log", features, rng=seed).fit(X[labeled], y[labeled])
    pca = make_learner("mlp2", features, rng=seed).fit(X[labeled], y[labeled])
    assert auto.choice_ == "logreg-log", auto.cv_scores_
    assert score(auto, X, y, rest) == pytest.approx(score(genes, X, y, rest), abs=1e-9)
    assert score(auto, X, y, rest) > score(pca, X, y, rest) + 0.03  # the choice matters


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_types_the_pca_learner_sees_and_a_linear_model_cannot_choose_mlp2(seed):
    features, X, y = planted("xor", seed)
    labeled, rest = split(len(y), 150, seed)
    auto = make_learner("auto", features, rng=seed).fit(X[labeled], y[labeled])
    genes = make_learner("logreg-log", features, rng=seed).fit(X[labeled], y[labeled])
    assert auto.choice_ == "mlp2", auto.cv_scores_
    assert score(auto, X, y, rest) > 0.95 > 0.7 > score(genes, X, y, rest)


def test_too_few_labels_per_type_keep_the_first_candidate_without_cross_validation():
    features, X, y = planted("fine", 0)
    labeled = np.concatenate([np.flatnonzero(y == t)[:2] for t in np.unique(y)])
    auto = make_learner("auto", features, rng=0).fit(X[labeled], y[labeled])
    assert auto.choice_ == "mlp2" and auto.cv_scores_ == {}


def test_the_choice_reads_only_the_labeled_cells():
    features, X, y = planted("fine", 0)
    labeled, rest = split(len(y), 300, 0)
    first = make_learner("auto", features, rng=0).fit(X[labeled], y[labeled])
    shuffled = y.copy()
    shuffled[rest] = np.random.default_rng(1).permutation(y[rest])  # other labels for the rest
    second = make_learner("auto", features, rng=0).fit(X[labeled], shuffled[labeled])
    assert (first.choice_, first.cv_scores_) == (second.choice_, second.cv_scores_)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def test_mc_dropout_comes_from_the_mlp_whatever_the_choice(tmp_path):
    features, X, y = planted("fine", 0)
    labeled, _ = split(len(y), 300, 0)
    auto = make_learner("auto", features, rng=0).fit(X[labeled], y[labeled])
    assert auto.choice_ == "logreg-log"
    draws = auto.sample_proba(X[:50], 5, rng=0)
    assert draws.shape == (5, 50, 4) and not np.allclose(draws[0], draws[1])
    assert auto.hidden_activations(X[:50]).shape == (50, 256)
    loaded = load_model(save_model(TrainedModel(auto, features), tmp_path / "auto.safetensors"))
    assert loaded.learner.choice_ == "logreg-log"
    assert loaded.learner.features is loaded.features  # written once, shared again
    np.testing.assert_array_equal(loaded.learner.predict_proba(X), auto.predict_proba(X))
