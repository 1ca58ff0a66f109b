"""The MLP learner, presets and persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scactive import InputError
from scactive.models import (
    PRESETS,
    MLPClassifier,
    TrainedModel,
    load_model,
    make_learner,
    save_model,
)
from scactive.pp import FeatureSpace


def blobs(n=150, d=30, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(k, d))
    y = np.array([f"t{i}" for i in rng.integers(k, size=n)])
    X = centers[np.searchsorted(np.unique(y), y)] + rng.normal(size=(n, d))
    return X.astype(np.float32), y


def test_learns_separable_classes_from_few_labels():
    X, y = blobs()
    model = MLPClassifier(random_state=0).fit(X[:12], y[:12])
    assert (model.predict(X[12:]) == y[12:]).mean() > 0.95
    assert model.n_steps_ == 300  # the floor on optimiser steps applies to small sets


def test_predict_proba_columns_follow_classes():
    X, y = blobs()
    model = MLPClassifier(hidden=(32,), min_steps=50, random_state=0).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert list(model.classes_) == ["t0", "t1", "t2"]
    assert (model.classes_[proba.argmax(1)] == model.predict(X)).all()


def test_same_seed_same_model():
    X, y = blobs()
    a = MLPClassifier(min_steps=40, random_state=5).fit(X, y).predict_proba(X)
    b = MLPClassifier(min_steps=40, random_state=5).fit(X, y).predict_proba(X)
    c = MLPClassifier(min_steps=40, random_state=6).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_sample_proba_draws_only_dropout():
    X, y = blobs()
    model = MLPClassifier(hidden=(64, 64, 16), layer_norm=True, min_steps=50, random_state=0)
    model.fit(X, y)
    draws = model.sample_proba(X, 10, rng=0)
    assert draws.shape == (10, len(X), 3)
    assert not np.allclose(draws[0], draws[1])  # dropout active
    np.testing.assert_array_equal(draws, model.sample_proba(X, 10, rng=0))
    # with dropout 0 every draw equals the deterministic prediction
    model.network_.blocks[0][-1].p = 0.0
    for block in model.network_.blocks:
        block[-1].p = 0.0
    np.testing.assert_allclose(
        model.sample_proba(X, 3, rng=1)[2], model.predict_proba(X), atol=1e-6
    )
    assert not model.network_.training


def test_warm_start_continues_from_previous_weights():
    X, y = blobs()
    model = MLPClassifier(min_steps=20, epochs=1, warm_start=True, random_state=0).fit(X, y)
    before = model.network_.head.weight.detach().clone()
    model.fit(X, y)
    after = model.network_.head.weight.detach()
    assert 0 < torch.linalg.norm(after - before) < torch.linalg.norm(before)


def test_paper_preset_uses_sgd_without_step_floor():
    paper = make_learner("mlp2-paper", rng=0)
    assert paper.optimizer == "sgd" and paper.min_steps == 0 and paper.epochs == 20
    assert make_learner("mlp3-ln", _space()[0], rng=0).layer_norm


def _space():
    rng = np.random.default_rng(0)
    import anndata as ad
    import scipy.sparse as sp

    X = sp.csr_matrix(np.log1p(rng.poisson(1.0, size=(80, 60))).astype(np.float32))
    adata = ad.AnnData(X)
    adata.var_names = [f"g{i}" for i in range(60)]
    return FeatureSpace(n_top_genes=40, n_pcs=10).fit(adata), adata


def test_pca_presets_project_genes_through_pool_pca():
    space = _space()
    features, adata = space
    X = features.transform(adata)
    learner = make_learner("mlp2", features, rng=0)
    projected = learner.set_params(hidden=(8,)).fit(X[:20], np.arange(20) % 2)
    z = projected.network_.project(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(z, features.embed(X), atol=1e-4)


def test_every_preset_fits_and_predicts():
    features, adata = _space()
    X = features.transform(adata)
    y = np.array(["a", "b"])[np.arange(len(X)) % 2]
    for name in PRESETS:
        learner = make_learner(name, features, rng=0)
        if hasattr(learner, "min_steps"):
            learner.set_params(min_steps=5, epochs=1)
        proba = learner.fit(X, y).predict_proba(X)
        assert proba.shape == (len(X), 2), name


def test_unknown_model_lists_presets():
    with pytest.raises(InputError, match="Unknown model 'mlp4'.*'mlp2'"):
        make_learner("mlp4")


def test_save_and_load_round_trip(tmp_path):
    features, adata = _space()
    X = features.transform(adata)
    y = np.array(["a", "b"])[np.arange(len(X)) % 2]
    learner = make_learner("mlp2", features, rng=0, min_steps=10).fit(X, y)
    path = save_model(TrainedModel(learner, features), tmp_path / "model.safetensors")
    loaded = load_model(path)
    assert list(loaded.classes) == ["a", "b"]
    assert list(loaded.genes) == list(features.genes_)
    np.testing.assert_allclose(
        loaded.predict_proba(adata).to_numpy(), learner.predict_proba(X), rtol=1e-5
    )
    (tmp_path / "bad.safetensors").write_text("not a model")
    with pytest.raises(InputError, match="not a scactive model"):
        load_model(tmp_path / "bad.safetensors")


def test_schedule_floor_for_small_sets_and_larger_batches_for_large_ones():
    model = MLPClassifier(epochs=20, batch_size=64, min_steps=300, max_steps=600)
    assert model._schedule(20) == (20, 300)  # the floor: 300 full-batch steps
    assert model._schedule(1860) == (64, 600)  # 20 epochs of 64-cell batches
    batch, steps = model._schedule(22_000)  # 20 epochs in about 600 larger steps
    assert batch == 734 and 590 <= steps <= 600
    assert MLPClassifier(max_steps=None)._schedule(22_000) == (64, 20 * 344)


def test_networks_trained_in_threads_give_the_numbers_they_give_alone():
    from concurrent.futures import ThreadPoolExecutor

    from scactive.models import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 30)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)

    def fit(seed):
        learner = MLPClassifier(hidden=(32,), min_steps=200, random_state=seed).fit(X, y)
        return learner.predict_proba(X), learner.sample_proba(X, 5, rng=seed)

    alone = [fit(seed) for seed in range(4)]
    for _ in range(3):
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(fit, range(4)))
        for (p, s), (q, t) in zip(alone, together, strict=True):
            np.testing.assert_array_equal(p, q)
            np.testing.assert_array_equal(s, t)


def test_a_preset_given_its_own_input_reads_it_as_it_is(tmp_path):
    features, adata = _space()
    y = np.array(["a", "b"])[np.arange(adata.n_obs) % 2]
    pca = features.matrix(adata, "pca")
    learner = make_learner("mlp2", features, rng=0, given="pca", min_steps=20)
    assert isinstance(learner, MLPClassifier) and learner.projection is None
    learner.fit(pca, y)
    assert learner.n_features_in_ == pca.shape[1]
    model = TrainedModel(learner, features, "test", "pca")
    np.testing.assert_allclose(model.predict_proba(adata).to_numpy(), learner.predict_proba(pca))
    loaded = load_model(save_model(model, tmp_path / "m.safetensors"))
    assert loaded.input == "pca"
    np.testing.assert_allclose(loaded.predict_proba(adata), model.predict_proba(adata), rtol=1e-5)
    with pytest.raises(ValueError, match="reads the 'pca' matrix"):
        make_learner("mlp2", features, given="log")


def test_shared_input_is_the_one_input_or_the_scaled_genes():
    from scactive.models import learner_input, shared_input

    assert learner_input("mlp2") == "pca" and learner_input("logreg") == "scaled"
    assert shared_input("mlp2", "logreg-pca") == "pca"
    assert shared_input("mlp2", "logreg") == "scaled"
    assert learner_input(MLPClassifier()) == "scaled"


def test_training_work_is_bounded_however_many_cells_are_labeled():
    learner = make_learner("mlp2", _space()[0], rng=0)
    assert learner._schedule(20) == (20, 300)  # few labels: the floor of steps
    assert learner._schedule(1920) == (128, 300)  # 20 epochs up to here
    assert learner._schedule(100_000) == (128, 300)  # then fewer epochs, the same work


def test_mc_draws_of_a_cell_do_not_depend_on_the_other_cells(monkeypatch):
    from scactive.models import _classifier

    X, y = blobs()
    model = MLPClassifier(hidden=(16, 16), min_steps=30, random_state=0).fit(X, y)
    together = model.sample_proba(X, 4, rng=3)
    monkeypatch.setattr(_classifier, "_PREDICT_CHUNK", 7)
    np.testing.assert_allclose(model.sample_proba(X[40:], 4, rng=3), together[:, 40:], atol=1e-6)
    # one mask per draw: each draw is one sub-network, the same units dropped in every cell
    net, generator = model.network_, torch.Generator().manual_seed(0)
    masks = net.draw_masks(generator)
    h = net.first_activation(torch.from_numpy(X))
    dropped = (masks[0] == 0).nonzero().ravel()
    with torch.no_grad():
        zeroed = net.first_activation(torch.from_numpy(X)).clone()
        zeroed[:, dropped] = 0
        np.testing.assert_allclose(
            net.from_first(h, masks).numpy(),
            net.from_first(zeroed, masks).numpy(),
            atol=1e-6,
        )


def test_dropout_keeps_the_mean_and_drops_the_rate():
    from scactive.models._network import Dropout

    layer = Dropout(0.3).train()
    torch.manual_seed(0)
    out = layer(torch.ones(200_000))
    assert abs((out == 0).float().mean().item() - 0.3) < 0.01
    assert abs(out.mean().item() - 1.0) < 0.01
    assert torch.equal(layer.eval()(torch.ones(5)), torch.ones(5))
    with pytest.raises(ValueError, match="dropout rate"):
        Dropout(1.0)
