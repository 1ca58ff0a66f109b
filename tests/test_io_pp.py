"""Reading data, choosing the matrix, QC and feature selection."""

from __future__ import annotations

import gzip

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from conftest import corrupt
from scactive import InputError, io
from scactive.pp import FeatureSpace, filter_cells, normalize, remove_genes


def test_read_formats_agree(tmp_path, counts_adata):
    small = counts_adata[:30, :50].copy()
    dense = small.X.toarray()
    small.write_h5ad(tmp_path / "d.h5ad")
    table = pd.DataFrame(dense, index=small.obs_names, columns=small.var_names)
    table.to_csv(tmp_path / "d.csv")
    table.to_csv(tmp_path / "d.tsv", sep="\t")
    table.T.to_csv(tmp_path / "genes_by_cells.csv")
    small.write_loom(tmp_path / "d.loom")
    mtx = tmp_path / "tenx"
    mtx.mkdir()
    scipy.io.mmwrite(mtx / "matrix.mtx", sp.csr_matrix(dense.T.astype(np.int64)))
    pd.DataFrame(
        {"id": small.var_names, "name": small.var_names, "kind": "Gene Expression"}
    ).to_csv(mtx / "features.tsv", sep="\t", header=False, index=False)
    pd.Series(small.obs_names).to_csv(mtx / "barcodes.tsv", header=False, index=False)
    for name in ("matrix.mtx", "features.tsv", "barcodes.tsv"):  # 10x v3 folders are gzipped
        (mtx / f"{name}.gz").write_bytes(gzip.compress((mtx / name).read_bytes()))
        (mtx / name).unlink()
    for name, kwargs in [
        ("d.h5ad", {}),
        ("d.csv", {}),
        ("d.tsv", {}),
        ("d.loom", {}),
        ("genes_by_cells.csv", {"transpose": True}),
        ("tenx", {}),
    ]:
        got = io.read(tmp_path / name, **kwargs)
        assert got.shape == (30, 50), name
        X = got.X.toarray() if sp.issparse(got.X) else np.asarray(got.X)
        np.testing.assert_allclose(X, dense, err_msg=name)


def test_bundled_dataset_holds_log_values():
    adata = io.read("pbmc68k_reduced")
    assert adata.shape[0] == 700 and adata.X.min() >= 0
    assert not io.looks_like_counts(adata.X)


@pytest.mark.parametrize(
    "problem, match",
    [
        ("missing", "not found"),
        ("truncated", "truncated"),
        ("unknown_format", "Cannot tell the format"),
    ],
)
def test_unreadable_files(tmp_path, counts_adata, problem, match):
    path = tmp_path / "data.h5ad"
    if problem == "truncated":
        counts_adata.write_h5ad(path)
        path.write_bytes(path.read_bytes()[:2000])
    elif problem == "unknown_format":
        path = tmp_path / "data.xyz"
        path.write_text("x")
    with pytest.raises(InputError, match=match):
        io.read(path)


@pytest.mark.parametrize(
    "problem, match",
    [
        ("nan", "NaN or infinite"),
        ("inf", "NaN or infinite"),
        ("negative", "negative values"),
        ("empty", "empty"),
        ("duplicates", "more than once"),
    ],
)
def test_bad_matrices(counts_adata, problem, match):
    adata = corrupt(counts_adata, problem)
    with pytest.raises(InputError, match=match):
        io.select_matrix(adata)


def test_choose_layer_and_raw(counts_adata):
    adata = counts_adata.copy()
    adata.layers["counts"] = adata.X.copy()
    adata.raw = adata
    adata.X = adata.X * 0.5
    assert io.looks_like_counts(io.select_matrix(adata, layer="counts").X)
    assert io.select_matrix(adata, use_raw=True).n_vars == adata.n_vars
    with pytest.raises(InputError, match="layer='nope' not in adata.layers; available"):
        io.select_matrix(adata, layer="nope")


def test_labels_missing_markers_and_errors(counts_adata):
    adata = counts_adata.copy()
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    labels[:3] = ["Unknown", "unassigned", "nan"]
    adata.obs["cell_type"] = labels
    assert io.labels_from(adata, "cell_type").isna().sum() == 3
    with pytest.raises(
        InputError,
        match=r"label_key='celltype' not in adata.obs; available: "
        r"\['cell_type'\]",
    ):
        io.labels_from(adata, "celltype")
    adata.obs["one"] = "T cell"
    with pytest.raises(InputError, match="at least two"):
        io.labels_from(adata, "one")


def test_remove_genes_human_and_mouse():
    names = [
        "MT-CO1",
        "mt-Nd1",
        "RPL13",
        "Rps3",
        "HBB",
        "HBA1",
        "Hbb-bs",
        "Hba-a1",
        "CD3E",
        "HBEGF",
        "Cd19",
        "MTOR",
        "RPLP0P2x",
    ]
    adata = ad.AnnData(np.ones((3, len(names)), np.float32), var=pd.DataFrame(index=names))
    remove_genes(adata)
    assert list(adata.var_names) == ["CD3E", "HBEGF", "Cd19", "MTOR", "RPLP0P2x"]
    assert adata.uns["scactive_removed_genes"] == {
        "mitochondrial": 2,
        "ribosomal": 2,
        "hemoglobin": 4,
    }
    kept = ad.AnnData(np.ones((3, len(names)), np.float32), var=pd.DataFrame(index=names))
    remove_genes(kept, mito=False, ribo=False)
    assert "MT-CO1" in kept.var_names and "HBB" not in kept.var_names


