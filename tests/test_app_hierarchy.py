"""Hierarchical labels in an annotation session: a tree of 2 levels over planted types, cells
answered at the parent level only, the learner trained on the labels as given, predictions
rolled up level by level, exports with one column per level; the tree kept in the session file
(schema 5), through a reopen and an export resumed; bad trees refused at the command line."""

from __future__ import annotations

import json
import sqlite3

import anndata as ad
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import make_counts
from scactive._errors import InputError
from scactive._hierarchy import Hierarchy
from scactive.app import SCHEMA_VERSION, open_session
from scactive.cli import app
from test_cli_errors import refused

TREE = {"T cell": {"CD4 T": {}, "CD8 T": {}}, "B cell": {"naive B": {}, "memory B": {}}}
#: The planted types of make_counts as the tree's leaves.
LEAVES = {"type0": "CD4 T", "type1": "CD8 T", "type2": "naive B", "type3": "memory B"}
HIERARCHY = Hierarchy.from_tree(TREE)


@pytest.fixture(scope="module")
def planted():
    adata = make_counts(n_cells=200, n_genes=300, n_types=4)
    truth = adata.obs["cell_type"].map(LEAVES).astype(str).to_numpy()
    return adata, truth


def answers(cells, truth, n: int = 80) -> list[tuple[str, str]]:
    """The first ``n`` cells answered: B cells at the finest level, every other T cell at the
    parent level only ("T cell": unsure of the subtype)."""
    rows = []
    for i in range(n):
        parent = HIERARCHY.at_level(truth[i], 1)
        rows.append((cells[i], parent if parent == "T cell" and i % 2 else truth[i]))
    return rows


@pytest.fixture(scope="module")
def trained(planted, tmp_path_factory):
    """A session answered at both levels and trained, and its export."""
    adata, truth = planted
    folder = tmp_path_factory.mktemp("hierarchy")
    path = folder / "h.scactive"
    with open_session(adata, path, hierarchy=TREE) as session:
        rows = answers(session.cells, truth)
        session.answer_many(rows)
        session.train()
        classes = list(session.trained_model().learner.classes_)
        predictions = session.predictions()
        session.export(folder / "annotated.h5ad")
    return path, rows, classes, predictions, ad.read_h5ad(folder / "annotated.h5ad")


def test_the_tree_joins_the_vocabulary_in_order(planted, tmp_path):
    adata, _ = planted
    with open_session(adata, tmp_path / "v.scactive", hierarchy=TREE) as session:
        status = session.status()
    vocabulary = [v["label"] for v in status["vocabulary"]]
    assert vocabulary == list(HIERARCHY.labels)  # parents before their children
    assert {v["source"] for v in status["vocabulary"]} == {"hierarchy"}
    assert status["hierarchy"] == HIERARCHY.to_dict()


def test_a_parent_label_is_a_class_beside_its_subtypes(trained):
    _, rows, classes, _, _ = trained
    given = {label for _, label in rows}
    assert "T cell" in given and {"CD4 T", "CD8 T"} <= given  # both levels answered
    assert sorted(classes) == sorted(given)  # the engine trains on the labels as given


def test_predictions_roll_up_consistently_with_the_tree(planted, trained):
    _, truth = planted
    _, rows, _, predictions, _ = trained
    level1, level2 = predictions["level1"].to_numpy(), predictions["level2"].to_numpy()
    assert (predictions["predicted"].to_numpy() == level2).all()  # the finest level's call
    for top, fine in zip(level1, level2, strict=True):
        assert HIERARCHY.at_level(fine, 1) == top  # never contradicts the level above
    conf1, conf2 = predictions["level1_confidence"], predictions["level2_confidence"]
    assert (conf1 >= conf2 - 1e-6).all()  # the probability under a call shrinks going down
    unlabeled = np.arange(len(rows), len(truth))
    top_truth = np.array([HIERARCHY.at_level(t, 1) for t in truth])
    assert (level1[unlabeled] == top_truth[unlabeled]).mean() > 0.95
    # at level 2, a T cell may stay "T cell" (the parent class competes) but is never wrong
    # within the tree; B cells were always answered at the finest level
    fine_ok = (level2 == truth) | (level2 == top_truth)
    assert fine_ok[unlabeled].mean() > 0.95
    b_cells = unlabeled[top_truth[unlabeled] == "B cell"]
    assert (level2[b_cells] == truth[b_cells]).mean() > 0.9


