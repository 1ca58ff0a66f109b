"""``simulate`` with a cell-type hierarchy: macro-F1 per level, planted answers, CLI, report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

from conftest import make_counts
from scactive import InputError, simulate
from scactive._hierarchy import Hierarchy
from scactive.cli import app
from scactive.metrics import evaluate, level_columns, level_f1
from scactive.pl import has_levels, level_curves
from scactive.report import write_report
from test_cli import FAST as CLI_GRID
from test_simulate import FAST as SIMULATE_FAST

#: A and its subtypes A1, A2 (one planted type split in two at random: inseparable), B and C.
TREE = {"A": ["A1", "A2"], "B": {}, "C": {}}
#: test_simulate's small grid with the fast linear learner and two seeds (a spread over seeds).
FAST = {**SIMULATE_FAST, "models": ["logreg"], "seeds": 2}
CLI_FAST = ["--label-key", "cell_type", "--models", "logreg", *CLI_GRID]


def planted(n_cells: int = 240) -> object:
    """Three well-separated types; the first is split at random into A1 and A2 (the same
    expression: only their parent A can be told apart), the others are B and C."""
    adata = make_counts(n_cells=n_cells, n_genes=300, n_types=3)
    kind = adata.obs["cell_type"].astype(str).to_numpy()
    half = np.random.default_rng(1).random(len(kind)) < 0.5
    adata.obs["cell_type"] = pd.Categorical(
        np.where(kind == "type0", np.where(half, "A1", "A2"), np.where(kind == "type1", "B", "C"))
    )
    return adata


@pytest.fixture(scope="module")
def adata():
    return planted()


@pytest.fixture(scope="module")
def runs(adata):
    """The same grid with the tree and without it."""
    with_tree = simulate(adata, label_key="cell_type", hierarchy=TREE, report=False, **FAST)
    without = simulate(adata, label_key="cell_type", report=False, **FAST)
    return with_tree, without


def test_the_parent_level_scores_above_its_inseparable_subtypes(runs):
    table, _ = runs
    assert level_columns(table.columns) == ["macro_f1_level1", "macro_f1_level2"]
    active = table[table.strategy != "ceiling"]
    final = active[active["round"] == active["round"].max()]
    level1, level2 = final["macro_f1_level1"].mean(), final["macro_f1_level2"].mean()
    # A vs B vs C is planted well apart; A1 vs A2 is a coin toss (about 0.5 F1 each)
    assert level1 > 0.95, level1
    assert level2 < 0.9 and level1 - level2 > 0.15, (level1, level2)
    ceiling = table[table.strategy == "ceiling"]
    assert (ceiling["macro_f1_level1"] > ceiling["macro_f1_level2"] + 0.1).all()


def test_macro_f1_stays_the_argmax_and_no_tree_adds_no_columns(runs):
    with_tree, without = runs
    assert not level_columns(without.columns)
    assert set(with_tree.columns) - set(without.columns) == {
        "macro_f1_level1",
        "macro_f1_level2",
    }
    same = ["strategy", "seed", "round", "n_labeled", "accuracy", "macro_f1", "loss"]
    pd.testing.assert_frame_equal(with_tree[same], without[same])


def test_level_f1_decodes_top_down_where_the_argmax_does_not():
    tree = Hierarchy.from_tree({"T": ["T1", "T2"], "M": ["M1"]})
    classes = np.array(["M1", "T1", "T2"])
    # the argmax is M1, but T (0.3 + 0.3) beats M (0.4): the decoded call is T1
    proba = np.array([[0.4, 0.3, 0.3], [0.0, 0.1, 0.9], [1.0, 0.0, 0.0]])
    truth = np.array(["T1", "T2", "M1"])
    scores = level_f1(truth, proba, classes, hierarchy=tree)
    assert scores == {"macro_f1_level1": 1.0, "macro_f1_level2": 1.0}
    plain = evaluate(truth, proba, classes, all_classes=classes, hierarchy=tree)
    assert plain["macro_f1"] < 1.0 and plain["macro_f1_level2"] == 1.0
    assert "macro_f1_level1" not in evaluate(truth, proba, classes, all_classes=classes)


def test_a_tree_naming_none_of_the_labels_is_refused_and_gaps_are_named(adata, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(InputError, match="names none of the data's labels.*--label-key"):
        simulate(adata, label_key="cell_type", out=out, hierarchy={"X": ["Y"]}, **FAST)
    assert not out.exists() or not any(out.iterdir())
    with pytest.warns(UserWarning, match="does not name 2 of the data's 4 labels: 'B', 'C'"):
        table = simulate(
            adata, label_key="cell_type", hierarchy={"A": ["A1", "A2"]}, report=False,
            **{**FAST, "seeds": 1, "n_rounds": 0, "strategies": ["random"]},
        )  # fmt: skip
    assert level_columns(table.columns) == ["macro_f1_level1", "macro_f1_level2"]


def test_resuming_with_another_hierarchy_is_refused(adata, tmp_path):
    small = {**FAST, "seeds": 1, "n_rounds": 1, "strategies": ["random"], "report": False}
    out = tmp_path / "run"
    first = simulate(adata, label_key="cell_type", out=out, hierarchy=TREE, **small)
    config = json.loads((out / "config.json").read_text())
    assert config["hierarchy"] == {"A": "", "A1": "A", "A2": "A", "B": "", "C": ""}
    again = simulate(adata, label_key="cell_type", out=out, hierarchy=TREE, **small)
    pd.testing.assert_frame_equal(first.drop(columns=_SECONDS), again.drop(columns=_SECONDS))
    other = {"A": ["A1"], "B": ["A2"], "C": {}}
    for hierarchy in (other, None):
        with pytest.raises(InputError, match="different run"):
            simulate(adata, label_key="cell_type", out=out, hierarchy=hierarchy, **small)
    plain = tmp_path / "plain"
    simulate(adata, label_key="cell_type", out=plain, **small)
    # a run without a tree writes the config it wrote before hierarchies (same fingerprint)
    assert "hierarchy" not in json.loads((plain / "config.json").read_text())


_SECONDS = ["train_seconds", "query_seconds"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cells.h5ad"
    planted(150).write_h5ad(path)
    return path


def test_cli_reads_json_and_csv_trees_alike(data_file, tmp_path):
    json_tree = tmp_path / "tree.json"
    json_tree.write_text(json.dumps(TREE))
    csv_tree = tmp_path / "tree.csv"
    csv_tree.write_text("type,parent\nA1,A\nA2,A\nB,\nC,\n")
    tables = []
    for tree, report in ((json_tree, "--report"), (csv_tree, "--no-report")):
        out = tmp_path / tree.suffix[1:]
        result = CliRunner().invoke(
            app, ["simulate", str(data_file), "--out", str(out), "--hierarchy", str(tree),
                  report, *CLI_FAST],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        tables.append(pd.read_csv(out / "results.csv"))
    levels = ["macro_f1_level1", "macro_f1_level2"]
    assert level_columns(tables[0].columns) == levels
    pd.testing.assert_frame_equal(tables[0][levels], tables[1][levels])
    page = (tmp_path / "json" / "report.html").read_text()
    assert "Macro F1 per level of the cell-type hierarchy" in page
    assert (tmp_path / "json" / "figures" / "fig10_level_curves_logreg.png").is_file()
    assert "macro_f1_level1_mean" in pd.read_csv(tmp_path / "json" / "summary.csv").columns


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ('{"T cell": ["CD4 T", "CD8 T"]}', "names none of the data's labels"),
        ('{"A": ["A1"], "B": ["A1"]}', "names 'A1' twice"),
        (None, "not found"),
    ],
)
def test_cli_refuses_a_bad_tree_with_exit_2(data_file, tmp_path, tree, message):
    path = tmp_path / "tree.json"
    if tree is not None:
        path.write_text(tree)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["simulate", str(data_file), "--out", str(out), "--hierarchy", str(path), *CLI_FAST]
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert message in text and "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_results_without_levels_render_without_the_level_parts(runs, tmp_path):
    with_tree, without = runs
    assert has_levels(with_tree) and not has_levels(without)
    fig = Figure()
    ax = fig.add_subplot()
    assert level_curves(with_tree, ax=ax) is fig and ax.get_lines()
    with pytest.raises(InputError, match="--hierarchy"):
        level_curves(without)
    out = tmp_path / "old"
    out.mkdir()
    without.to_csv(out / "results.csv", index=False)
    page = write_report(out).read_text()
    assert "Macro F1 per level" not in page
    assert not list((out / "figures").glob("fig10*"))
