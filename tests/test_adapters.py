"""The adapters to the real tools (CellTypist, Seurat, SingleR): real runs on planted types.

Each tool runs a few times only (module-scoped fixtures): an R run costs 5-12 s, mostly loading
Seurat or SingleR. A test of a tool that is not installed skips with the tool's own message.
"""

from __future__ import annotations

import inspect
import logging

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

from conftest import make_counts
from scactive._errors import InputError, ToolError, ToolUnavailable
from scactive.comparison import _adapters, _r
from scactive.comparison._adapters import (
    UNASSIGNED,
    CellTypistAdapter,
    SeuratAdapter,
    SingleRAdapter,
)
from scactive.comparison._r import RSCRIPT_ENV, run_rscript

ADAPTERS = {cls.name: cls for cls in (CellTypistAdapter, SeuratAdapter, SingleRAdapter)}


def lognorm(adata: ad.AnnData) -> ad.AnnData:
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


@pytest.fixture(scope="module")
def cells() -> ad.AnnData:
    """300 cells of 4 well-separated types over 500 genes, log1p CP10k.

    Gene names with underscores (which Seurat would rewrite) and labels with spaces and
    punctuation check that names travel to R and back intact.
    """
    adata = lognorm(make_counts(n_cells=300, n_genes=500, n_types=4, markers=25, seed=1))
    adata.var_names = [f"GENE_{i}.x" for i in range(adata.n_vars)]
    names = {"type0": "B cell", "type1": "T_cell (CD4+)", "type2": "NK, cytotoxic", "type3": "Mono"}
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(str).map(names)
    return adata


@pytest.fixture(scope="module")
def split(cells) -> tuple[ad.AnnData, ad.AnnData]:
    order = np.random.default_rng(0).permutation(cells.n_obs)
    return cells[order[:200]].copy(), cells[order[200:]].copy()


@pytest.fixture(scope="module")
def small_reference(cells, split) -> ad.AnnData:
    """60 reference cells; two labels have only 2 cells and 1 cell."""
    reference, _ = split
    counts = {"B cell": 30, "T_cell (CD4+)": 27, "NK, cytotoxic": 2, "Mono": 1}
    positions = np.concatenate(
        [np.flatnonzero(reference.obs["cell_type"] == t)[:n] for t, n in counts.items()]
    )
    return reference[positions].copy()


def need(name: str) -> type:
    cls = ADAPTERS[name]
    why = cls.unavailable()
    if why is not None:
        pytest.skip(why)
    return cls


@pytest.fixture(scope="module", params=list(ADAPTERS))
def annotated(request, split):
    """Each tool fitted on 200 cells, annotating 100; the number of tool runs is counted."""
    cls = need(request.param)
    reference, query = split
    adapter = cls().fit(reference, reference.obs["cell_type"].to_numpy())
    runs = []
    original = adapter._annotate

    def counting(X):
        runs.append(X.shape)
        return original(X)

    adapter._annotate = counting
    labels = adapter.predict(query)
    scores = adapter.predict_score(query)
    return adapter, query, labels, scores, runs


def test_real_tool_finds_planted_types(annotated):
    adapter, query, labels, scores, runs = annotated
    assert runs == [(query.n_obs, query.n_vars)]  # predict and predict_score share one run
    assert labels.dtype == object and labels.shape == (query.n_obs,)
    assert scores.shape == (query.n_obs,) and np.isfinite(scores).all()
    valid = set(query.obs["cell_type"]) | {UNASSIGNED}
    assert set(labels) <= valid
    accuracy = np.mean(labels == query.obs["cell_type"].to_numpy())
    assert accuracy >= 0.9, f"{adapter.name}: accuracy {accuracy:.3f}"
    table = adapter.annotate(query)
    assert list(table.columns[:2]) == ["label", "score"]
    assert (table.index == query.obs_names).all()
    assert isinstance(adapter.version(), str) and adapter.version()[0].isdigit()


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_small_reference_with_one_and_two_cell_labels(name, small_reference, split):
    cls = need(name)
    _, query = split
    adapter = cls().fit(small_reference, "cell_type")
    labels = adapter.predict(query)
    truth = query.obs["cell_type"].to_numpy()
    assert set(labels) <= set(small_reference.obs["cell_type"]) | {UNASSIGNED}
    common = np.isin(truth, ["B cell", "T_cell (CD4+)"])
    assert np.mean(labels[common] == truth[common]) >= 0.9
    assert np.isfinite(adapter.predict_score(query)).all()


