"""``scactive export`` after labels given to selections in one action: each bulk-labeled cell
exports its action's label, kind ``bulk`` and provenance; single answers keep their kind; an
undone action leaves its cells without a label; ``uns['scactive']`` logs every answer of
every action; and a session resumed from the export (``scactive annotate exported.h5ad
--label-key scactive_label``) starts from the same labels."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from conftest import make_counts
from scactive.app import open_session
from scactive.app._server import create_app
from scactive.cli import app
from scactive.cli._session_args import open_session_over
from serving import DEADLINE

#: A learner that trains in milliseconds.
FAST = "logreg-pca"
LOCAL = "http://127.0.0.1:8765"


def invoke(*args):
    return CliRunner().invoke(app, list(map(str, args)))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A session answered through the server: single answers (a label, unsure, doublet), a
    lasso and a cluster labeled in one action each (a single label given before the lasso
    to one of its cells, one after the cluster's to one of its cells), and a third action,
    over another cluster, undone; then ``scactive export`` to an h5ad and a CSV."""
    folder = tmp_path_factory.mktemp("bulk")
    adata = make_counts(n_cells=150, n_genes=300, n_types=3)
    data = folder / "cells.h5ad"
    adata.write_h5ad(data)
    path = folder / "cells.scactive"
    session = open_session(adata, path, model=FAST, source=str(data))
    web = create_app(session, batch_size=4)
    web.state.trainer.wait(DEADLINE)
    cells = session.cells
    with TestClient(web, base_url=LOCAL, headers={"Origin": LOCAL}) as client:

        def post(route, body):
            reply = client.post(route, json=body)
            assert reply.status_code == 200, reply.text
            return reply.json()

        clusters = session.map.clusters()
        assert len(set(clusters.tolist())) >= 3
        c0, c1, c2 = (np.flatnonzero(clusters == k).tolist() for k in range(3))
        lasso = c0[:20]
        before, single, unsure, doublet = cells[c0[0]], cells[c0[20]], cells[c0[21]], cells[c0[22]]
        ids = {"before": post("/api/answer", {"cell": before, "label": "type0"})["id"]}
        ids["single"] = post("/api/answer", {"cell": single, "label": "type0"})["id"]
        post("/api/answer", {"cell": unsure, "kind": "unsure"})
        post("/api/answer", {"cell": doublet, "kind": "doublet"})
        kept = post(
            "/api/label-selection",
            {"label": "alpha", "positions": lasso, "shape": "lasso", "annotator": "Ana"},
        )
        cluster = post("/api/label-selection", {"label": "gamma", "cluster": 2})
        after = cells[c2[0]]
        ids["after"] = post("/api/answer", {"cell": after, "label": "delta"})["id"]
        undone = post("/api/label-selection", {"label": "beta", "cluster": 1})
        taken = post("/api/undo", {"id": undone["first_id"]})["undone"]
        assert taken["n_undone"] == len(c1)
        web.state.trainer.wait(DEADLINE)  # a retraining an answer started
    session.close()
    out, csv = folder / "exported.h5ad", folder / "exported.csv"
    done = invoke("export", "--session", path, "--out", out, "--csv", csv)  # data: recorded
    assert done.exit_code == 0, done.output
    bulk = {
        **{cells[p]: ("alpha", "lasso") for p in lasso},
        **{cells[p]: ("gamma", "cluster:2") for p in c2 if cells[p] != after},
    }
    singles = {single: ("type0", "label"), after: ("delta", "label")}
    singles.update({unsure: (None, "unsure"), doublet: (None, "doublet")})
    return {
        "out": out,
        "csv": csv,
        "folder": folder,
        "cells": list(cells),
        "bulk": bulk,
        "singles": singles,
        "undone": [cells[p] for p in c1],
        "lasso": [cells[p] for p in lasso],
        "cluster": [cells[p] for p in c2],
        "actions": {"lasso": kept, "cluster": cluster, "undone": undone},
        "ids": ids,
        "before": before,
        "after": after,
    }


def current_labels(planted) -> dict[str, str]:
    """The label each cell should carry: the kept actions' and the single labels."""
    labels = {cell: label for cell, (label, _) in planted["bulk"].items()}
    labels.update({c: label for c, (label, kind) in planted["singles"].items() if kind == "label"})
    return labels


