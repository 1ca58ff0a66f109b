"""The annotation web service: its API, its checks, and a killed server that loses nothing."""

from __future__ import annotations

import os
import signal

import anndata as ad
import pytest
from starlette.testclient import TestClient

from conftest import make_counts
from scactive.app import open_session
from scactive.app._server import create_app
from serving import DEADLINE, Server, free_port

#: Seconds to wait for a server or a training round: generous, for a loaded machine.
WAIT = 300
#: The address the test clients use: a loopback name, as the browser's.
LOCAL = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def adata():
    return make_counts(n_cells=150, n_genes=300, n_types=3)


@pytest.fixture
def client(adata, tmp_path):
    session = open_session(adata, tmp_path / "s.scactive")
    app = create_app(session, batch_size=6)
    app.state.trainer.wait(WAIT)
    with TestClient(app, base_url=LOCAL, headers={"Origin": LOCAL}) as test_client:
        test_client.session = session
        yield test_client
    session.close()


def _label_batch(client, adata):
    state = client.get("/api/state").json()
    truth = adata.obs["cell_type"]
    for cell in state["batch"]:
        reply = client.post("/api/answer", json={"cell": cell, "label": str(truth[cell])})
        assert reply.status_code == 200, reply.text
    return state["batch"]


def test_label_batch_retrains_and_gives_the_next_one(client, adata):
    first = _label_batch(client, adata)
    assert len(first) == 6
    client.app.state.trainer.wait(WAIT)
    state = client.get("/api/state").json()
    assert state["n_labeled"] == 6 and state["round"] >= 1
    assert state["batch"] and not set(state["batch"]) & set(first)
    assert set(state["pending"]) == set(state["batch"])
    embedding = client.get("/api/embedding").json()
    assert len(embedding["cell"]) == adata.n_obs
    assert sum(label is not None for label in embedding["label"]) == 6
    assert all(p is not None for p in embedding["predicted"])  # trained on 3 types
    evidence = client.get(f"/api/cells/{state['batch'][0]}").json()
    assert len(evidence["predictions"]) == 3 and len(evidence["neighbours"]) == 5


