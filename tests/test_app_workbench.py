"""The map as a workbench, through the server: colouring by a gene (a binary column of the
log-normalised matrix), by Leiden clusters (computed once, kept in the session file), by the
input's categorical obs columns; and a selection labeled in one action, undone as one."""

from __future__ import annotations

import json
import sqlite3
import struct

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from starlette.testclient import TestClient

from conftest import make_counts
from scactive.app import open_session
from scactive.app._map import COLOUR_MAGIC
from scactive.app._server import create_app
from scactive.app._sqlite import SCHEMA_VERSION
from serving import DEADLINE

LOCAL = "http://127.0.0.1:8765"


def decode_colouring(body: bytes) -> tuple[dict, np.ndarray]:
    """A colouring payload read independently of the page: its header and its array."""
    assert body[:4] == COLOUR_MAGIC
    (length,) = struct.unpack("<I", body[4:8])
    header = json.loads(body[8 : 8 + length].decode("utf-8"))
    offset = 8 + length + (-(8 + length) % 4)
    dtype = "<f4" if header["kind"] == "values" else f"<u{header['code_bytes']}"
    values = np.frombuffer(body, dtype=dtype, count=header["n"], offset=offset)
    assert offset + values.nbytes == len(body)
    return header, values


def planted_data():
    adata = make_counts(n_cells=150, n_genes=300, n_types=3)
    counts = adata.X.toarray()
    counts[:, 7] = np.arange(150) % 6  # a planted gene: 0..5 counts, cycling
    adata.X = sp.csr_matrix(counts)
    adata.var_names = [*adata.var_names[:7], "PLANTED", *adata.var_names[8:]]
    adata.obs["batch"] = pd.Categorical(np.where(np.arange(150) < 60, "b1", "b2"))
    adata.obs["condition"] = np.where(np.arange(150) % 3 == 0, "stim", "ctrl")  # text
    adata.obs["n_counts"] = counts.sum(axis=1)  # numbers: not a category
    adata.obs["barcode"] = [f"bc{i}" for i in range(150)]  # one per cell: not a category
    return adata, counts


@pytest.fixture
def served(tmp_path):
    adata, counts = planted_data()
    session = open_session(adata, tmp_path / "w.scactive")
    app = create_app(session, batch_size=4)
    app.state.trainer.wait(DEADLINE)
    with TestClient(app, base_url=LOCAL, headers={"Origin": LOCAL}) as client:
        client.session, client.adata, client.counts, client.path = (
            session,
            adata,
            counts,
            (tmp_path / "w.scactive"),
        )
        yield client
    session.close()


def test_a_genes_colouring_is_its_log_normalised_column(served):
    reply = served.get("/api/colour/gene/planted")  # case-folded
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/octet-stream"
    header, values = decode_colouring(reply.content)
    counts = served.counts
    expected = np.log1p(counts[:, 7] / counts.sum(axis=1) * 1e4)  # normalised to 10^4, log1p
    assert header["name"] == "PLANTED" and header["n"] == 150
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    assert header["min"] == pytest.approx(expected.min()) == 0
    assert header["max"] == pytest.approx(expected.max(), rel=1e-5)
    assert served.get("/api/genes", params={"q": "plan"}).json()["genes"] == ["PLANTED"]
    assert served.get("/api/genes", params={"q": "G29"}).json()["genes"][:2] == ["G29", "G290"]
    missing = served.get("/api/colour/gene/NOPE")
    assert missing.status_code == 404 and "Unknown gene" in missing.json()["error"]


def test_clusters_are_computed_once_and_read_back(served, monkeypatch):
    header, codes = decode_colouring(served.get("/api/colour/clusters").content)
    clusters = codes.astype(int) - 1
    truth = served.adata.obs["cell_type"].astype(str).to_numpy()
    # three well-separated types: each cluster one type, each type one cluster
    pairs = set(zip(clusters.tolist(), truth.tolist(), strict=True))
    assert len(pairs) == len(set(clusters)) == len(set(truth)) == 3
    assert header["counts"] == np.bincount(clusters).tolist()
    assert header["counts"] == sorted(header["counts"], reverse=True)  # 0 the largest
    stored = served.session._store.embedding("leiden")
    np.testing.assert_array_equal(stored[:, 0].astype(int), clusters)
    served.session.close()
    import scactive.strategies._cold as cold

    def refuse(*args, **kwargs):
        raise AssertionError("the clusters were computed again")

    monkeypatch.setattr(cold, "leiden_clusters", refuse)
    with open_session(served.adata, served.path) as again:
        np.testing.assert_array_equal(again.map.clusters(), clusters)
    served.session = open_session(served.adata, served.path)  # for the fixture's close


