"""On real PBMC data (skipped when ``../shared/data`` is absent)."""

from __future__ import annotations

import warnings

import numpy as np

import scactive
from scactive.bench import DataOptions, SeedData, prepare
from scactive.models import make_learner


def test_pbmc3k_whole_pool_mlp_and_small_start(pbmc3k_path):
    adata = scactive.read(pbmc3k_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare(adata, "cell_type", DataOptions())
    assert len(prepared.classes) == 9
    # mitochondrial, ribosomal and hemoglobin genes are gone
    assert not prepared.adata.var_names.str.match(r"^(MT-|RP[SL]\d|HB[AB])").any()
    data = SeedData(prepared, 0, DataOptions(initial=20))
    assert len(data.features.genes_) == 2000
    full = make_learner("mlp2", data.features, rng=0).fit(data.X_pool, data.y_pool)
    accuracy = (full.predict(data.X_val) == data.y_val).mean()
    assert accuracy > 0.88

    results = scactive.simulate(
        adata,
        label_key="cell_type",
        strategies=["entropy"],
        batch_sizes=[9],
        seeds=1,
        n_rounds=3,
        initial=20,
        progress=False,
        ceiling=False,
    )
    assert list(results["n_labeled"]) == [20, 29, 38, 47]
    assert np.isfinite(results["loss"]).all()