def test_undo_relabel_new_type_and_kinds(client, adata):
    cell = client.get("/api/state").json()["batch"][0]
    assert client.post("/api/answer", json={"cell": cell, "label": "type0"}).status_code == 200
    assert client.post("/api/answer", json={"cell": cell, "label": "Brand new"}).status_code == 200
    state = client.get("/api/state").json()
    assert "Brand new" in state["vocabulary"]
    assert state["batch_answers"][cell] == "Brand new"  # relabel
    client.post("/api/undo", json={})
    assert client.get("/api/state").json()["batch_answers"][cell] == "type0"
    client.post("/api/undo", json={})
    assert cell not in client.get("/api/state").json()["batch_answers"]
    other = client.get("/api/state").json()["batch"][1]
    assert client.post("/api/answer", json={"cell": other, "kind": "doublet"}).status_code == 200
    assert client.get("/api/state").json()["batch_answers"][other] == "doublet"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"cell": "no-such-cell", "label": "B"}, 404, "Unknown cell"),
        ({"cell": "cell0", "label": "   "}, 422, "empty"),
        ({"cell": "cell0", "label": "x" * 201}, 422, "200"),
        ({"cell": "cell0", "kind": "maybe"}, 422, "maybe"),
        ({"cell": 5, "label": "B"}, 400, "must be text"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_requests_get_a_clear_4xx(client, body, status, message):
    reply = client.post("/api/answer", json=body)
    assert reply.status_code == status and message in reply.json()["error"], reply.text
    assert client.get("/api/state").json()["n_answered"] == 0


def test_malformed_body_and_bad_batch_requests(client):
    reply = client.post(
        "/api/answer", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["error"]
    reply = client.post("/api/next", json={"strategy": "psychic"})
    assert reply.status_code == 400 and "entropy" in reply.json()["error"]
    assert client.post("/api/next", json={"batch_size": 0}).status_code == 400
    assert client.get("/api/cells/not-a-cell").status_code == 404


def test_labels_are_data_not_markup(client):
    cell = client.get("/api/state").json()["batch"][0]
    client.post("/api/answer", json={"cell": cell, "label": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" in client.get("/api/state").json()["vocabulary"]
    page = client.get("/").text + client.get("/static/app.js").text
    assert "innerHTML" not in page  # the page sets every data text with textContent
    assert "http://" not in page and "https://" not in page  # nothing from a CDN


def test_export_writes_h5ad_csv_and_model(client, adata):
    _label_batch(client, adata)
    client.app.state.trainer.wait(WAIT)
    written = client.post("/api/export", json={}).json()["written"]
    assert sorted(os.path.splitext(p)[1] for p in written) == [".csv", ".h5ad", ".safetensors"]
    result = ad.read_h5ad(next(p for p in written if p.endswith(".h5ad")))
    assert result.obs["scactive_label"].notna().sum() == 6
    assert result.obs["scactive_predicted"].notna().all()


def test_token_is_checked_on_every_request(adata, tmp_path):
    session = open_session(adata, tmp_path / "t.scactive")
    app = create_app(session, token="s3cret", batch_size=3)
    app.state.trainer.wait(WAIT)
    with TestClient(app) as client:
        assert client.get("/").status_code == 401
        assert client.get("/api/state", params={"token": "wrong"}).status_code == 401
        assert client.get("/api/state", params={"token": "s3cret"}).status_code == 200
        assert client.get("/static/app.js").status_code == 200  # the page's cookie
        client.cookies.clear()
        assert client.get("/static/app.js").status_code == 401
        headers = {"Authorization": "Bearer s3cret"}
        cell = client.get("/api/state", headers=headers).json()["batch"][0]
        denied = client.post("/api/answer", json={"cell": cell, "label": "B"})
        assert denied.status_code == 401
        assert session.status()["n_answered"] == 0
    session.close()


def test_killed_server_loses_no_committed_answer(adata, tmp_path):
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    session = tmp_path / "crash.scactive"
    with Server(data, session, free_port(), "--batch-size", "5") as server:
        batch = server.state_with_batch()["batch"]
        committed = {}
        for cell in batch[:4]:  # answer part of the batch, each reply after its commit
            server.call("/api/answer", {"cell": cell, "label": "type1"})
            committed[cell] = "type1"
        server.process.send_signal(signal.SIGKILL)  # mid-session, no shutdown of any kind
        server.process.wait(DEADLINE)
    with Server(data, session, free_port(), "--batch-size", "5") as server:  # restarted
        assert server.call("/api/state")["n_answered"] == len(committed)
        embedding = server.call("/api/embedding")
        labels = dict(zip(embedding["cell"], embedding["label"], strict=True))
        assert {c: labels[c] for c in committed} == committed


def test_annotate_command_refuses_bad_input_without_starting(adata, tmp_path):
    from typer.testing import CliRunner

    from scactive.cli import app

    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    runner = CliRunner()
    result = runner.invoke(
        app, ["annotate", str(data), "--session", str(tmp_path / "a"), "--batch-size", "0"]
    )
    assert result.exit_code == 2 and "--batch-size 0" in result.output
    other = tmp_path / "other.h5ad"
    make_counts(n_cells=100, n_genes=300, seed=3).write_h5ad(other)
    session = tmp_path / "s.scactive"
    open_session(adata, session).close()
    result = runner.invoke(app, ["annotate", str(other), "--session", str(session)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_undo_by_id_takes_back_ones_own_answer(client):
    batch = client.get("/api/state").json()["batch"]
    mine = client.post("/api/answer", json={"cell": batch[0], "label": "type0"}).json()["id"]
    client.post("/api/answer", json={"cell": batch[1], "label": "type1"})  # another tab's
    client.post("/api/undo", json={"id": mine})
    answers = client.get("/api/state").json()["batch_answers"]
    assert answers == {batch[1]: "type1"}
    assert client.post("/api/undo", json={"id": "x"}).status_code == 400


def test_new_batch_without_new_labels_adds_no_round(client, adata):
    _label_batch(client, adata)
    client.app.state.trainer.wait(WAIT)
    round_ = client.get("/api/state").json()["round"]
    assert client.post("/api/next", json={"strategy": "margin"}).json()["started"]
    client.app.state.trainer.wait(WAIT)
    state = client.get("/api/state").json()
    assert state["round"] == round_ and state["strategy"] == "margin" and state["batch"]


def test_other_requests_are_answered_while_an_export_writes(client, monkeypatch):
    import threading

    import scactive.app._session as session_module

    started, release = threading.Event(), threading.Event()
    real = session_module.write_h5ad

    def slow_write(*args, **kwargs):
        started.set()
        release.wait(WAIT)  # a large file, still being written
        return real(*args, **kwargs)

    monkeypatch.setattr(session_module, "write_h5ad", slow_write)
    exported = {}
    worker = threading.Thread(
        target=lambda: exported.update(reply=client.post("/api/export", json={}))
    )
    worker.start()
    assert started.wait(WAIT)
    state = client.get("/api/state")  # would wait for the export on a blocked event loop
    assert state.status_code == 200 and "reply" not in exported
    release.set()
    worker.join(WAIT)
    assert exported["reply"].status_code == 200