def test_the_categorical_obs_columns_are_listed_and_coloured(served):
    listed = served.get("/api/state").json()["obs_columns"]
    assert listed == [
        {"name": "cell_type", "n_categories": 3},
        {"name": "batch", "n_categories": 2},
        {"name": "condition", "n_categories": 2},
    ]
    header, codes = decode_colouring(served.get("/api/colour/obs/condition").content)
    assert header["categories"] == ["ctrl", "stim"]
    names = np.array(header["categories"])[codes.astype(int) - 1]
    assert names.tolist() == served.adata.obs["condition"].tolist()
    assert header["counts"] == [100, 50]
    for refused in ("n_counts", "barcode", "nothing"):
        assert served.get(f"/api/colour/obs/{refused}").status_code == 404


def test_a_selection_is_labeled_in_one_action_and_undone_as_one(served):
    session = served.session
    clusters = session.map.clusters()
    positions = np.flatnonzero(clusters == 0)[:40].tolist()  # a lasso inside cluster 0
    single = session.cells[positions[3]]
    first = served.post("/api/answer", json={"cell": single, "label": "A"}).json()["id"]
    reply = served.post(
        "/api/label-selection",
        json={"label": "B", "positions": positions, "shape": "lasso", "annotator": "Ana"},
    )
    assert reply.status_code == 200, reply.text
    done = reply.json()
    assert done["n_labeled"] == 40 and done["n_unchanged"] == 0
    history = session.history()
    rows = history[history["action"] == done["action"]]
    assert sorted(rows["cell"]) == sorted(session.cells[positions])
    assert set(rows["kind"]) == {"label"} and set(rows["provenance"]) == {"lasso"}
    assert set(rows["annotator"]) == {"Ana"} and rows["id"].min() == done["first_id"]
    relabeled = history.loc[history["cell"] == single].set_index("id")
    assert relabeled.loc[first, "superseded_by"] == relabeled.index.max()
    table = session.export_table()
    assert set(table.loc[session.cells[positions], "scactive_answer_kind"]) == {"bulk"}
    assert set(table.loc[session.cells[positions], "scactive_provenance"]) == {"lasso"}
    # a cluster: resolved by the server, its provenance cluster:<id>
    one = served.post("/api/label-selection", json={"label": "C", "cluster": 1}).json()
    assert one["n_labeled"] == int((clusters == 1).sum()) and one["n_unchanged"] == 0
    cluster_rows = session.history().query(f"action == {one['action']}")
    assert set(cluster_rows["provenance"]) == {"cluster:1"}
    # the undo of the lasso's first answer takes back all of it, and only it
    before = session.labels().set_index("cell")["label"]
    undone = served.post("/api/undo", json={"id": done["first_id"]}).json()["undone"]
    assert undone["n_undone"] == 40
    after = session.labels().set_index("cell")["label"]
    changed = {c for c in before.index.union(after.index) if before.get(c) != after.get(c)}
    assert changed == set(session.cells[positions])
    assert after.get(single) == "A"  # the single answer it replaced is current again
    assert not session.history().query(f"action == {one['action']}")["undone"].any()
    assert (session.history().query(f"action == {done['action']}")["undone"] == 1).all()
    again = served.post("/api/undo", json={"id": done["first_id"]})
    assert again.status_code == 422 and "none of its answers" in again.json()["error"]


def test_a_selection_from_another_origin_or_malformed_is_refused(served):
    evil = {"Origin": "http://evil.example"}
    body = {"label": "B", "positions": [0, 1], "shape": "box"}
    reply = served.post("/api/label-selection", json=body, headers=evil)
    assert reply.status_code == 403
    no_json = served.post(
        "/api/label-selection", content=json.dumps(body), headers={"Content-Type": "text/plain"}
    )
    assert no_json.status_code == 415
    for bad, status in [
        ({"label": "B", "positions": [0, True], "shape": "box"}, 400),
        ({"label": "B", "positions": [0, 10**6], "shape": "box"}, 404),
        ({"label": "B", "positions": [0], "shape": "circle"}, 422),
        ({"label": "B", "cluster": 999}, 422),
        ({"label": "B", "cluster": 0, "positions": [1], "shape": "box"}, 422),
        ({"label": "", "positions": [0], "shape": "box"}, 422),
        ({"positions": [0], "shape": "box"}, 400),
        ({"label": "B", "positions": [0], "shape": "box", "extra": 1}, 400),
    ]:
        assert served.post("/api/label-selection", json=bad).status_code == status, bad
    assert served.session.history().empty  # nothing refused was written


def test_an_older_session_file_gains_the_actions_table(tmp_path):
    adata, _ = planted_data()
    path = tmp_path / "old.scactive"
    with open_session(adata, path) as session:
        session.answer(session.cells[0], "A")
    with sqlite3.connect(path) as conn:  # as schema 3 made it: no actions, no answers.action
        conn.execute("DROP INDEX answers_action")
        conn.execute("ALTER TABLE answers DROP COLUMN action")
        conn.execute("DROP TABLE actions")
        conn.execute("PRAGMA user_version = 3")
    with open_session(adata, path) as session:
        assert session.labels()["label"].tolist() == ["A"]
        done = session.map.label_selection("B", positions=[1, 2], shape="box")
        assert done["n_labeled"] == 2
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
