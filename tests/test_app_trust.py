"""Trust: no export replaces the user's files, no other web page drives the server, no request
body reaches a 500, and a damaged or read-only session file gets a clear message."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from conftest import make_counts, without_root_override
from scactive._errors import InputError
from scactive.app import open_session
from scactive.app._guard import MAX_BODY
from scactive.app._server import create_app
from scactive.cli import app as cli

LOCAL = "http://127.0.0.1:8765"


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def digest(*paths: Path) -> dict[str, str | None]:
    """Each file's SHA-256 (None when missing): 'byte-identical' made checkable."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths
    }


def session_files(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))]


@pytest.fixture(scope="module")
def adata() -> ad.AnnData:
    return make_counts(n_cells=120, n_genes=200, n_types=3)


@pytest.fixture
def files(adata, tmp_path):
    """The naming docs/annotate.md uses: cells.h5ad and cells.scactive side by side, with
    four labeled cells in the session (created from the command line, so the path is known)."""
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    session = tmp_path / "cells.scactive"
    answers = tmp_path / "answers.csv"
    truth = adata.obs["cell_type"].astype(str)
    cells = [truth.index[truth == t][i] for t in sorted(set(truth)) for i in range(2)]
    pd.DataFrame({"cell": cells, "label": truth[cells]}).to_csv(answers, index=False)
    result = invoke("teach", data, answers, "--session", session)
    assert result.exit_code == 0, result.output
    return data, session


def local_client(session, **kwargs) -> TestClient:
    web = create_app(session, batch_size=4, strategy="random", **kwargs)
    web.state.trainer.wait(300)
    return TestClient(web, base_url=LOCAL, headers={"Origin": LOCAL})


# -- data loss --------------------------------------------------------------------------------
def test_app_export_never_touches_the_input_and_never_replaces_an_export(files):
    data, session_path = files
    before = digest(data)
    with open_session(ad.read_h5ad(data), session_path) as session:
        with local_client(session) as client:
            first = client.post("/api/export", json={}).json()["written"]
            second = client.post("/api/export", json={}).json()["written"]
            folder = session_path.with_name("cells.scactive.export")
            assert sorted(Path(p).name for p in first) == [
                "annotated.h5ad",
                "labels.csv",
                "model.safetensors",
            ]
            assert all(Path(p).parent == folder for p in first + second)
            assert sorted(Path(p).name for p in second) == [
                "annotated-2.h5ad",
                "labels-2.csv",
                "model-2.safetensors",
            ]
            kept = digest(*map(Path, first))
            again = client.post("/api/export", json={"overwrite": True}).json()["written"]
            assert sorted(again) == sorted(first)  # replaced only when asked
            assert client.post("/api/export", json={"overwrite": "yes"}).status_code == 400
    assert digest(data) == before
    assert set(kept) == {str(Path(p)) for p in first}
    reopened = open_session(ad.read_h5ad(data), session_path)  # the session still opens
    assert reopened.status()["n_labeled"] == 6
    reopened.close()


def test_csv_input_survives_the_app_export(adata, tmp_path):
    data = tmp_path / "cells.csv"
    pd.DataFrame(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X,
                 index=adata.obs_names, columns=adata.var_names).to_csv(data)  # fmt: skip
    session_path = tmp_path / "cells.scactive"
    before = digest(data)
    from scactive.io import read

    with open_session(read(data), session_path, source=data) as session:
        with local_client(session) as client:
            assert client.post("/api/export", json={}).status_code == 200
    assert digest(data) == before
    open_session(read(data), session_path).close()  # reopens: the data is intact


@pytest.mark.parametrize("target", ["data", "session", "wal", "folder"])
def test_cli_export_refuses_the_data_and_the_session(files, target):
    data, session = files
    protected = [data, *session_files(session)]
    before = digest(*protected)
    path = {
        "data": data,
        "session": session,
        "wal": session.with_name(session.name + "-wal"),
        "folder": data.parent,
    }[target]
    for option in ("--out", "--csv", "--model"):
        args = ["--out", data.parent / "ok.h5ad"] if option != "--out" else []
        result = invoke("export", "--session", session, *args, option, path)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        if target != "folder":
            flat = "".join(result.output.split())  # rich wraps long lines anywhere
            assert "".join(str(path.resolve()).split()) in flat, result.output
            assert "wouldoverwrite" in flat
    assert digest(*protected) == before
    assert not (data.parent / "ok.h5ad").exists()