def test_the_h5ad_shows_each_cells_action_or_single_answer(planted):
    obs = ad.read_h5ad(planted["out"]).obs
    assert len(obs) == 150
    for cell, (label, provenance) in planted["bulk"].items():
        row = obs.loc[cell]
        assert (row["scactive_label"], row["scactive_answer_kind"]) == (label, "bulk"), cell
        assert row["scactive_provenance"] == provenance, cell
        assert row["scactive_strategy"] == "user"
    assert obs.loc[planted["lasso"], "scactive_annotator"].eq("Ana").all()
    # the single label given before the lasso was replaced by it
    assert obs.loc[planted["before"], "scactive_answer_kind"] == "bulk"
    for cell, (label, kind) in planted["singles"].items():
        row = obs.loc[cell]
        assert row["scactive_answer_kind"] == kind and row["scactive_provenance"] == "", cell
        assert row["scactive_label"] == label if label else pd.isna(row["scactive_label"])
    undone = obs.loc[planted["undone"]]
    assert undone["scactive_label"].isna().all() and undone["scactive_answer_kind"].isna().all()
    assert undone["scactive_provenance"].isna().all()
    assert obs.loc[planted["undone"], "scactive_predicted"].notna().all()  # a model's calls
    # nothing else was labeled, and nothing else is a bulk label
    assert obs["scactive_label"].dropna().astype(str).to_dict() == current_labels(planted)
    assert int((obs["scactive_answer_kind"] == "bulk").sum()) == len(planted["bulk"])


def test_the_csv_holds_the_same_answers(planted):
    table = pd.read_csv(planted["csv"], index_col="cell", dtype=str, keep_default_na=False)
    assert table.index.tolist() == planted["cells"]
    for cell, (label, provenance) in planted["bulk"].items():
        assert table.loc[cell, "scactive_label"] == label
        assert table.loc[cell, "scactive_answer_kind"] == "bulk"
        assert table.loc[cell, "scactive_provenance"] == provenance
    for cell, (label, kind) in planted["singles"].items():
        assert table.loc[cell, "scactive_label"] == (label or "")
        assert table.loc[cell, "scactive_answer_kind"] == kind
        assert table.loc[cell, "scactive_provenance"] == ""
    undone = table.loc[planted["undone"]]
    assert (undone[["scactive_label", "scactive_answer_kind", "scactive_provenance"]] == "").all(
        axis=None
    )
    labeled = table.loc[table["scactive_label"] != "", "scactive_label"]
    assert labeled.to_dict() == current_labels(planted)


def test_the_answer_log_holds_every_answer_of_every_action(planted):
    log = pd.DataFrame(ad.read_h5ad(planted["out"]).uns["scactive"]["answers"])
    actions = planted["actions"]
    lasso = log[log["action"] == actions["lasso"]["action"]]
    assert sorted(lasso["cell"]) == sorted(planted["lasso"])
    assert set(lasso["provenance"]) == {"lasso"} and set(lasso["label"]) == {"alpha"}
    assert set(lasso["kind"]) == {"label"} and set(lasso["annotator"]) == {"Ana"}
    assert not lasso["undone"].any() and not lasso["superseded"].any()
    assert lasso["id"].min() == actions["lasso"]["first_id"]
    cluster = log[log["action"] == actions["cluster"]["action"]].set_index("cell")
    assert sorted(cluster.index) == sorted(planted["cluster"])
    assert set(cluster["provenance"]) == {"cluster:2"} and not cluster["undone"].any()
    # the single label after the cluster's replaced its answer of that cell, and only that
    assert cluster["superseded"].sum() == 1 and cluster.loc[planted["after"], "superseded"]
    assert cluster.loc[planted["after"], "superseded_by"] == planted["ids"]["after"]
    undone = log[log["action"] == actions["undone"]["action"]]
    assert sorted(undone["cell"]) == sorted(planted["undone"])
    assert set(undone["provenance"]) == {"cluster:1"} and set(undone["label"]) == {"beta"}
    assert undone["undone"].all() and (undone["undone_at"] != "").all()
    single = log[log["action"] == -1].set_index("id")
    assert len(single) == 5 and set(single["provenance"]) == {""}
    replaced = single.loc[planted["ids"]["before"]]
    assert replaced["superseded"] and replaced["cell"] == planted["before"]
    assert replaced["superseded_by"] == int(lasso.set_index("cell").loc[planted["before"], "id"])
    assert len(log) == 5 + len(lasso) + len(cluster) + len(undone)


def test_a_session_resumed_from_the_export_has_the_same_labels(planted):
    resumed = planted["folder"] / "resumed.scactive"
    with open_session_over(
        str(planted["out"]), resumed, label_key="scactive_label", learner=FAST
    ) as session:
        labels = session.labels().set_index("cell")
        history = session.history().set_index("cell")
    assert labels["label"].to_dict() == current_labels(planted)
    assert set(labels["kind"]) == {"label"} and (history["origin"] == "seed").all()
    # a label given in one action keeps who gave it
    assert history.loc[planted["lasso"], "annotator"].eq("Ana").all()
    assert not set(planted["undone"]) & set(labels.index)
