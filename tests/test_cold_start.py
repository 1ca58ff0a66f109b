"""The cold start: typical cells of Leiden clusters, cells chosen by markers, and simulate's
initial cells chosen either way, the same in every process."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from conftest import make_counts
from scactive import InputError, simulate
from scactive.bench import DataOptions
from scactive.cli import app
from scactive.strategies import (
    ColdStart,
    MarkerColdStart,
    _cold,
    cold_start,
    get_strategy,
    marker_positions,
    marker_scores,
)
from strategy_contract import check_strategy_contract


def _blobs(sizes, *, seed=0, dims=5, spread=40.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, size=(len(sizes), dims))
    group = np.repeat(np.arange(len(sizes)), sizes)
    return centres[group] + rng.normal(size=(len(group), dims)), group


def _densest(points: np.ndarray, k: int = _cold.N_TYPICAL) -> int:
    """The point with the smallest mean distance to its ``k`` nearest others (brute force)."""
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    return int(np.argmin(np.sort(distances, axis=1)[:, 1 : k + 1].mean(axis=1)))


def _cold_picks(strategy, X, labeled=None, batch_size=5, rng=0):
    labeled = np.zeros(len(X), bool) if labeled is None else labeled
    return strategy(None, X, labeled=labeled, batch_size=batch_size, rng=rng, embedding=X)


def test_cold_start_is_the_registered_name():
    assert isinstance(get_strategy("cold-start"), ColdStart)
    assert get_strategy("cold-start").clustering == "kmeans"


@pytest.mark.parametrize("clustering", ["leiden", "kmeans"])
def test_cold_start_picks_the_densest_cell_of_each_blob(clustering):
    X, group = _blobs([300, 120, 60, 30, 15])
    picks = _cold_picks(ColdStart(clustering=clustering), X)
    assert sorted(group[picks]) == [0, 1, 2, 3, 4]
    for blob in range(5):
        members = np.flatnonzero(group == blob)
        assert members[_densest(X[members])] in picks, blob


def test_leiden_finds_the_planted_blobs_at_the_searched_resolution():
    X, group = _blobs([300, 120, 60, 30, 15])
    clusters = _cold.leiden_clusters(X, 5, seed=1)
    assert len(np.unique(clusters)) == 5
    assert all(len(np.unique(clusters[group == b])) == 1 for b in range(5))


def test_clusters_holding_a_labeled_cell_come_last():
    X, group = _blobs([100, 80, 60], seed=2)
    labeled = np.zeros(len(X), bool)
    labeled[np.flatnonzero(group == 0)[:1]] = True  # blob 0 is covered
    picks = _cold_picks(ColdStart(clustering="leiden"), X, labeled, batch_size=2)
    assert sorted(group[picks]) == [1, 2]


def test_picks_per_cluster_largest_first_then_in_proportion_to_size():
    none = np.zeros(4, bool)
    sizes = np.array([5, 50, 20, 80])
    np.testing.assert_array_equal(_cold.cluster_quota(sizes, none, 2), [0, 1, 0, 1])
    covered = np.array([False, False, False, True])
    np.testing.assert_array_equal(_cold.cluster_quota(sizes, covered, 2), [0, 1, 1, 0])
    # D'Hondt: each further pick to the cluster with most cells per pick after it
    quota = _cold.cluster_quota(np.array([300, 100, 50]), np.zeros(3, bool), 10)
    np.testing.assert_array_equal(quota, [7, 2, 1])
    full = _cold.cluster_quota(np.array([2, 3]), np.zeros(2, bool), 5)
    np.testing.assert_array_equal(full, [2, 3])  # never more than a cluster holds


def test_several_picks_of_one_cluster_spread_over_it():
    # one cluster of three modes and one of two: each mode gives its own densest point
    X, mode = _blobs([120, 90, 60, 100, 80], seed=3, spread=30.0)
    clusters = np.array([0, 0, 0, 1, 1])[mode]
    picks = _cold.typical_cells(X, clusters, np.ones(len(X), bool), 5, np.random.default_rng(0))
    assert sorted(mode[picks]) == [0, 1, 2, 3, 4]
    for m in range(5):
        members = np.flatnonzero(mode == m)
        assert members[_densest(X[members])] in picks, m


def test_kmeans_clusters_when_igraph_is_missing(monkeypatch):
    X, _ = _blobs([100, 60, 30])

    def missing(*args, **kwargs):
        raise ImportError("No module named 'igraph'")

    expected = _cold_picks(ColdStart(clustering="kmeans"), X, batch_size=3)
    monkeypatch.setattr(_cold, "leiden_clusters", missing)
    leiden = ColdStart(clustering="leiden")
    np.testing.assert_array_equal(_cold_picks(leiden, X, batch_size=3), expected)
    with pytest.raises(InputError, match="clustering='louvain'"):
        ColdStart(clustering="louvain")


def _log_counts(adata) -> sp.csr_matrix:
    counts = sp.csr_matrix(adata.X, dtype=np.float64)
    scale = 1e4 / np.asarray(counts.sum(axis=1)).ravel()
    return sp.csr_matrix(counts.multiply(scale[:, None]).log1p())


@pytest.fixture(scope="module")
def four_types():
    adata = make_counts(n_cells=240, n_genes=300, n_types=4, markers=20, fold=4.0, seed=3)
    return adata, _log_counts(adata), adata.obs["cell_type"].astype(str).to_numpy()


def test_marker_cold_start_picks_cells_of_each_planted_type(four_types):
    adata, log, types = four_types
    markers = {f"type{t}": [f"G{20 * t + i}" for i in range(3)] for t in range(4)}
    markers["type1"] = ["g20", "G21", "NOT_A_GENE"]  # case-folded; a missing gene is named
    sets, missing = marker_positions([adata.var_names], markers)
    assert sets["type1"] == [20, 21] and missing == ["NOT_A_GENE (type1)"]
    strategy = cold_start(log, sets)
    assert isinstance(strategy, MarkerColdStart) and strategy.types == tuple(markers)
    X = np.zeros((len(types), 1))
    picks = strategy(None, X, labeled=np.zeros(len(types), bool), batch_size=8, rng=0)
    assert Counter(types[picks]) == {f"type{t}": 2 for t in range(4)}
    # the labeled cells are never asked again; the types still take turns
    labeled = np.isin(np.arange(len(types)), picks)
    again = strategy(None, X, labeled=labeled, batch_size=4, rng=1)
    assert not labeled[again].any() and Counter(types[again]) == {f"type{t}": 1 for t in range(4)}


def test_marker_scores_are_z_scores_of_the_mean_marker_expression(four_types):
    _, log, types = four_types
    scores = marker_scores(log, {"a": [0, 1], "none": []})
    mean = np.asarray(log[:, [0, 1]].mean(axis=1)).ravel()
    np.testing.assert_allclose(scores[:, 0], (mean - mean.mean()) / mean.std())
    np.testing.assert_array_equal(scores[:, 1], 0)
    assert scores[types == "type0", 0].mean() > scores[types != "type0", 0].mean() + 1


def test_marker_cold_start_obeys_the_strategy_contract(four_types):
    _, log, types = four_types
    strategy = cold_start(log, {"type0": [0, 1], "type2": [40]})
    X = np.zeros((len(types), 2))
    labeled = np.zeros(len(types), bool)
    labeled[::7] = True
    check_strategy_contract(strategy, None, X, labeled)
    with pytest.raises(InputError, match="marker scores have 240 rows; X has 10"):
        strategy(None, X[:10], labeled=labeled[:10], batch_size=2, rng=0)
    assert type(cold_start(log, {"type0": []})) is ColdStart  # no gene: the typical cells


def test_options_refuse_a_markers_start_without_markers_and_the_other_way_round():
    with pytest.raises(InputError, match="needs marker genes"):
        DataOptions(initial_strategy="markers")
    with pytest.raises(InputError, match="read by initial_strategy='markers' only"):
        DataOptions(markers={"B": ["MS4A1"]})
    with pytest.raises(InputError, match="initial_strategy='typical'.*'cold-start'"):
        DataOptions(initial_strategy="typical")
    options = DataOptions(initial_strategy="markers", markers={"B": ["MS4A1"], "T": "CD3E"})
    assert options.markers == (("B", ("MS4A1",)), ("T", ("CD3E",)))
    # read back from config.json (lists), the options are the same
    again = DataOptions(initial_strategy="markers", markers=json.loads(json.dumps(options.markers)))
    assert again == options


FAST = [
    "--strategies", "random", "--batch-sizes", "6", "--seeds", "1", "--rounds", "1",
    "--initial", "12", "--min-genes", "0", "--n-top-genes", "100", "--n-pcs", "10",
    "--no-progress", "--no-report",
]  # fmt: skip


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cells.h5ad"
    make_counts(n_cells=150, n_genes=300).write_h5ad(path)
    return path


def _initial_types(out) -> Counter:
    split = pd.read_csv(out / "split.csv")
    return Counter(split.loc[split["role"] == "initial", "label"])


def test_simulate_starts_from_the_cold_start_cells(data_file, tmp_path):
    out = tmp_path / "run"
    args = ["simulate", str(data_file), "--label-key", "cell_type", "--out", str(out), *FAST]
    result = CliRunner().invoke(app, [*args, "--initial-strategy", "cold-start"])
    assert result.exit_code == 0, result.output
    assert sum(_initial_types(out).values()) == 12 and len(_initial_types(out)) == 3
    assert json.loads((out / "config.json").read_text())["initial_strategy"] == "cold-start"
    random_out = tmp_path / "random"
    args[args.index(str(out))] = str(random_out)
    assert CliRunner().invoke(app, args).exit_code == 0
    config = json.loads((random_out / "config.json").read_text())
    assert config["initial_strategy"] == "random" and config["markers"] is None


def test_simulate_starts_from_the_cells_of_each_types_markers(data_file, tmp_path):
    markers = tmp_path / "markers.csv"
    markers.write_text("type,gene\ntype0,G0\ntype0,G1\ntype1,G20\ntype2,G40\ntype2,G41\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["simulate", str(data_file), "--label-key", "cell_type", "--out", str(out), *FAST,
         "--initial-strategy", "markers", "--markers", str(markers)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _initial_types(out) == {"type0": 4, "type1": 4, "type2": 4}
    config = json.loads((out / "config.json").read_text())
    assert config["markers"][0] == ["type0", ["G0", "G1"]]


@pytest.mark.parametrize(
    "content, extra, message",
    [
        ("type,gene\ntype0,NOPE1\ntype1,NOPE2\n", [], "No marker gene is in the data"),
        (None, [], "Marker file not found"),
        ("type,gene\ntype0,G0\n", ["--initial-strategy", "random"], "read by initial_strategy"),
    ],
)
def test_a_bad_markers_file_exits_2_with_a_message(data_file, tmp_path, content, extra, message):
    markers = tmp_path / "markers.csv"
    if content is not None:
        markers.write_text(content)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["simulate", str(data_file), "--label-key", "cell_type", "--out", str(out), *FAST,
         "--initial-strategy", "markers", "--markers", str(markers), *extra],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not out.exists()


def test_worker_processes_start_from_the_same_cold_start_cells(tmp_path):
    adata = make_counts(n_cells=150, n_genes=300)
    fast = dict(
        strategies=["random", "entropy"], batch_sizes=[6], seeds=1, n_rounds=1, min_genes=0,
        n_top_genes=100, n_pcs=10, initial=12, progress=False, report=False, ceiling=False,
        initial_strategy="cold-start",
    )  # fmt: skip
    simulate(adata, label_key="cell_type", out=tmp_path / "a", **fast)
    simulate(adata, label_key="cell_type", out=tmp_path / "b", n_jobs=2, **fast)
    one, two = (pd.read_csv(tmp_path / run / "picks.csv") for run in "ab")
    pd.testing.assert_frame_equal(one, two)
    split = pd.read_csv(tmp_path / "a" / "split.csv")
    assert (split["role"] == "initial").sum() == 12


def test_a_session_with_markers_cold_starts_by_them(tmp_path):
    from scactive.app import open_session

    adata = make_counts(n_cells=180, n_genes=300, n_types=3, seed=4)
    types = adata.obs["cell_type"].astype(str)
    markers = {"type0": ["G0", "G1"], "type1": ["G20", "G21"], "type2": ["G40", "G41"]}
    with open_session(adata, tmp_path / "m.sqlite", markers=markers) as session:
        assert isinstance(session._engine.cold_start, MarkerColdStart)
        cells = session.next_batch(6)
        assert Counter(types[cells]) == {"type0": 2, "type1": 2, "type2": 2}
    with open_session(adata, tmp_path / "plain.sqlite") as session:
        assert type(session._engine.cold_start) is ColdStart
        assert len(set(types[session.next_batch(6)])) == 3


def test_the_example_markers_name_pbmc3k_types_and_genes(pbmc3k_path):
    """docs/examples/pbmc3k_markers.csv (the Seurat tutorial's markers) names every type of the
    pbmc3k labels and only genes the file holds."""
    from pathlib import Path

    import scactive
    from scactive.app._labels import read_markers

    markers = read_markers(Path(__file__).parents[1] / "docs/examples/pbmc3k_markers.csv")
    adata = scactive.read(pbmc3k_path)
    assert set(markers) == set(adata.obs["cell_type"].astype(str))
    assert {g for genes in markers.values() for g in genes} <= set(adata.var_names)
