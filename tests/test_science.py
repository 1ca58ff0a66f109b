"""The methods against their baselines, on planted data hard enough to tell them apart.

The planted pool: 6 types of very unequal size (40% down to 3%), each set apart by 8 marker
genes at 4x, among 200 genes with cell-to-cell depth varying 3-fold. A random 12-cell start
misses types, and a plain learner is far from its ceiling for several rounds: there, choosing
the cells must pay, seed after seed. Each test compares paired seeds (same split, same start),
and would fail with the method replaced by its baseline (the difference would be 0).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scactive

SEEDS = 6
FAST = dict(
    report=False, progress=False, ceiling=False, min_genes=0, n_top_genes=200, n_pcs=20
)  # fmt: skip


def imbalanced(seed: int = 0, n: int = 800, n_genes: int = 200) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    shares = np.array([0.40, 0.25, 0.15, 0.10, 0.07, 0.03])
    types = rng.choice(len(shares), n, p=shares)
    rates = np.tile(rng.gamma(2.0, 0.5, size=n_genes), (len(shares), 1))
    for t in range(len(shares)):
        rates[t, 8 * t : 8 * t + 8] *= 4
    counts = rng.poisson(rates[types] * rng.uniform(0.5, 1.5, size=(n, 1)))
    return ad.AnnData(
        sp.csr_matrix(counts.astype(np.float32)),
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical([f"type{t}" for t in types])},
            index=[f"cell{i}" for i in range(n)],
        ),
        var=pd.DataFrame(index=[f"G{i}" for i in range(n_genes)]),
    )


@pytest.fixture(scope="module")
def curves() -> pd.DataFrame:
    """Curve area (mean macro-F1 over rounds 0-8) per strategy and seed, logreg-pca."""
    results = scactive.simulate(
        imbalanced(),
        label_key="cell_type",
        models=["logreg-pca"],
        strategies=["random", "entropy", "margin", "typiclust", "maxherding"],
        batch_sizes=[6],
        seeds=SEEDS,
        n_rounds=8,
        initial=12,
        **FAST,
    )
    return results.groupby(["strategy", "seed"])["macro_f1"].mean().unstack("strategy")


@pytest.mark.parametrize("strategy", ["entropy", "margin", "typiclust", "maxherding"])
def test_uncertainty_and_typicality_beat_random_in_curve_area_seed_by_seed(curves, strategy):
    gain = curves[strategy] - curves["random"]
    assert (gain > 0).sum() >= SEEDS - 1, gain.round(3).to_dict()
    assert gain.mean() > 0.03, gain.round(3).to_dict()


def test_the_cold_start_beats_a_random_start_at_20_labels():
    first = {}
    for start in ("random", "cold-start"):
        results = scactive.simulate(
            imbalanced(),
            label_key="cell_type",
            models=["logreg-pca"],
            strategies=["random"],
            batch_sizes=[6],
            seeds=SEEDS,
            n_rounds=0,
            initial=20,
            initial_strategy=start,
            **FAST,
        )
        first[start] = results.groupby("seed")[["macro_f1", "n_types_found"]].first()
    cold, random = first["cold-start"], first["random"]
    assert (cold["n_types_found"] >= random["n_types_found"]).all()
    assert cold["n_types_found"].mean() > random["n_types_found"].mean()
    gain = cold["macro_f1"] - random["macro_f1"]
    assert (gain > 0).sum() >= SEEDS - 2 and gain.mean() > 0.03, gain.round(3).to_dict()