def test_the_export_carries_one_column_per_level(planted, trained):
    _, truth = planted
    _, rows, _, predictions, out = trained
    obs = out.obs
    for column in ("scactive_level1", "scactive_level2"):
        assert column in obs and f"{column}_confidence" in obs
    assert "scactive_level3" not in obs
    labeled = dict(rows)
    for i, cell in enumerate(out.obs_names):
        top, fine = obs["scactive_level1"].iloc[i], obs["scactive_level2"].iloc[i]
        assert HIERARCHY.at_level(fine, 1) == top
        if cell in labeled:  # the person's label, at each level
            assert obs["scactive_label"].iloc[i] == labeled[cell]
            assert (top, fine) == (
                HIERARCHY.at_level(labeled[cell], 1),
                HIERARCHY.at_level(labeled[cell], 2),  # "T cell" stays "T cell"
            )
            assert np.isnan(obs["scactive_level1_confidence"].iloc[i])
        else:
            assert fine == predictions["level2"].iloc[i]
            assert obs["scactive_level2_confidence"].iloc[i] == pytest.approx(
                predictions["level2_confidence"].iloc[i]
            )
    parents_only = [c for c, label in labeled.items() if label == "T cell"]
    assert set(obs.loc[parents_only, "scactive_level2"]) == {"T cell"}
    record = out.uns["scactive"]["hierarchy"]
    assert dict(zip(record["type"], record["parent"], strict=True)) == HIERARCHY.to_dict()


def test_the_hierarchy_survives_reopen_and_export_resume(planted, trained, tmp_path):
    adata, _ = planted
    path, rows, _, _, out = trained
    with open_session(adata, path) as session:  # no hierarchy given: the file's
        assert session.status()["hierarchy"] == HIERARCHY.to_dict()
        assert "scactive_level2" in session.export_table()
    exported = tmp_path / "exported.h5ad"
    out.write_h5ad(exported)
    resumed = ad.read_h5ad(exported)
    with open_session(resumed, tmp_path / "resumed.scactive", label_key="scactive_label") as s:
        assert s.status()["hierarchy"] == HIERARCHY.to_dict()
        assert dict(zip(s.labels()["cell"], s.labels()["label"], strict=True)) == dict(rows)
        vocabulary = {v["label"] for v in s.status()["vocabulary"]}
        assert set(HIERARCHY.labels) <= vocabulary  # "B cell" too, which no answer names
        table = s.export_table()
    assert (table["scactive_level1"].dropna() != "").all()


def test_a_later_tree_may_grow_but_not_contradict(planted, tmp_path):
    adata, _ = planted
    path = tmp_path / "grow.scactive"
    open_session(adata, path, hierarchy=TREE).close()
    grown = {"Lymphocyte": {"T cell": {}, "NK": {}}}  # a level above, and a new type
    with open_session(adata, path, hierarchy=grown) as session:
        parents = session.status()["hierarchy"]
    assert parents["T cell"] == "Lymphocyte" and parents["CD4 T"] == "T cell"
    assert parents["NK"] == "Lymphocyte" and parents["B cell"] == ""
    with pytest.raises(InputError, match=r"puts 'CD4 T' under 'T cell'.*under 'B cell'"):
        open_session(adata, path, hierarchy={"B cell": {"CD4 T": {}}})
    with pytest.raises(InputError, match="cycle"):
        open_session(adata, path, hierarchy={"CD4 T": {"Lymphocyte": {}}})
    with pytest.raises(InputError, match="reads as 'no label'"):
        open_session(adata, path, hierarchy={"unknown": {"X": {}}})
    with open_session(adata, path) as session:  # nothing refused was written
        assert session.status()["hierarchy"] == parents