def test_library_export_refuses_the_session_file(files):
    data, session_path = files
    before = digest(*session_files(session_path))
    with open_session(ad.read_h5ad(data), session_path) as session:
        with pytest.raises(InputError, match="session file"):
            session.export(path_csv=session_path)
        with pytest.raises(InputError, match="input data"):
            session.export(path_h5ad=data)
        with pytest.raises(InputError, match="same file"):
            session.export(path_h5ad=data.parent / "a.h5ad", path_csv=data.parent / "a.h5ad")
    assert digest(*session_files(session_path)) == before


def test_export_into_a_path_under_a_file_is_refused(files):
    data, session = files
    result = invoke("export", "--session", session, "--out", data / "x.h5ad")
    assert result.exit_code == 2 and "Traceback" not in result.output


# -- other web origins ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(adata, tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "s.scactive"
    session = open_session(adata, path)
    with local_client(session) as client:
        client.session = session
        yield client
    session.close()


def answers_of(session) -> list:
    return session.history().to_dict("records")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403),
        ({"Origin": "http://evil.example", "Content-Type": "application/json"}, 403),
        ({"Origin": "null", "Content-Type": "application/json"}, 403),
        ({"Origin": "http://127.0.0.1:9999", "Content-Type": "application/json"}, 403),
        ({"Referer": "http://evil.example/page", "Content-Type": "application/json"}, 403),
        ({"Content-Type": "application/json"}, 403),  # no Origin, no Referer
        ({"Origin": LOCAL, "Content-Type": "text/plain"}, 415),
        ({"Origin": LOCAL, "Content-Type": "application/x-www-form-urlencoded"}, 415),
    ],
)
def test_cross_site_posts_are_refused(served, headers, status):
    before = answers_of(served.session)
    cell = served.session.cells[0]
    body = json.dumps({"cell": cell, "label": "B"})
    for route in ("/api/answer", "/api/undo", "/api/export", "/api/next", "/api/label-selection"):
        client = TestClient(served.app, base_url=LOCAL)  # no default Origin
        reply = client.post(route, content=body, headers=headers)
        assert reply.status_code == status, (route, reply.text)
        assert reply.json()["error"]
    assert answers_of(served.session) == before


def test_referer_of_the_page_itself_is_accepted(served):
    client = TestClient(served.app, base_url=LOCAL)
    reply = client.post("/api/next", json={}, headers={"Referer": LOCAL + "/"})
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example"])
def test_a_rebinding_host_is_refused(served, host):
    client = TestClient(served.app, base_url=f"http://{host}")
    for path in ("/", "/api/state", "/api/embedding", "/static/app.js"):
        reply = client.get(path, headers={"Host": host})
        assert reply.status_code == 403 and "local address" in reply.json()["error"]


@pytest.mark.parametrize("host", ["localhost:8765", "127.0.0.1:1234", "[::1]:8765"])
def test_loopback_names_are_served(served, host):
    assert served.get("/api/state", headers={"Host": host}).status_code == 200


def test_token_mode_still_takes_scripted_posts(adata, tmp_path):
    with open_session(adata, tmp_path / "t.scactive") as session:
        web = create_app(session, token="s3cret", batch_size=3)
        web.state.trainer.wait(300)
        with TestClient(web, base_url="http://lab-server:8765") as client:
            auth = {"Authorization": "Bearer s3cret"}
            cell = client.get("/api/state", headers=auth).json()["batch"][0]
            reply = client.post("/api/answer", json={"cell": cell, "label": "B"}, headers=auth)
            assert reply.status_code == 200, reply.text
            evil = {**auth, "Origin": "http://evil.example"}
            reply = client.post("/api/answer", json={"cell": cell, "label": "C"}, headers=evil)
            assert reply.status_code == 403