def test_seurat_falls_back_when_transfer_cannot_run(small_reference, split, caplog):
    cls = need("seurat")
    _, query = split
    adapter = cls().fit(small_reference, "cell_type")
    with caplog.at_level(logging.WARNING, logger="scactive"):
        table = adapter.annotate(query[:1].copy())  # one query cell: no anchors possible
    assert table["method"].tolist() == ["fallback_knn"]
    assert 0 < table["score"].iloc[0] <= 1
    assert any("fallback" in note for note in adapter.notes_)
    assert "fallback" in caplog.text


def test_one_label_reference_needs_no_tool_run(split, monkeypatch):
    cls = need("celltypist")
    reference, query = split
    monkeypatch.setattr(cls, "_fit", lambda *a: pytest.fail("the tool should not run"))
    adapter = cls().fit(reference[:5], ["B cell"] * 5)
    assert adapter.predict(query).tolist() == ["B cell"] * query.n_obs
    assert (adapter.predict_score(query) == 1).all()


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_genes_must_match(name, split):
    cls = need(name)
    reference, query = split
    adapter = cls().fit(reference, "cell_type")  # the R tools only run in annotate
    with pytest.raises(ValueError, match="query's genes differ"):
        adapter.predict(query[:, ::-1].copy())
    with pytest.raises(ValueError, match="500 reference genes, 499 query genes"):
        adapter.predict(query[:, 1:].copy())


def test_bad_input_is_refused_with_a_clear_message(split):
    cls = need("celltypist")
    reference, query = split
    raw = make_counts(n_cells=20, n_genes=500, n_types=2)
    with pytest.raises(InputError, match="normalize_total"):
        cls().fit(raw, "cell_type")
    with pytest.raises(InputError, match="one label per reference cell"):
        cls().fit(reference, ["B cell"] * 3)
    labels = reference.obs["cell_type"].to_numpy().copy()
    labels[0] = None
    with pytest.raises(InputError, match="1 missing values"):
        cls().fit(reference, labels)
    with pytest.raises(InputError, match="not a column of adata.obs"):
        cls().fit(reference, "celltype")
    with pytest.raises(InputError, match="not fitted"):
        cls().predict(query)


def test_missing_r_package_names_the_debian_package(monkeypatch, tmp_path, split):
    if _r._rscript() is None:
        pytest.skip("R is not installed")
    for variable in ("R_LIBS", "R_LIBS_SITE", "R_LIBS_USER"):  # only R's own library left
        monkeypatch.setenv(variable, str(tmp_path))
    why = SeuratAdapter.unavailable()
    assert why is not None and "r-cran-seurat" in why and "Seurat" in why
    why = SingleRAdapter.unavailable()
    assert why is not None and "r-bioc-singler" in why and "r-bioc-scran" in why
    with pytest.raises(ToolUnavailable, match="r-cran-seurat"):
        SeuratAdapter().fit(split[0], "cell_type")
    monkeypatch.undo()  # the cache keeps the real answer apart
    assert SeuratAdapter.unavailable() == _r._r_unavailable(
        "Seurat label transfer", SeuratAdapter.r_packages
    )


def test_missing_rscript_names_r_base_core(monkeypatch):
    monkeypatch.setenv(RSCRIPT_ENV, "/nowhere/Rscript")
    for cls in (SeuratAdapter, SingleRAdapter):
        why = cls.unavailable()
        assert why is not None and "r-base-core" in why and RSCRIPT_ENV in why
    with pytest.raises(ToolUnavailable, match="r-base-core"):
        SingleRAdapter.version()
    assert issubclass(ToolUnavailable, InputError)


def test_missing_celltypist_says_how_to_install(monkeypatch):
    real = _adapters.importlib.util.find_spec
    monkeypatch.setattr(
        _adapters.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "celltypist" else real(name, *a),
    )
    assert 'pip install "scactive[compare]"' in CellTypistAdapter.unavailable()


def test_r_failure_raises_tool_error_with_r_message(tmp_path):
    if _r._rscript() is None:
        pytest.skip("R is not installed")
    script = tmp_path / "fails.R"
    script.write_text('cat("working\\n")\nstop("planted failure in ", commandArgs(TRUE)[1])\n')
    with pytest.raises(ToolError, match=r"(?s)exit code 1.*planted failure in /"):
        run_rscript(script, tmp_path, tool="planted", timeout=300)
    script.write_text("Sys.sleep(30)\n")
    with pytest.raises(ToolError, match="did not finish within 1 s"):
        run_rscript(script, tmp_path, tool="planted", timeout=1)


def test_every_tool_is_discoverable_by_name():
    found = {
        cls.name
        for _, cls in inspect.getmembers(_adapters, inspect.isclass)
        if cls.__module__ == _adapters.__name__ and hasattr(cls, "unavailable")
    }
    assert found == {"celltypist", "seurat", "singler"}