def test_a_session_file_of_schema_4_gains_the_hierarchy(planted, tmp_path):
    adata, _ = planted
    path = tmp_path / "old.scactive"
    with open_session(adata, path, markers={"B cell": ["G40"]}) as session:
        session.answer(session.cells[0], "NK")
    with sqlite3.connect(path) as conn:  # as schema 4 made it: no hierarchy, old sources
        conn.execute("DROP TABLE hierarchy")
        conn.execute("ALTER TABLE vocabulary RENAME TO v")
        conn.execute(
            "CREATE TABLE vocabulary (label TEXT PRIMARY KEY, added_at TEXT NOT NULL, source "
            "TEXT NOT NULL CHECK (source IN ('seed', 'markers', 'user')))"
        )
        conn.execute("INSERT INTO vocabulary SELECT label, added_at, source FROM v")
        conn.execute("DROP TABLE v")
        conn.execute("PRAGMA user_version = 4")
    with open_session(adata, path, hierarchy=TREE) as session:
        vocabulary = session.status()["vocabulary"]
        assert session.labels()["label"].tolist() == ["NK"]
    assert [(v["label"], v["source"]) for v in vocabulary][:2] == [
        ("B cell", "markers"),
        ("NK", "user"),
    ]  # order and sources kept
    assert {v["label"] for v in vocabulary} == {"NK", *HIERARCHY.labels}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        assert conn.execute("SELECT COUNT(*) FROM hierarchy").fetchone()[0] == 6


# -- the command line ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_file(planted, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cells.h5ad"
    planted[0].write_h5ad(path)
    return path


def query(data_file, session, *extra):
    args = ["query", str(data_file), "--session", str(session), "--n", "3", *extra]
    return CliRunner().invoke(app, args)


def test_the_cli_takes_a_tree_file_and_a_markers_parent_column(data_file, tmp_path):
    tree = tmp_path / "tree.yaml"
    tree.write_text("T cell:\n  CD4 T:\n  CD8 T:\nB cell:\n  - naive B\n  - memory B\n")
    session = tmp_path / "cli.scactive"
    assert query(data_file, session, "--hierarchy", str(tree)).exit_code == 0
    markers = tmp_path / "markers.csv"
    markers.write_text("type,gene,parent\nCD4 T,G0,T cell\nCD4 T,G1,T cell\nNK,G60,Lymphocyte\n")
    assert query(data_file, session, "--markers", str(markers)).exit_code == 0
    with open_session(ad.read_h5ad(data_file), session) as s:
        parents = s.status()["hierarchy"]
    assert parents["naive B"] == "B cell" and parents["CD4 T"] == "T cell"
    assert parents["NK"] == "Lymphocyte" and parents["Lymphocyte"] == ""


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("cycle.csv", "type,parent\na,b\nb,a\n", "has a cycle: a > b > a"),
        ("twice.csv", "type,parent\na,b\na,c\n", "gives 'a' two parents"),
        ("twice.json", json.dumps({"a": {"x": {}}, "b": {"x": {}}}), "names 'x' twice"),
        ("flat.csv", "type,gene\nB,MS4A1\n", "needs columns 'type' and 'parent'"),
        ("bad.yaml", "a: [b\n", "Could not read the hierarchy file"),
        ("none.json", json.dumps({"unknown": {"x": {}}}), "reads as 'no label'"),
        ("missing.json", None, "Hierarchy file not found"),
    ],
)
def test_bad_tree_files_are_refused_at_the_cli(data_file, tmp_path, name, text, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    session = tmp_path / "bad.scactive"
    refused(query(data_file, session, "--hierarchy", str(path)), message)
    args = ["annotate", str(data_file), "--session", str(session), "--port", "0"]
    refused(CliRunner().invoke(app, [*args, "--hierarchy", str(path)]), message)


def test_conflicting_trees_are_refused_at_the_cli(data_file, tmp_path):
    tree, markers = tmp_path / "tree.json", tmp_path / "markers.tsv"
    tree.write_text(json.dumps(TREE))
    markers.write_text("type\tgene\tparent\nCD4 T\tG0\tB cell\n")
    session = tmp_path / "conflict.scactive"
    refused(
        query(data_file, session, "--hierarchy", str(tree), "--markers", str(markers)),
        "puts 'CD4 T' under 'T cell', the marker file's parent column",
    )
    assert query(data_file, session, "--hierarchy", str(tree)).exit_code == 0
    other = tmp_path / "other.csv"
    other.write_text("type,parent\nCD8 T,B cell\n")
    refused(query(data_file, session, "--hierarchy", str(other)), "kept in the session file")
