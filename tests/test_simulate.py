"""``scactive.simulate``: outputs, reproducibility, resume, and refusing another run's folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_counts
from scactive import InputError, simulate

FAST = dict(
    strategies=["random", "entropy"],
    batch_sizes=[6],
    seeds=1,
    n_rounds=2,
    min_genes=0,
    n_top_genes=100,
    n_pcs=10,
    initial=12,
    progress=False,
)


@pytest.fixture(scope="module")
def adata():
    return make_counts(n_cells=150, n_genes=300)


def test_results_table_has_every_round_and_metric(adata):
    table = simulate(adata, label_key="cell_type", report=False, **FAST)
    runs = table[table.strategy != "ceiling"]
    assert list(runs.groupby("strategy")["round"].apply(list)) == [[0, 1, 2]] * 2
    assert list(runs["n_labeled"].iloc[:3]) == [12, 18, 24]
    expected = {
        "model",
        "strategy",
        "batch_size",
        "seed",
        "round",
        "n_labeled",
        "frac_labeled",
        "n_types_found",
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "loss",
        "train_seconds",
        "query_seconds",
        "pool_exhausted",
        "recall:type0",
        "recall:type1",
        "recall:type2",
    }
    assert expected <= set(table.columns)
    ceiling = table[table.strategy == "ceiling"]
    assert len(ceiling) == 1 and ceiling["frac_labeled"].iloc[0] == 1.0
    assert str(table["batch_size"].dtype) == "Int64" and ceiling["batch_size"].isna().all()
    assert ceiling["macro_f1"].iloc[0] > 0.9  # planted, well-separated types
    # every strategy starts from the same round-0 model
    assert runs[runs["round"] == 0]["loss"].nunique() == 1
    # types found: never fewer as labels come, all three once the whole pool is labeled
    for _, run in runs.groupby("strategy"):
        assert run["n_types_found"].is_monotonic_increasing
        assert 1 <= run["n_types_found"].min() and run["n_types_found"].max() <= 3
    assert ceiling["n_types_found"].iloc[0] == 3


def test_same_seed_same_numbers(adata):
    a = simulate(adata, label_key="cell_type", report=False, ceiling=False, **FAST)
    b = simulate(adata, label_key="cell_type", report=False, ceiling=False, **FAST)
    metrics = ["accuracy", "macro_f1", "loss", "n_labeled"]
    pd.testing.assert_frame_equal(a[metrics], b[metrics])


def test_input_is_not_modified(adata):
    before = adata.copy()
    simulate(adata, label_key="cell_type", report=False, ceiling=False, **FAST)
    assert (adata.X != before.X).nnz == 0
    assert list(adata.obs.columns) == list(before.obs.columns)


def test_writes_outputs_and_resumes_to_the_same_tables(adata, tmp_path):
    out = tmp_path / "run"
    simulate(adata, label_key="cell_type", out=out, **FAST)
    for name in ("results.csv", "picks.csv", "split.csv", "config.json", "report.html"):
        assert (out / name).exists(), name
    config = json.loads((out / "config.json").read_text())
    assert config["strategies"] == ["random", "entropy"] and len(config["input_sha256"]) == 64
    assert "torch" in config["versions"]
    picks = pd.read_csv(out / "picks.csv")
    assert len(picks) == 2 * 2 * 6 and {"cell", "label", "round", "pc1"} <= set(picks.columns)
    split = pd.read_csv(out / "split.csv")
    assert split["role"].value_counts().to_dict() == {"pool": 108, "validation": 30, "initial": 12}
    first = _tables(out)

    # an interrupted run: one finished cell and the final tables are gone
    (out / "results.csv").unlink()
    (out / "picks.csv").unlink()
    finished = sorted((out / "cells").glob("*entropy*.results.csv"))
    finished[0].unlink()
    simulate(adata, label_key="cell_type", out=out, **FAST)
    for name, table in _tables(out).items():  # the same, except for the seconds measured
        pd.testing.assert_frame_equal(table, first[name])


def _tables(out):
    tables = {n: pd.read_csv(out / n) for n in ("results.csv", "picks.csv", "split.csv")}
    tables["results.csv"] = tables["results.csv"].drop(columns=["train_seconds", "query_seconds"])
    return tables


def test_refuses_a_folder_holding_another_run(adata, tmp_path):
    out = tmp_path / "run"
    simulate(adata, label_key="cell_type", out=out, report=False, **FAST)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match="different run"):
        simulate(adata, label_key="cell_type", out=out, report=False, **{**FAST, "n_rounds": 3})
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        simulate(adata, label_key="cell_type", out=other, **FAST)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_pool_runs_out_and_rare_class_left_out(tmp_path):
    adata = make_counts(n_cells=60, n_genes=200)
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    labels[0] = "lonely"
    labels[1:4] = "Unknown"
    adata.obs["cell_type"] = labels
    with pytest.warns(UserWarning, match="'lonely'"):
        table = simulate(
            adata,
            label_key="cell_type",
            out=tmp_path / "r",
            report=False,
            **{**FAST, "batch_sizes": [20], "n_rounds": 5, "initial": 5},
        )
    runs = table[table.strategy == "random"]
    assert runs["pool_exhausted"].iloc[-1] and len(runs) < 6
    split = pd.read_csv(tmp_path / "r" / "split.csv")
    reasons = split.loc[split.role == "left_out", "reason"].value_counts().to_dict()
    assert reasons == {"missing or unknown label": 3, "class too small to split": 1}


def test_stop_fraction_runs_until_the_pool_fraction(adata):
    table = simulate(
        adata,
        label_key="cell_type",
        report=False,
        ceiling=False,
        **{**FAST, "stop_fraction": 0.4, "strategies": ["random"]},
    )
    assert table["frac_labeled"].iloc[-1] >= 0.4 > table["frac_labeled"].iloc[-2]


def test_logreg_skips_mc_dropout_strategies(adata, tmp_path):
    table = simulate(
        adata,
        label_key="cell_type",
        out=tmp_path / "r",
        report=False,
        **{**FAST, "models": ["logreg"], "strategies": ["random", "qbc"]},
    )
    assert set(table["strategy"]) == {"random", "ceiling"}
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert any("qbc" in s for s in config["skipped"])


@pytest.mark.parametrize("baseline", ["scmap-cluster", "scmap-cell", "chetah", "knn-transfer"])
def test_baselines_serve_as_learners_in_the_loop(adata, baseline):
    # 5 rounds of 6 end with 42 labeled cells, more than knn-transfer's 30 neighbours
    table = simulate(
        adata,
        label_key="cell_type",
        **{**FAST, "models": [baseline], "strategies": ["entropy"], "n_rounds": 5},
    )
    assert set(table["strategy"]) == {"entropy", "ceiling"}
    # planted, well-separated types: the baseline learns them from the labeled cells
    assert table.loc[table["strategy"] == "ceiling", "macro_f1"].min() > 0.95
    assert table.loc[table["round"] == table["round"].max(), "macro_f1"].min() > 0.9


def test_worker_processes_give_the_same_picks(adata, tmp_path):
    one = simulate(adata, label_key="cell_type", out=tmp_path / "a", report=False, **FAST)
    two = simulate(adata, label_key="cell_type", out=tmp_path / "b", report=False, n_jobs=2, **FAST)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "picks.csv"), pd.read_csv(tmp_path / "b" / "picks.csv")
    )
    pd.testing.assert_series_equal(one["n_labeled"], two["n_labeled"])
    np.testing.assert_allclose(one["macro_f1"], two["macro_f1"], atol=0.02)


@pytest.mark.parametrize("retrain", ["scratch", "continue"])
def test_one_labeled_type_at_the_start_predicts_that_type(adata, retrain):
    table = simulate(
        adata,
        label_key="cell_type",
        models=["logreg"],
        retrain=retrain,
        ceiling=False,
        **{**FAST, "initial": 1},
    )
    start = table[table["round"] == 0]
    assert (start["n_labeled"] == 1).all()
    assert start["accuracy"].between(0.2, 0.5).all()  # every cell called the one type
    assert table["round"].max() == FAST["n_rounds"]


def test_a_run_that_fails_at_once_leaves_no_config(adata, tmp_path, monkeypatch):
    import scactive._simulate as module

    def broken(*args, **kwargs):
        raise RuntimeError("planted failure")
        yield

    monkeypatch.setattr(module, "run_tasks", broken)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="planted"):
        simulate(adata, label_key="cell_type", out=out, **FAST)
    assert not out.exists()  # so a corrected command is not refused as "a different run"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="planted"):
        simulate(adata, label_key="cell_type", out=empty, **FAST)
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize(
    "option, match",
    [
        ({"initial": 2.5}, "initial=2.5"),
        ({"initial": float("nan")}, "initial=nan"),
        ({"n_top_genes": 0}, "n_top_genes=0"),
        ({"n_pcs": -1}, "n_pcs=-1"),
        ({"min_cells": -2}, "min_cells=-2"),
        ({"val_fraction": 1.0}, "val_fraction=1.0"),
    ],
)
def test_bad_options_are_refused_before_any_output(adata, tmp_path, option, match):
    out = tmp_path / "run"
    with pytest.raises(InputError, match=match):
        simulate(adata, label_key="cell_type", out=out, **{**FAST, **option})
    assert not out.exists()


def test_a_folder_held_by_another_run_is_refused(adata, tmp_path):
    from scactive._files import folder_lock

    out = tmp_path / "run"
    with folder_lock(out), pytest.raises(InputError, match="Another scactive simulation"):
        simulate(adata, label_key="cell_type", out=out, **FAST)
    assert [p.name for p in out.iterdir()] == [".scactive.lock"]


def test_an_unknown_option_is_named_with_the_closest_valid_one(adata):
    with pytest.raises(InputError, match=r"'n_round': did you mean 'n_rounds'\?"):
        simulate(adata, label_key="cell_type", n_round=3)
    with pytest.raises(InputError, match=r"'min_gene': did you mean 'min_genes'\?"):
        simulate(adata, label_key="cell_type", min_gene=0)