def test_remove_genes_reads_symbols_for_ensembl_ids():
    var = pd.DataFrame({"symbol": ["MT-CO1", "CD3E"]}, index=["ENSG00000198804", "ENSG00000198851"])
    adata = ad.AnnData(np.ones((2, 2), np.float32), var=var)
    remove_genes(adata)
    assert list(adata.var["symbol"]) == ["CD3E"]


def test_filter_cells_warns_when_many_fail(counts_adata):
    detected = np.asarray((counts_adata.X > 0).sum(1)).ravel()
    threshold = int(np.percentile(detected, 50))
    with pytest.warns(UserWarning, match="removes"):
        keep = filter_cells(counts_adata, min_genes=threshold)
    np.testing.assert_array_equal(keep, detected >= threshold)
    with pytest.raises(InputError, match="--min-genes"):
        filter_cells(counts_adata, min_genes=10_000)


def test_normalize_only_counts(counts_adata):
    adata = counts_adata.copy()
    assert normalize(adata)
    np.testing.assert_allclose(np.expm1(adata.X.toarray()).sum(1), 1e4, rtol=1e-4)
    before = adata.X.copy()
    assert not normalize(adata)  # log values are left as they are
    assert (adata.X != before).nnz == 0


def test_feature_space_is_fitted_on_the_pool_only(counts_adata):
    adata = counts_adata.copy()
    normalize(adata)
    pool, val = adata[:200].copy(), adata[200:].copy()
    X = val.X.toarray()
    X[:, 399] = np.where(np.arange(len(X)) % 2, 6.0, 0.0)  # varies only in validation cells
    val.X = sp.csr_matrix(X)
    space = FeatureSpace(n_top_genes=50, n_pcs=5).fit(pool)
    assert len(space.genes_) == 50
    both = ad.concat([pool, val])
    assert "G399" not in set(FeatureSpace(n_top_genes=50, n_pcs=5).fit(pool).genes_)
    assert "G399" in set(FeatureSpace(n_top_genes=50, n_pcs=5).fit(both).genes_)
    features = space.transform(pool)
    np.testing.assert_allclose(features.mean(0), 0, atol=1e-4)
    assert space.embed(features).shape == (200, 5)


def test_synthetic_dataset_is_labeled_counts():
    from scactive import datasets

    adata = datasets.synthetic(300, 2000, rng=1)
    assert adata.shape == (300, 2000)
    assert io.looks_like_counts(adata.X)
    assert adata.obs["cell_type"].nunique() >= 5
    assert "synthetic_paper_scale" in datasets.BUNDLED


def _tenx_folder(folder, adata, *, gzipped: bool, genes_file: str = "features.tsv"):
    folder.mkdir()
    scipy.io.mmwrite(folder / "matrix.mtx", sp.csr_matrix(adata.X.T.astype(np.int64)))
    pd.DataFrame(
        {"id": adata.var_names, "name": adata.var_names, "kind": "Gene Expression"}
    ).to_csv(folder / genes_file, sep="\t", header=False, index=False)
    pd.Series(adata.obs_names).to_csv(folder / "barcodes.tsv", header=False, index=False)
    if gzipped:
        for name in ("matrix.mtx", genes_file, "barcodes.tsv"):
            (folder / f"{name}.gz").write_bytes(gzip.compress((folder / name).read_bytes()))
            (folder / name).unlink()
    return folder


def test_10x_folders_plain_or_gzipped_read_alike(tmp_path, counts_adata):
    small = counts_adata[:20, :30].copy()
    gz = io.read(_tenx_folder(tmp_path / "gz", small, gzipped=True))
    for name, kwargs in [
        ("plain", {"gzipped": False}),  # 10x v3 files, uncompressed
        ("legacy", {"gzipped": False, "genes_file": "genes.tsv"}),
        ("legacy_gz", {"gzipped": True, "genes_file": "genes.tsv"}),
    ]:
        got = io.read(_tenx_folder(tmp_path / name, small, **kwargs))
        assert list(got.obs_names) == list(gz.obs_names), name
        assert list(got.var_names) == list(gz.var_names), name
        assert "gene_ids" in got.var, name
        np.testing.assert_array_equal(got.X.toarray(), gz.X.toarray(), err_msg=name)


