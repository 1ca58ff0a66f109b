"""``scactive compare``: same cells, same splits, same labeled sets for every method."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_counts
from scactive import comparison
from scactive._errors import InputError
from scactive.cli import app

FAST_METHODS = ("scmap-cluster", "knn-transfer", "logreg-ovr")
OPTIONS = dict(min_genes=0, n_top_genes=150, n_pcs=10)
#: the run of the module's fixture: 2 seeds, the pool plus 2 strategies x 2 budgets
RUN = dict(
    methods=FAST_METHODS,
    budgets=(29, 47),
    strategies=("random", "entropy"),
    initial=20,
    seeds=2,
    **OPTIONS,
    progress=False,
)


@pytest.fixture(scope="module")
def cells():
    return make_counts(n_cells=240, n_genes=300, n_types=3)


@pytest.fixture(scope="module")
def compared(cells, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "run"
    return out, comparison.compare(cells, label_key="cell_type", out=out, **RUN)


def test_every_method_on_every_training_set(compared):
    out, table = compared
    assert set(table["method"]) == set(FAST_METHODS)
    sets = table.drop_duplicates(["training_set", "budget", "seed"])
    # whole pool + 2 strategies x 2 budgets, for each of 2 seeds
    assert len(sets) == 2 * (1 + 2 * 2)
    assert len(table) == len(sets) * len(FAST_METHODS)
    labeled = table[table["training_set"] != "pool"]
    assert (labeled["n_train"] == labeled["budget"]).all()
    for column in ("accuracy", "macro_f1", "weighted_f1", "frac_unassigned", "seconds"):
        assert table[column].notna().all(), column
    # planted, well-separated types: every method is right on the whole pool
    pool = table[table["training_set"] == "pool"]
    assert (pool["macro_f1"] > 0.95).all(), pool[["method", "macro_f1"]]


def test_methods_are_scored_on_the_simulation_validation_cells(compared):
    out, _ = compared
    split = pd.read_csv(out / "split.csv")
    predictions = pd.read_csv(out / "predictions.csv")
    for (seed, method, name, budget), rows in predictions.groupby(
        ["seed", "method", "training_set", "budget"]
    ):
        expected = split[(split["seed"] == seed) & (split["role"] == "validation")]["cell"]
        assert sorted(rows["cell"]) == sorted(expected), (seed, method, name, budget)


def test_labeled_sets_are_what_the_run_labeled_first(cells, compared):
    out, _ = compared
    run = comparison.SimulationRun.load(out)
    split, picks = run.split, run.picks
    from scactive.bench import SeedData, prepare

    prepared = prepare(cells, "cell_type", run.data_options)
    seed_data = SeedData(prepared, 1, run.data_options)
    sets, notes = run.training_sets(seed_data, strategies=["entropy"], budgets=[29])
    assert notes == []
    (labeled,) = [s for s in sets if s.name == "entropy"]
    names = set(prepared.adata.obs_names[seed_data.pool][labeled.positions])
    mine = split[(split["seed"] == 1)]
    first_round = picks[
        (picks["seed"] == 1) & (picks["strategy"] == "entropy") & (picks["round"] == 1)
    ]
    # 20 initial cells plus the 9 picked in round 1 make the 29-cell budget exactly
    expected = set(mine.loc[mine["role"] == "initial", "cell"]) | set(first_round["cell"])
    assert names == expected


def test_outputs_and_report_section(compared):
    out, _ = compared
    for name in ("comparison.csv", "comparison_per_class.csv", "predictions.csv",
                 "comparison.json", "report.html"):  # fmt: skip
        assert (out / name).is_file(), name
    for name in ("compare_macro_f1.png", "compare_per_class_f1.png", "compare_confusion.png"):
        assert (out / "figures" / name).stat().st_size > 1000, name
    report = (out / "report.html").read_text()
    assert "Comparison with established annotation methods" in report
    assert "Learning curves" in report  # the simulation's own report around it
    per_class = pd.read_csv(out / "comparison_per_class.csv")
    assert set(per_class["cell_type"]) == {"type0", "type1", "type2"}


def test_rerun_resumes_without_training_again(cells, compared, monkeypatch):
    out, table = compared

    def fail(*args, **kwargs):
        raise AssertionError("a finished method run was trained again")

    monkeypatch.setattr(comparison._compare, "run_method", fail)
    again = comparison.compare(cells, label_key="cell_type", out=out, **RUN)
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), table.drop(columns="seconds"))


def test_from_simulation_writes_elsewhere_and_leaves_the_run_alone(cells, compared, tmp_path):
    sim, _ = compared
    before = {p.name: p.stat().st_mtime_ns for p in sim.iterdir() if p.is_file()}
    out = tmp_path / "cmp"
    table = comparison.compare(
        cells,
        label_key="cell_type",
        out=out,
        methods=("scmap-cluster",),
        from_simulation=sim,
        budgets=(29,),
        progress=False,
    )
    assert set(table["training_set"]) == {"pool", "random", "entropy"}
    assert (out / "report.html").is_file()
    after = {p.name: p.stat().st_mtime_ns for p in sim.iterdir() if p.is_file()}
    assert after == before


def test_budgets_the_run_cannot_give_are_noted(cells, compared, tmp_path):
    sim, _ = compared
    table = comparison.compare(
        cells,
        label_key="cell_type",
        out=tmp_path / "cmp",
        methods=("scmap-cluster",),
        from_simulation=sim,
        budgets=(10, 29, 500),
        progress=False,
    )
    assert sorted(table["budget"].unique())[:1] == [29]
    notes = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["notes"]
    assert any("started with 20" in n for n in notes)
    assert any("labeled 47 cells" in n for n in notes)


def test_other_data_than_the_simulation_is_refused(compared, tmp_path):
    sim, _ = compared
    other = make_counts(n_cells=240, n_genes=300, n_types=3, seed=5)
    with pytest.raises(InputError, match="not the data the simulation"):
        comparison.compare(
            other, label_key="cell_type", out=tmp_path / "x", methods=("logreg-ovr",),
            from_simulation=sim, progress=False,
        )  # fmt: skip
    assert not (tmp_path / "x").exists()


def test_foreign_output_folder_and_other_labels_are_refused(cells, compared, tmp_path):
    sim, _ = compared
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my notes")
    with pytest.raises(InputError, match="not empty and holds no scactive run"):
        comparison.compare(
            cells, label_key="cell_type", out=foreign, methods=("logreg-ovr",),
            from_simulation=sim, progress=False,
        )  # fmt: skip
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    relabeled = cells.copy()
    relabeled.obs["other"] = relabeled.obs["cell_type"]
    with pytest.raises(InputError, match="used 'cell_type'"):
        comparison.compare(
            relabeled, label_key="other", out=tmp_path / "y", methods=("logreg-ovr",),
            from_simulation=sim, progress=False,
        )  # fmt: skip


def test_unknown_or_unavailable_method_is_a_clear_error(monkeypatch):
    with pytest.raises(InputError, match="Unknown method 'scmap'.*scmap-cell"):
        comparison.resolve_methods(["scmap"])
    tools = comparison._methods._tools()
    name = next(iter(tools))
    monkeypatch.setattr(tools[name], "unavailable", staticmethod(lambda: "install r-cran-x"))
    with pytest.raises(InputError, match=f"{name}.*install r-cran-x"):
        comparison.resolve_methods([name])
    chosen, notes = comparison.resolve_methods(None)  # by default it is left out, with a note
    assert name not in chosen and any("install r-cran-x" in n for n in notes)


def test_cross_dataset_on_shared_genes_with_a_label_map(tmp_path):
    cells = make_counts(n_cells=360, n_genes=300, n_types=3, seed=0)
    reference = cells[:240].copy()
    # other cells of the same kind; the last 20 genes (no markers) are missing
    query = cells[240:, :280].copy()
    query.obs["truth"] = (
        query.obs["cell_type"].map({"type0": "A", "type1": "B", "type2": "B"}).astype(str)
    )
    with pytest.warns(UserWarning, match="280 genes the two datasets share"):
        table = comparison.compare(
            reference,
            label_key="cell_type",
            out=tmp_path / "cross",
            methods=("scmap-cluster", "logreg-ovr"),
            query=query,
            query_label_key="truth",
            label_map={"type0": "A", "type1": "B", "type2": "B"},
            **OPTIONS,
            progress=False,
        )
    assert set(table["training_set"]) == {"reference"}
    assert (table["macro_f1"] > 0.9).all()
    predictions = pd.read_csv(tmp_path / "cross" / "predictions.csv")
    assert set(predictions["predicted"]) <= {"type0", "type1", "type2", "unassigned"}
    assert (tmp_path / "cross" / "report.html").is_file()
    assert list(pd.read_csv(tmp_path / "cross" / "left_out.csv").columns) == [
        "cell",
        "reason",
        "label",
        "dataset",
    ]


def test_cli_compare_and_its_errors(tmp_path):
    path = tmp_path / "cells.h5ad"
    make_counts(n_cells=150, n_genes=300).write_h5ad(path)
    runner = CliRunner()
    args = ["compare", str(path), "--label-key", "cell_type", "--min-genes", "0",
            "--n-top-genes", "100", "--n-pcs", "10", "--seeds", "1", "--no-progress",
            "--budgets", "29", "--methods", "scmap-cluster,logreg-ovr"]  # fmt: skip
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "ok")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "ok" / "comparison.csv")
    assert set(table["method"]) == {"scmap-cluster", "logreg-ovr"}
    bad = runner.invoke(app, [*args[:-1], "scmap-cluster,sctype", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "Unknown method 'sctype'" in bad.output
    assert not (tmp_path / "b").exists()
    lonely = runner.invoke(app, [*args, "--out", str(tmp_path / "c"), "--label-map", "m.csv"])
    assert lonely.exit_code == 2 and "need --query" in lonely.output


def test_label_map_file_errors(tmp_path):
    from scactive.cli._compare import read_label_map

    path = tmp_path / "map.csv"
    path.write_text("reference,query\nB,B cells\nB,NK cells\n")
    with pytest.raises(InputError, match="more than once"):
        read_label_map(path)
    path.write_text("from,to\nB,B cells\n")
    with pytest.raises(InputError, match="columns 'reference' and 'query'"):
        read_label_map(path)
    path.write_text("reference,query\nB,B cells\nNaive CD4 T,CD4 T cells\n")
    assert read_label_map(path) == {"B": "B cells", "Naive CD4 T": "CD4 T cells"}


def test_evaluate_labels_counts_unassigned_as_wrong():
    from scactive.metrics import evaluate_labels

    y = np.array(["A", "A", "B", "B"])
    pred = np.array(["A", "unassigned", "B", "Node1"])
    metrics, f1 = evaluate_labels(y, pred, np.array(["A", "B"]))
    assert metrics["accuracy"] == 0.5
    assert metrics["frac_unassigned"] == 0.5
    assert f1 == {"A": pytest.approx(2 / 3), "B": pytest.approx(2 / 3)}


def test_cli_tool_failure_is_a_message_and_the_finished_runs_are_kept(tmp_path, monkeypatch):
    from scactive._errors import ToolError

    path = tmp_path / "cells.h5ad"
    make_counts(n_cells=150, n_genes=300).write_h5ad(path)
    real = comparison._compare.run_method

    def fails_for_logreg(name, *args, **kwargs):
        if name == "logreg-ovr":
            raise ToolError("planted failure (R said: no)")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(comparison._compare, "run_method", fails_for_logreg)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["compare", str(path), "--label-key", "cell_type", "--min-genes", "0", "--seeds", "1",
         "--n-top-genes", "100", "--n-pcs", "10", "--no-progress", "--budgets", "29",
         "--strategies", "entropy", "--methods", "scmap-cluster,logreg-ovr", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "planted failure (R said: no)" in result.output and "resume" in result.output
    assert "Traceback" not in result.output
    assert list((out / "compare_cells").glob("*/scmap-cluster__*.csv"))


def test_a_training_set_of_one_type_predicts_that_type(cells, tmp_path):
    methods = ("scmap-cluster", "logreg-ovr", "logreg")
    run = {**RUN, "budgets": (1,), "methods": methods, "initial": 1, "seeds": 1}
    table = comparison.compare(cells, label_key="cell_type", out=tmp_path / "one", **run)
    one = table[table["budget"] == 1]
    assert len(one) == 3 * 2 and (one["n_train"] == 1).all()  # 3 methods x 2 strategies
    predictions = pd.read_csv(tmp_path / "one" / "predictions.csv")
    calls = predictions[predictions["budget"] == 1]
    # every method answers the one type it was shown, for every cell, with full confidence
    assert (calls.groupby(["method", "training_set"])["predicted"].nunique() == 1).all()
    assert (calls["score"] == 1).all()
