"""The estimate's measured range, and each cell's final call: a label, the model's call, or
"unknown" below the threshold (the finest level sure enough with a hierarchy)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_counts
from scactive._hierarchy import Hierarchy
from scactive._predict_options import UNKNOWN, call_labels
from scactive.app import _estimate, open_session
from scactive.app._export import export_table
from scactive.app._model import stopping_summary
from scactive.cli import app

FAST = "logreg-pca"
BAND = {
    "about": "planted",
    "model": "planted",
    "labels_per_type_from": [0.0, 3.0, 10.0],
    "low": [-0.30, -0.10, -0.02],
    "high": [0.05, 0.04, 0.01],
    "rounds": [10, 10, 10],
    "unknown_below": 0.65,
}


@pytest.fixture
def planted_band(monkeypatch):
    monkeypatch.setattr(_estimate, "estimate_band", lambda: BAND)


def test_shipped_band_is_measured():
    band = _estimate.estimate_band()
    n = len(band["labels_per_type_from"])
    assert n >= 2 and len(band["low"]) == len(band["high"]) == len(band["rounds"]) == n
    assert all(lo <= hi for lo, hi in zip(band["low"], band["high"], strict=True))
    assert min(band["rounds"]) > 0 and 0 < band["unknown_below"] < 1
    assert band["labels_per_type_from"] == sorted(band["labels_per_type_from"])


def test_range_follows_labels_per_type(planted_band):
    assert _estimate.estimate_range(0.8, 18, 9) == pytest.approx(
        {"low": 0.5, "high": 0.85, "labels_per_type": 2.0, "band_model": "planted"}
    )
    mid = _estimate.estimate_range(0.8, 45, 9)  # 5 per type: the second bin
    assert (mid["low"], mid["high"]) == pytest.approx((0.7, 0.84))
    top = _estimate.estimate_range(0.995, 900, 9)  # clipped to 1
    assert (top["low"], top["high"]) == pytest.approx((0.975, 1.0))
    none = _estimate.estimate_range(None, 18, 9)
    assert none["low"] is None and none["high"] is None
    assert _estimate.default_unknown_below() == 0.65


def test_stopping_summary_counts_the_vocabulary(planted_band):
    rounds = [{"round": 1, "n_labeled": 30, "n_types": 3, "estimated_f1": 0.9, "stop": 0}]
    # 30 labels over 3 learner types is 10 per type; over a 10-type vocabulary 3 per type
    assert stopping_summary(rounds)["low"] == pytest.approx(0.88)
    wide = stopping_summary(rounds, n_types=10)
    assert wide["low"] == pytest.approx(0.8) and wide["labels_per_type"] == 3.0
    assert stopping_summary([])["low"] is None


def test_calls_flat_and_by_level():
    calls = call_labels(np.array(["a", "b", "c"]), np.array([0.9, 0.5, 0.49]), 0.5)
    assert calls.tolist() == ["a", "b", UNKNOWN]
    levels = [
        (np.array(["T", "T", "B"]), np.array([0.95, 0.4, 0.99])),
        (np.array(["CD4", "CD8", "B"]), np.array([0.6, 0.3, 0.99])),
    ]
    calls = call_labels(
        np.array(["CD4", "CD8", "B"]), np.array([0.6, 0.3, 0.99]), 0.7, levels=levels
    )
    # sure of T but not of CD4: T; sure of nothing: unknown; B at every level
    assert calls.tolist() == ["T", UNKNOWN, "B"]


def test_export_call_column():
    cells = pd.Index(["c0", "c1", "c2", "c3"])
    predictions = pd.DataFrame(
        {"cell": cells, "predicted": ["x", "y", "y", "x"], "confidence": [0.9, 0.6, 0.3, 0.2]}
    )
    answers = [
        {"cell": "c3", "label": "z", "kind": "label", "strategy": "entropy", "round": 1,
         "answered_at": "t", "annotator": None},
    ]  # fmt: skip
    table = export_table(cells, answers, predictions, unknown_below=0.5)
    assert table["scactive_call"].tolist() == ["x", "y", UNKNOWN, "z"]  # a label stands
    assert table["scactive_predicted"].tolist() == ["x", "y", "y", "x"]  # raw: kept
    strict = export_table(cells, answers, predictions, unknown_below=0.95)
    assert strict["scactive_call"].tolist() == [UNKNOWN, UNKNOWN, UNKNOWN, "z"]
    # with levels: the finest level sure enough
    tree = Hierarchy.from_tree({"T": {"x": {}, "y": {}}})
    predictions["level1"], predictions["level1_confidence"] = ["T", "T", "T", "T"], [1.0] * 4
    predictions["level2"] = predictions["predicted"]
    predictions["level2_confidence"] = predictions["confidence"]
    leveled = export_table(cells, answers, predictions, tree, unknown_below=0.5)
    assert leveled["scactive_call"].tolist() == ["x", "y", "T", "z"]


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calls")
    adata = make_counts(n_cells=120, n_genes=200, n_types=3)
    data = folder / "cells.h5ad"
    adata.write_h5ad(data)
    truth = adata.obs["cell_type"].astype(str)
    with open_session(adata, folder / "cells.scactive", model=FAST) as session:
        session.answer_many([(c, truth[c]) for c in adata.obs_names[::8]])
        session.train()
    return folder / "cells.scactive", data


def test_cli_export_threshold(session_file, tmp_path):
    path, data = session_file
    out = tmp_path / "out.h5ad"
    result = CliRunner().invoke(
        app, ["export", str(data), "--session", str(path), "--out", str(out),
              "--unknown-below", "0.99"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    exported = ad.read_h5ad(out)
    obs = exported.obs
    assert exported.uns["scactive"]["settings"]["unknown_below"] == 0.99
    unlabeled = obs["scactive_label"].isna()
    expected = np.where(obs["scactive_confidence"] >= 0.99, obs["scactive_predicted"], UNKNOWN)
    assert (obs["scactive_call"][unlabeled].astype(str) == expected[unlabeled]).all()
    labeled = ~unlabeled
    assert (
        obs["scactive_call"][labeled].astype(str) == obs["scactive_label"][labeled].astype(str)
    ).all()
    assert (obs["scactive_call"] == UNKNOWN).sum() > 0


@pytest.mark.parametrize("value", ["1.5", "-0.1", "abc"])
def test_cli_export_refuses_a_bad_threshold(session_file, tmp_path, value):
    path, data = session_file
    out = tmp_path / "out.h5ad"
    result = CliRunner().invoke(
        app, ["export", str(data), "--session", str(path), "--out", str(out),
              "--unknown-below", value]
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown-below" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_a_parent_type_is_not_counted_missed(tmp_path):
    """With a tree, the estimate averages over the answered types and the leaf types: a
    parent whose cells were all labeled by subtype is not a type the model missed."""
    adata = make_counts(n_cells=90, n_genes=150, n_types=3)
    truth = adata.obs["cell_type"].astype(str)
    tree = {"lymphoid": {"type0": {}, "type1": {}}, "type2": {}, "never seen": {}}
    with open_session(adata, tmp_path / "s.scactive", model=FAST, hierarchy=tree) as session:
        session.answer_many([(c, truth[c]) for c in adata.obs_names[::6]])
        session.train()
        status = session.status()
        # type0, type1, type2 labeled, "never seen" missed; "lymphoid" (a parent) not counted
        assert session._model.n_task_types(status["vocabulary"]) == 4
        assert status["estimate"]["labels_per_type"] == pytest.approx(15 / 4)
        assert status["estimate"]["low"] is not None