# -- request bodies ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("route", "body", "status"),
    [
        ("/api/undo", {"id": True}, 400),
        ("/api/undo", {"id": 10**30}, 400),
        ("/api/undo", {"id": 2**63}, 400),
        ("/api/undo", {"id": -1}, 400),
        ("/api/undo", {"id": 1.0}, 400),
        ("/api/undo", {"id": 123456}, 422),  # no such answer
        ("/api/next", {"strategy": ["x"]}, 400),
        ("/api/next", {"strategy": {"a": 1}}, 400),
        ("/api/next", {"batch_size": True}, 400),
        ("/api/next", {"batch_size": 501}, 400),
        ("/api/next", {"batch_size": 2.5}, 400),
        ("/api/next", {"surprise": 1}, 400),
        ("/api/answer", {"cell": "CELL", "label": "\ud800"}, 422),
        ("/api/answer", {"cell": "CELL", "label": "T\u200bcell"}, 422),
        ("/api/answer", {"cell": "CELL", "label": "T\u202ecell"}, 422),
        ("/api/answer", {"cell": "CELL", "label": "T\x07cell"}, 422),
        ("/api/answer", {"cell": "CELL", "label": ["B"]}, 400),
        ("/api/answer", {"cell": "CELL", "kind": 1}, 400),
        ("/api/answer", {"cell": "\ud800", "label": "B"}, 404),
        ("/api/answer", {"label": "B"}, 400),
        ("/api/export", {"overwrite": 1}, 400),
    ],
)
def test_bad_bodies_get_a_4xx_and_change_nothing(served, route, body, status):
    cell = served.session.cells[0]
    body = {k: (cell if v == "CELL" else v) for k, v in body.items()}
    before = (answers_of(served.session), served.app.state.trainer.state()["batch_size"])
    text = json.dumps(body)  # ensure_ascii: a lone surrogate travels as \\ud800
    reply = served.post(route, content=text, headers={"Content-Type": "application/json"})
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]
    after = (answers_of(served.session), served.app.state.trainer.state()["batch_size"])
    assert after == before


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a": NaN}', b'{"id": 1e400}', b"", b"\xff\xfe"],
)
def test_malformed_json_gets_400(served, raw):
    reply = served.post("/api/undo", content=raw, headers={"Content-Type": "application/json"})
    assert reply.status_code in (400, 413), reply.text