@pytest.mark.parametrize(
    "keep, missing",
    [
        ([], ["'matrix.mtx' or 'matrix.mtx.gz'", "'barcodes.tsv' or 'barcodes.tsv.gz'"]),
        (["matrix.mtx"], ["'barcodes.tsv' or 'barcodes.tsv.gz'", "'genes.tsv'"]),
        (["features.tsv", "barcodes.tsv"], ["'matrix.mtx' or 'matrix.mtx.gz'"]),
    ],
)
def test_10x_folder_missing_a_file_names_what_it_needs(tmp_path, counts_adata, keep, missing):
    folder = _tenx_folder(tmp_path / "tenx", counts_adata[:10, :10].copy(), gzipped=False)
    for path in folder.iterdir():
        if path.name not in keep:
            path.unlink()
    with pytest.raises(InputError) as err:
        io.read(folder)
    message = str(err.value)
    assert "not a 10x matrix folder" in message
    for name in missing:
        assert name in message


def test_feature_matrices_block_by_block_equal_the_whole(counts_adata, monkeypatch):
    from scactive.pp import _features

    adata = counts_adata.copy()
    normalize(adata)
    space = FeatureSpace(n_top_genes=50, n_pcs=5).fit(adata)
    whole = {name: space.matrix(adata, name) for name in _features.INPUTS}
    monkeypatch.setattr(_features, "CHUNK_CELLS", 7)  # many blocks, a short last one
    view = adata[::2]  # a view: read block by block, never whole
    for name, expected in whole.items():
        np.testing.assert_allclose(space.matrix(view, name), expected[::2], atol=1e-5)
    genes = adata[:, space.genes_].X.toarray()
    np.testing.assert_array_equal(whole["log"], genes)
    np.testing.assert_allclose(whole["pca"], space.embed(whole["scaled"]), atol=1e-5)
    np.testing.assert_array_equal(whole["scaled"], space.transform(adata))
    with pytest.raises(ValueError, match="input='genes'"):
        space.matrix(adata, "genes")


def test_feature_space_of_a_large_pool_is_fitted_on_a_sample(counts_adata):
    adata = counts_adata.copy()
    normalize(adata)
    every = FeatureSpace(n_top_genes=50, n_pcs=5, fit_cells=None).fit(adata)
    enough = FeatureSpace(n_top_genes=50, n_pcs=5, fit_cells=adata.n_obs).fit(adata)
    np.testing.assert_array_equal(every.genes_, enough.genes_)
    np.testing.assert_array_equal(every.mean_, enough.mean_)
    assert every.n_fit_cells_ == adata.n_obs
    sampled = FeatureSpace(n_top_genes=50, n_pcs=5, fit_cells=150).fit(adata)
    assert sampled.n_fit_cells_ == 150
    # the planted markers (20 per type) stand out in a sample of the cells as in all of them
    markers = {f"G{i}" for i in range(60)}
    found = [len(markers & set(space.genes_)) for space in (every, sampled)]
    assert found[1] >= found[0] - 3, found
    assert sampled.matrix(adata, "pca").shape == (adata.n_obs, 5)
    with pytest.raises(InputError, match="fit_cells"):
        FeatureSpace(fit_cells=1)


def test_sparse_counts_and_subset_equal_scipy(monkeypatch):
    from scactive.pp import _sparse, detected_per_cell, detected_per_gene, subset_csr

    monkeypatch.setattr(_sparse, "BLOCK_ROWS", 4)  # many blocks and a short last one
    rng = np.random.default_rng(0)
    dense = rng.poisson(0.4, size=(23, 17)).astype(np.float32)
    dense[5] = 0  # an empty row
    X = sp.csr_matrix(dense)
    X.data[0] = 0.0  # a stored zero is not detected
    dense = X.toarray()
    genes = rng.random(17) < 0.6
    rows = rng.random(23) < 0.7
    np.testing.assert_array_equal(detected_per_cell(X), (dense > 0).sum(1))
    np.testing.assert_array_equal(detected_per_cell(X, genes), (dense[:, genes] > 0).sum(1))
    np.testing.assert_array_equal(detected_per_cell(dense, genes), (dense[:, genes] > 0).sum(1))
    np.testing.assert_array_equal(detected_per_gene(X), (dense > 0).sum(0))
    cut = subset_csr(X, rows, genes)
    np.testing.assert_array_equal(cut.toarray(), dense[rows][:, genes])
    assert cut.nnz == X[rows][:, genes].nnz and cut.dtype == np.float32
    np.testing.assert_array_equal(X.toarray(), dense)  # the input is left as it is


def test_generated_data_by_name():
    from scactive import datasets

    adata = io.read("synthetic:300x500")
    assert adata.shape == (300, 500) and "cell_type" in adata.obs
    again = io.read("synthetic:300x500")
    assert (adata.X != again.X).nnz == 0  # the same data on every read (workers rely on it)
    assert io.read("synthetic:120").n_obs == 120
    assert datasets.is_named("synthetic:5") and datasets.is_named("pbmc68k_reduced")
    assert not datasets.is_named("synthetic:0") and not datasets.is_named("synthetic:5x")
    assert io.file_checksum("synthetic:300x500") != io.file_checksum("synthetic:300x501")
    with pytest.raises(InputError, match="synthetic:CELLSxGENES"):
        io.read("synthetic:0")
