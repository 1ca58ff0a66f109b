"""Tests of the negative-binomial synthetic data generator (scactive._synthetic)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from scactive._synthetic import CountModel, load_bundled, paper_scale

N_GENES = 500
PHI = 0.5


def _planted_model(library_sd: float = 0.3) -> CountModel:
    """Two types; gene g0 is 10x higher in A than in B; expression spans four decades."""
    levels = np.geomspace(1, 1e-4, N_GENES)
    a, b = levels.copy(), levels.copy()
    b[0] = 0.1  # g0: 10x higher in A
    a[1] = 0.1 * b[1]  # g1: 10x higher in B
    profiles = np.stack([a / a.sum(), b / b.sum()]).astype(np.float32)
    return CountModel(
        cell_types=np.array(["A", "B"]),
        frequencies=np.array([0.5, 0.5], dtype=np.float32),
        profiles=profiles,
        dispersion=np.full(N_GENES, PHI, dtype=np.float32),
        gene_names=np.array([f"g{j}" for j in range(N_GENES)]),
        log_library_mean=np.array([np.log(2000), np.log(1000)], dtype=np.float32),
        log_library_sd=np.array([library_sd, library_sd], dtype=np.float32),
        n_source_genes=N_GENES,
    )


def _planted_counts(n_per_type: int = 400, seed: int = 0) -> ad.AnnData:
    """Counts drawn directly (gamma-Poisson on every entry), independent of CountModel.sample."""
    rng = np.random.default_rng(seed)
    model = _planted_model()
    labels = np.repeat(["A", "B"], n_per_type)
    t = (labels == "B").astype(int)
    library = np.exp(rng.normal(model.log_library_mean[t], 0.3))
    mu = library[:, None] * model.profiles[t].astype(np.float64)
    counts = rng.poisson(rng.gamma(1 / PHI, mu * PHI))
    obs = pd.DataFrame({"cell_type": labels}, index=[f"c{i}" for i in range(len(labels))])
    var = pd.DataFrame(index=model.gene_names)
    return ad.AnnData(sparse.csr_matrix(counts.astype(np.float32)), obs=obs, var=var)


# ----------------------------------------------------------------------------------------- fit
@pytest.mark.parametrize("dispersion", ["zeros", "moments"])
def test_fit_recovers_planted_profiles_dispersion_and_library(dispersion):
    model = CountModel.fit(_planted_counts(), "cell_type", dispersion=dispersion)
    assert list(model.cell_types) == ["A", "B"]
    np.testing.assert_allclose(model.frequencies, [0.5, 0.5])
    truth = _planted_model().profiles
    a, b = model.profiles
    assert truth[0, 0] / truth[1, 0] == pytest.approx(10, rel=0.25)  # 10x before normalising
    assert a[0] / b[0] == pytest.approx(truth[0, 0] / truth[1, 0], rel=0.15)
    assert b[1] / a[1] == pytest.approx(truth[1, 1] / truth[0, 1], rel=0.15)
    np.testing.assert_allclose(model.profiles[:, :10], truth[:, :10], rtol=0.15)
    assert np.all(model.profiles > 0)  # pseudocount: genes never seen are not exactly 0
    np.testing.assert_allclose(model.profiles.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(model.dispersion[:20], PHI, rtol=0.3)  # well-expressed genes
    assert np.all((model.dispersion >= 0.01) & (model.dispersion <= 10))
    np.testing.assert_allclose(model.log_library_mean, np.log([2000, 1000]), atol=0.05)
    np.testing.assert_allclose(model.log_library_sd, 0.3, atol=0.05)
    assert model.profiles.dtype == np.float32 and model.dispersion.dtype == np.float32


def test_fit_filters_genes_and_small_types(caplog):
    adata = _planted_counts(n_per_type=50)
    labels = adata.obs["cell_type"].astype(object).to_numpy()
    labels[:5] = "tiny"
    adata.obs["cell_type"] = labels
    adata.layers["counts"] = adata.X.copy()
    adata.X = sparse.csr_matrix(adata.shape, dtype=np.float32)  # X is not counts; the layer is
    model = CountModel.fit(adata, "cell_type", layer="counts", min_cells_per_gene=5)
    assert list(model.cell_types) == ["A", "B"]
    assert "tiny" in caplog.text
    detected = np.asarray((adata.layers["counts"][5:] > 0).sum(axis=0)).ravel()
    assert model.n_genes == int((detected >= 5).sum()) < N_GENES
    assert model.n_source_genes == N_GENES
    assert model.dropped_profile > 0


@pytest.mark.parametrize(
    ("values", "message"),
    [(-1.0, "negative"), (0.5, "non-integer"), (np.nan, "NaN"), (0.0, "no nonzero")],
)
def test_fit_rejects_non_counts(values, message):
    adata = _planted_counts(n_per_type=20)
    X = adata.X.toarray()
    X[:] = 0 if values == 0 else X
    X[0, 0] = values
    adata.X = X
    with pytest.raises(ValueError, match=message):
        CountModel.fit(adata, "cell_type")
    adata.X = np.log1p(_planted_counts(n_per_type=20).X.toarray())
    with pytest.raises(ValueError, match="raw counts"):
        CountModel.fit(adata, "cell_type")


def test_fit_rejects_bad_arguments():
    adata = _planted_counts(n_per_type=20)
    with pytest.raises(ValueError, match=r"label_key='celltype' not in adata.obs.*cell_type"):
        CountModel.fit(adata, "celltype")
    with pytest.raises(ValueError, match="layer='counts'"):
        CountModel.fit(adata, "cell_type", layer="counts")
    with pytest.raises(ValueError, match="min_cells_per_type=100"):
        CountModel.fit(adata, "cell_type", min_cells_per_type=100)
    with pytest.raises(ValueError, match="dispersion='mle'"):
        CountModel.fit(adata, "cell_type", dispersion="mle")


def test_save_load_roundtrip(tmp_path):
    model = CountModel.fit(_planted_counts(n_per_type=50), "cell_type", min_cells_per_gene=3)
    path = model.save(tmp_path / "model.npz")
    with np.load(path, allow_pickle=False) as npz:  # readable without pickle
        assert "profiles" in npz
    loaded = CountModel.load(path)
    for name in ("profiles", "dispersion", "frequencies", "log_library_mean", "log_library_sd"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert list(loaded.gene_names) == list(model.gene_names)
    assert list(loaded.cell_types) == list(model.cell_types)
    assert (loaded.n_source_genes, loaded.dropped_profile) == (
        model.n_source_genes,
        pytest.approx(model.dropped_profile),
    )
    np.savez_compressed(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a CountModel file"):
        CountModel.load(tmp_path / "other.npz")


# -------------------------------------------------------------------------------------- sample
def test_sample_matches_negative_binomial_moments():
    """Dense and sparse sampling paths both give NB means and zero fractions (sd 0 libraries)."""
    model = _planted_model(library_sd=0.0)
    data = model.sample(6000, proportions=[1, 0], rng=3)
    X = data.X.toarray()
    mu = 2000 * model.profiles[0].astype(np.float64)
    p_zero = (1 + PHI * mu) ** (-1 / PHI)
    # sd of the mean over 6000 cells is sqrt(var / 6000); allow 5 sd plus rounding slack
    sd_mean = np.sqrt((mu + PHI * mu**2) / len(X))
    assert np.all(np.abs(X.mean(axis=0) - mu) < 5 * sd_mean + 1e-4)
    sd_zero = np.sqrt(p_zero * (1 - p_zero) / len(X))
    assert np.all(np.abs((X == 0).mean(axis=0) - p_zero) < 5 * sd_zero + 1e-4)
    var = X[:, 0].var()
    assert var == pytest.approx(mu[0] + PHI * mu[0] ** 2, rel=0.1)


def test_sample_shapes_types_and_values():
    data = _planted_model().sample(500, rng=0)
    assert data.shape == (500, N_GENES)
    assert isinstance(data.X, sparse.csr_matrix) and data.X.dtype == np.float32
    assert data.X.has_sorted_indices
    np.testing.assert_array_equal(data.X.data, np.round(data.X.data))
    assert data.X.data.min() >= 1
    assert list(data.obs_names[:3]) == ["cell0", "cell1", "cell2"]
    assert list(data.var_names) == [f"g{j}" for j in range(N_GENES)]
    assert isinstance(data.obs["cell_type"].dtype, pd.CategoricalDtype)
    assert list(data.obs["cell_type"].cat.categories) == ["A", "B"]
    # type A has twice the library size of type B
    total = np.asarray(data.X.sum(axis=1)).ravel()
    is_a = (data.obs["cell_type"] == "A").to_numpy()
    assert np.median(total[is_a]) / np.median(total[~is_a]) == pytest.approx(2, rel=0.2)


def test_sample_is_deterministic_for_a_seed():
    model = _planted_model()
    one, two = model.sample(300, rng=7), model.sample(300, rng=np.random.default_rng(7))
    assert (one.X != two.X).nnz == 0
    assert one.obs["cell_type"].equals(two.obs["cell_type"])
    assert (one.X != model.sample(300, rng=8).X).nnz > 0


def test_sample_proportions():
    model = _planted_model()
    data = model.sample(4000, proportions={"A": 0.8, "B": 0.2}, rng=1)
    assert (data.obs["cell_type"] == "A").mean() == pytest.approx(0.8, abs=0.03)
    data = model.sample(200, proportions=[0, 3], rng=1)
    assert set(data.obs["cell_type"]) == {"B"}
    assert list(data.obs["cell_type"].cat.categories) == ["A", "B"]
    with pytest.raises(ValueError, match="unknown cell types"):
        model.sample(10, proportions={"C": 1.0})
    with pytest.raises(ValueError, match="expected one per cell type"):
        model.sample(10, proportions=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        model.sample(10, proportions=[-1, 2])


def test_sample_rejects_bad_sizes():
    model = _planted_model()
    with pytest.raises(ValueError, match="n_cells=0"):
        model.sample(0)
    with pytest.raises(ValueError, match="n_genes=-5"):
        model.sample(10, n_genes=-5)


def test_sample_more_and_fewer_genes():
    model = _planted_model()
    fewer = model.sample(300, n_genes=10, rng=0)
    assert fewer.shape == (300, 10)
    overall = model.frequencies @ model.profiles
    top = np.sort(np.argsort(-overall)[:10])
    assert list(fewer.var_names) == [f"g{j}" for j in top]  # the most expressed genes
    assert "g2" in fewer.var_names and "g0" not in fewer.var_names  # g0 is high in A only

    more = model.sample(2000, n_genes=N_GENES * 10, rng=0)
    assert more.shape == (2000, N_GENES * 10)
    assert list(more.var_names[N_GENES : N_GENES + 2]) == ["SYNTH0", "SYNTH1"]
    # profiles are renormalised: the same library sizes, spread over more genes
    same = model.sample(2000, rng=0)
    assert more.X.sum() / same.X.sum() == pytest.approx(1, rel=0.05)
    # resampled profiles: extra genes have the spread of expression levels of the fitted ones
    detected = np.asarray((more.X > 0).mean(axis=0)).ravel()
    quartiles = np.quantile(detected[:N_GENES], [0.25, 0.5, 0.75])
    np.testing.assert_allclose(np.quantile(detected[N_GENES:], [0.25, 0.5, 0.75]), quartiles,
                               atol=0.05, rtol=0.5)  # fmt: skip


def test_extra_genes_stand_in_for_genes_dropped_at_fit():
    adata = _planted_counts(n_per_type=100)
    model = CountModel.fit(adata, "cell_type", min_cells_per_gene=3)
    n_dropped = model.n_source_genes - model.n_genes
    assert n_dropped > 0
    data = model.sample(1000, n_genes=model.n_source_genes, rng=0)
    stand_ins = data.X[:, model.n_genes :]
    # the genes left out were (nearly) never detected, and so are their stand-ins
    assert stand_ins.nnz <= 0.01 * data.X.nnz


# ------------------------------------------------------------------------------ bundled model
@pytest.fixture(scope="module")
def bundled():
    return load_bundled()


def test_bundled_model_is_the_pbmc3k_fit(bundled):
    assert bundled.n_types == 9
    assert {"B", "NK", "CD14+ Mono", "Naive CD4 T", "Platelet"} <= set(bundled.cell_types)
    assert bundled.n_genes > 10_000 and bundled.n_source_genes == 32738
    assert "CD3E" in set(bundled.gene_names)


def test_bundled_samples_are_realistic(bundled):
    data = bundled.sample(2000, n_genes=5000, rng=0)
    assert data.shape == (2000, 5000)
    assert data.obs["cell_type"].nunique() == 9
    assert 0.01 < data.X.nnz / (2000 * 5000) < 0.20
    # markers: CD3E in T cells, LYZ in monocytes, MS4A1 in B cells
    expr = pd.DataFrame(data[:, ["CD3E", "LYZ", "MS4A1"]].X.toarray(), columns=["t", "m", "b"])
    means = expr.groupby(data.obs["cell_type"].to_numpy()).mean()
    assert means.loc["Naive CD4 T", "t"] > 5 * means.loc["CD14+ Mono", "t"]
    assert means.loc["CD14+ Mono", "m"] > 5 * means.loc["B", "m"]
    assert means.loc["B", "b"] > 5 * means.loc["NK", "b"]


def test_bundled_cell_types_are_separable(bundled):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    data = bundled.sample(1000, n_genes=2000, rng=1)
    X = data.X.toarray()
    X = PCA(30, random_state=0).fit_transform(np.log1p(X / X.sum(axis=1, keepdims=True) * 1e4))
    y = data.obs["cell_type"].to_numpy()
    clf = LogisticRegression(max_iter=500).fit(X[:700], y[:700])
    assert clf.score(X[700:], y[700:]) > 0.8


def test_paper_scale_small_call_uses_bundled_model():
    data = paper_scale(n_cells=200, n_genes=300, rng=0)
    assert data.shape == (200, 300)
    assert (data.X != paper_scale(n_cells=200, n_genes=300, rng=0).X).nnz == 0


def test_rows_are_assembled_as_stacking_then_permuting_would():
    from scipy import sparse

    from scactive._nb import assemble_rows

    rng = np.random.default_rng(0)
    blocks = [
        sparse.random(n, 30, density=0.2, format="csr", dtype=np.float32, random_state=i)
        for i, n in enumerate([4, 1, 7, 3])
    ]
    blocks[1] = sparse.csr_matrix((1, 30), dtype=np.float32)  # an empty row
    order = rng.permutation(15)
    expected = sparse.vstack(blocks, format="csr")[np.argsort(order)]
    got = assemble_rows(list(blocks), order, n_genes=30)
    assert (got != expected).nnz == 0 and got.shape == (15, 30)
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    assert got.indices.dtype == np.int32 and got.data.dtype == np.float32