def test_bodies_over_the_limit_get_413(served):
    big = json.dumps({"cell": "x" * (MAX_BODY + 10)})
    reply = served.post("/api/answer", content=big, headers={"Content-Type": "application/json"})
    assert reply.status_code == 413

    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(MAX_BODY // 1000 + 2):
            yield b" " * 1000

    reply = served.post(
        "/api/answer", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 413


def test_labels_are_nfc_normalised(served):
    cell = served.session.cells[5]
    reply = served.post("/api/answer", json={"cell": cell, "label": "Cafe\u0301 cell"})
    assert reply.status_code == 200
    assert served.session.labels().set_index("cell").loc[cell, "label"] == "Caf\u00e9 cell"
    served.post("/api/undo", json={"id": reply.json()["id"]})


def test_generated_bodies_never_reach_a_5xx(served):
    """Property test: any JSON body on any route gets a reply below 500, and a 4xx reply
    leaves the answers and the batch settings as they were."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    keys = st.sampled_from(
        ["cell", "label", "kind", "id", "strategy", "batch_size", "overwrite"]
        + ["positions", "cluster", "shape"]
    )
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False)
        | st.text(max_size=30)
        | st.sampled_from(list(served.session.cells[:3]) + ["label", "skip", "entropy"])
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner),
        max_leaves=6,
    )
    bodies = st.dictionaries(keys | st.text(max_size=8), values, max_size=4) | values
    routes = st.sampled_from(
        ["/api/answer", "/api/undo", "/api/next", "/api/export", "/api/label-selection"]
    )

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(route=routes, body=bodies)
    def check(route, body):
        served.app.state.trainer.wait(300)
        before = (answers_of(served.session), served.app.state.trainer.state()["batch_size"])
        text = json.dumps(body)
        reply = served.post(route, content=text, headers={"Content-Type": "application/json"})
        assert reply.status_code < 500, (route, body, reply.text)
        if 400 <= reply.status_code < 500:
            assert reply.json()["error"]
            after = (answers_of(served.session), served.app.state.trainer.state()["batch_size"])
            assert after == before, (route, body)

    check()
    # the cell route takes any path: the same promise
    for name in ["", "%00", "%ff", "..%2F..%2Fetc", "x" * 5000, "%F0%9F%A7%AC"]:
        assert served.get(f"/api/cells/{name}").status_code < 500
        for colouring in ("/api/colour/gene/", "/api/colour/obs/", "/api/genes?q="):
            assert served.get(colouring + name).status_code < 500


# -- sessions that remember, damaged and read-only files ---------------------------------------
def test_query_teach_and_export_without_data(files, tmp_path):
    data, session = files
    result = invoke("query", "--session", session, "--n", "3")
    assert result.exit_code == 0, result.output
    cells = pd.read_csv(io.StringIO(result.stdout))["cell"]
    answers = tmp_path / "more.csv"
    pd.DataFrame({"cell": cells, "label": "type0"}).to_csv(answers, index=False)
    result = invoke("teach", answers, "--session", session)
    assert result.exit_code == 0 and "Recorded 3 answers" in result.output, result.output
    out = tmp_path / "annotated.h5ad"
    result = invoke("export", "--session", session, "--out", out)
    assert result.exit_code == 0, result.output
    assert ad.read_h5ad(out).obs["scactive_label"].notna().sum() == 9
    moved = tmp_path / "moved.h5ad"
    shutil.move(data, moved)
    result = invoke("query", "--session", session)
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = invoke("query", moved, "--session", session)  # DATA points at the moved file
    assert result.exit_code == 0, result.output
    assert invoke("query", "--session", session).exit_code == 0  # the new path is recorded
    result = invoke("query", "--session", tmp_path / "new.scactive")
    # rich wraps the message where the path's length puts it: compare with the lines joined
    assert result.exit_code == 2 and "does not exist yet" in " ".join(result.output.split())


def test_teach_refuses_one_cell_answered_two_ways(files, tmp_path):
    data, session = files
    before = digest(*session_files(session))
    cell = ad.read_h5ad(data).obs_names[50]
    answers = tmp_path / "twice.csv"
    answers.write_text(f"cell,label\n{cell},type0\nother,x\n{cell},type1\n")
    result = invoke("teach", answers, "--session", session)
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "line 2" in text and "line 4" in text, result.output
    assert digest(*session_files(session)) == before
    answers.write_text(f"cell,label\n{cell},type0\n{cell},type0\n")  # the same answer twice
    assert invoke("teach", answers, "--session", session).exit_code == 0


def test_a_session_damaged_in_the_middle_is_refused(files):
    data, session = files
    size = session.stat().st_size
    with open(session, "r+b") as fh:  # keep the header, spoil the pages after it
        fh.seek(4096)
        fh.write(os.urandom(min(8192, size - 4096)))
    before = digest(session)
    for args in (["query", "--session", session], ["export", "--session", session, "--out",
                 session.with_name("x.h5ad")]):  # fmt: skip
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert "damaged" in result.output and "Traceback" not in result.output
    assert digest(session) == before


@pytest.mark.parametrize("where", ["file", "folder"])
def test_teach_on_a_read_only_session_says_so(files, tmp_path, where):
    data, session = files
    answers = tmp_path / "a.csv"
    answers.write_text(f"cell,label\n{ad.read_h5ad(data).obs_names[70]},type2\n")
    if where == "file":
        session.chmod(0o444)
    else:
        session.parent.chmod(0o555)
    before = digest(*session_files(session))
    try:
        result = subprocess.run(
            [*without_root_override(), sys.executable, "-m", "scactive", "teach", str(answers),
             "--session", str(session)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        session.parent.chmod(0o755)
        session.chmod(0o644)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert "read-only" in message and "not a scactive session" not in message
    assert "Traceback" not in result.stderr
    assert digest(*session_files(session)) == before


def test_annotate_on_a_port_in_use_says_so_before_reading_anything(files, tmp_path):
    import socket

    data, _ = files
    session = tmp_path / "new.scactive"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = invoke("annotate", data, "--session", session, "--port", port)
    assert result.exit_code == 2 and "--port" in result.output and "Traceback" not in result.output
    assert not session.exists()
