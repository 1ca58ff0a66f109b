"""The map the annotation page draws: a compact binary of every cell (``GET /api/map``), the
position -> cell route behind a click, and the canvas in real headless Chromium."""

from __future__ import annotations

import json
import shutil
import struct
import urllib.request

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from conftest import make_counts
from scactive.app import open_session
from scactive.app._map import MAP_MAGIC, NO_CONFIDENCE, map_payload
from scactive.app._server import create_app
from scactive.cli import app as cli
from serving import DEADLINE, Server, free_port

LOCAL = "http://127.0.0.1:8765"
#: The page's colours (app.js), by a label's place in the vocabulary.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173"]  # fmt: skip
NONE = "#d0d0d0"


def decode_map(body: bytes) -> dict:
    """The arrays of a map payload, read as the page reads them (an independent reader)."""
    assert body[:4] == MAP_MAGIC
    (length,) = struct.unpack("<I", body[4:8])
    header = json.loads(body[8 : 8 + length].decode("utf-8"))
    n, size = header["n"], header["code_bytes"]
    offset = 8 + length + (-(8 + length) % 4)
    arrays = {}
    for name, dtype in [("x", "<f4"), ("y", "<f4"), ("label", f"<u{size}"),
                        ("predicted", f"<u{size}"), ("confidence", "<u1")]:  # fmt: skip
        arrays[name] = np.frombuffer(body, dtype=dtype, count=n, offset=offset)
        offset += n * np.dtype(dtype).itemsize
    assert offset == len(body)  # nothing after the last array
    return {**header, **arrays}


def named(codes: np.ndarray, categories: list[str]) -> list[str | None]:
    return [categories[c - 1] if c else None for c in codes]


@pytest.fixture(scope="module")
def adata():
    return make_counts(n_cells=150, n_genes=300, n_types=3)


@pytest.fixture(scope="module")
def planted(adata, tmp_path_factory):
    """A trained session with two labeled cells of each type and one 'unsure' answer."""
    session = open_session(adata, tmp_path_factory.mktemp("map") / "m.scactive")
    truth = adata.obs["cell_type"].astype(str)
    labeled = [truth.index[truth == t][i] for t in sorted(set(truth)) for i in range(2)]
    for cell in labeled:
        session.answer(cell, truth[cell])
    session.answer(truth.index[-1], None, kind="unsure")
    app = create_app(session, batch_size=4)
    app.state.trainer.wait(DEADLINE)
    with TestClient(app, base_url=LOCAL, headers={"Origin": LOCAL}) as client:
        client.session = session
        client.labeled = {cell: truth[cell] for cell in labeled}
        yield client
    session.close()


def test_the_map_decodes_to_the_sessions_coordinates_labels_and_predictions(planted):
    reply = planted.get("/api/map")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/octet-stream"
    got = decode_map(reply.content)
    session = planted.session
    embedding = session.embedding()
    assert got["n"] == len(embedding) == len(session.cells)
    assert got["round"] == session.status()["round"] >= 1
    np.testing.assert_array_equal(got["x"], embedding["umap1"].to_numpy(np.float32))
    np.testing.assert_array_equal(got["y"], embedding["umap2"].to_numpy(np.float32))
    # the vocabulary first, in its order: the page colours a category by that place
    vocabulary = [v["label"] for v in session.status()["vocabulary"]]
    assert got["categories"][: len(vocabulary)] == vocabulary
    answers = session.labels().set_index("cell")
    expected = answers["label"].reindex(embedding["cell"]).astype(object)
    expected = [None if pd.isna(v) else v for v in expected]
    assert named(got["label"], got["categories"]) == expected
    assert {c: v for c, v in zip(embedding["cell"], expected, strict=True) if v} == planted.labeled
    predictions = session.predictions()
    assert named(got["predicted"], got["categories"]) == predictions["predicted"].tolist()
    confidence = got["confidence"].astype(float) / 254
    assert NO_CONFIDENCE not in got["confidence"]
    np.testing.assert_allclose(confidence, predictions["confidence"], atol=0.5 / 254 + 1e-9)
    # names only of the answered cells (the unsure one too), with their positions
    answered = dict(zip(got["answered"]["cells"], got["answered"]["positions"], strict=True))
    assert answered == {cell: session.cells.get_loc(cell) for cell in answers.index}


def test_the_state_gives_the_batchs_positions_and_positions_give_cells(planted):
    state = planted.get("/api/state").json()
    assert state["batch"]
    cells = planted.session.cells
    assert state["positions"] == {cell: cells.get_loc(cell) for cell in state["batch"]}
    for position in (0, 17, len(cells) - 1):
        reply = planted.get(f"/api/map/cells/{position}")
        assert reply.status_code == 200
        got = reply.json()
        assert (got["cell"], got["position"]) == (cells[position], position)
    assert planted.get(f"/api/map/cells/{len(cells)}").status_code == 404
    for bad in ("-1", "1.5", "abc", "1" * 40, "%D9%A3", "0x10"):  # %D9%A3: an Arabic digit 3
        reply = planted.get(f"/api/map/cells/{bad}")
        assert reply.status_code == 400, (bad, reply.text)
        assert "whole number" in reply.json()["error"]
    assert planted.post("/api/map", json={}).status_code == 405  # read only


def test_the_map_obeys_the_same_origin_and_token_rules(planted, adata, tmp_path):
    for path in ("/api/map", "/api/map/cells/0"):
        reply = planted.get(path, headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in reply.headers  # unreadable to other pages
        rebound = TestClient(planted.app, base_url="http://evil.example")
        reply = rebound.get(path, headers={"Host": "evil.example"})
        assert reply.status_code == 403 and "local address" in reply.json()["error"]
    with open_session(adata, tmp_path / "t.scactive") as session:
        web = create_app(session, token="s3cret", batch_size=3)
        web.state.trainer.wait(DEADLINE)
        with TestClient(web, base_url="http://lab-server:8765") as client:
            for path in ("/api/map", "/api/map/cells/0"):
                assert client.get(path).status_code == 401
                reply = client.get(path, headers={"Authorization": "Bearer s3cret"})
                assert reply.status_code == 200
            untrained = decode_map(client.get("/api/map?token=s3cret").content)
            assert not untrained["predicted"].any()
            assert (untrained["confidence"] == NO_CONFIDENCE).all()


def test_map_payload_codes_categories_and_missing_values():
    xy = np.array([[0.5, -1.0], [2.0, 3.0], [np.float32(1e-8), 7.25]])
    got = decode_map(
        map_payload(
            xy,
            [None, "B", float("nan")],
            ["A", "B", "Zeta"],
            [0.0, np.nan, 1.0],
            vocabulary=["B", "A"],
            round_=4,
            answered=[("c1", 1)],
        )
    )
    assert got["round"] == 4 and got["categories"] == ["B", "A", "Zeta"]
    assert got["label"].tolist() == [0, 1, 0] and got["predicted"].tolist() == [2, 1, 3]
    assert got["confidence"].tolist() == [0, NO_CONFIDENCE, 254]
    np.testing.assert_array_equal(got["x"], xy[:, 0].astype(np.float32))
    assert got["answered"] == {"cells": ["c1"], "positions": [1]}
    many = [f"type {i}" for i in range(300)]  # more than a byte holds: two bytes a code
    wide = decode_map(map_payload(np.zeros((300, 2)), many, vocabulary=many[:5]))
    assert wide["code_bytes"] == 2 and wide["label"].tolist() == list(range(1, 301))
    empty = decode_map(map_payload(np.zeros((0, 2)), []))
    assert empty["n"] == 0 and empty["code_bytes"] == 1


# -- the canvas, in real headless Chromium ------------------------------------------------------
CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _bytes(server, path: str) -> bytes:
    request = urllib.request.Request(server.origin + path, headers={"Origin": server.origin})
    with urllib.request.urlopen(request, timeout=DEADLINE) as reply:
        return reply.read()


def _canvas_xy(x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    """Where the page puts each cell, in canvas pixels (10 px of margin, y upwards)."""
    pad = 10
    u = pad + (x - x.min()) * np.float64(width - 2 * pad) / (x.max() - x.min())
    v = pad + (y.max() - y) * np.float64(height - 2 * pad) / (y.max() - y.min())
    return np.column_stack([u, v])


def _isolated(points: np.ndarray, among: np.ndarray, candidates, distance: float) -> int:
    """The first of ``candidates`` with no point of ``among`` (but itself) within
    ``distance``."""
    for i in candidates:
        d = np.hypot(*(points[among] - points[i]).T)
        if (d[among != i] > distance).all():
            return int(i)
    pytest.skip("no cell far enough from the others on this map")


def _rgb(hex_colour: str) -> list[int]:
    return [int(hex_colour[k : k + 2], 16) for k in (1, 3, 5)]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_canvas_colours_labeled_cells_and_a_click_selects_a_cell(adata, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    session = tmp_path / "cells.scactive"
    truth = adata.obs["cell_type"].astype(str)
    planted = [truth.index[truth == t][i] for t in sorted(set(truth)) for i in range(4)]
    answers = tmp_path / "answers.csv"
    pd.DataFrame({"cell": planted, "label": truth[planted]}).to_csv(answers, index=False)
    result = CliRunner().invoke(cli, ["teach", str(data), str(answers), "--session", str(session)])
    assert result.exit_code == 0, result.output
    with Server(data, session, free_port(), "--batch-size", "5") as server:
        state = server.state_with_batch()
        batch, vocabulary = state["batch"], state["vocabulary"]
        names = server.call("/api/embedding")["cell"]  # in map order
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(DEADLINE * 1000)
            page.goto(server.origin + "/")
            page.wait_for_selector("#batch li.selected")
            # the map of the current round is drawn (the first training may end meanwhile)
            page.wait_for_function(
                "round => cells !== null && cells.round === round && toCanvas !== null",
                arg=server.call("/api/state")["round"],
            )
            got = decode_map(_bytes(server, "/api/map"))
            width, height = page.evaluate(
                "(() => { const c = document.getElementById('map');"
                " return [c.width, c.height]; })()"
            )
            points = _canvas_xy(got["x"].astype(float), got["y"].astype(float), width, height)
            labeled = np.flatnonzero(got["label"])
            assert sorted(names[i] for i in labeled) == sorted(planted)
            crossed = np.array([names.index(c) for c in batch])

            def pixel(i: int) -> list[int]:
                u, v = (int(c) for c in points[i])
                return page.evaluate(
                    "([u, v]) => Array.from(document.getElementById('map').getContext('2d')"
                    ".getImageData(u, v, 1, 1).data)",
                    [u, v],
                )

            # a labeled cell away from the other labeled cells and the batch's crosses: its
            # label's colour, drawn over any unlabeled cell at that pixel
            marked = np.concatenate([labeled, crossed])
            cell = _isolated(points, marked, labeled, 9)
            label = got["categories"][got["label"][cell] - 1]
            assert pixel(cell) == [*_rgb(PALETTE[vocabulary.index(label) % 15]), 255]
            unlabeled = np.setdiff1d(np.arange(got["n"]), marked)
            plain = _isolated(points, marked, unlabeled, 9)  # grey, over grey neighbours only
            assert pixel(plain) == [*_rgb(NONE), 255]
            page.select_option("#colour", "predicted")  # the model's call, same cell
            predicted = got["categories"][got["predicted"][cell] - 1]
            assert pixel(cell) == [*_rgb(PALETTE[vocabulary.index(predicted) % 15]), 255]
            page.select_option("#colour", "label")

            box = page.evaluate(
                "(() => { const r = document.getElementById('map').getBoundingClientRect();"
                " return [r.left, r.top, r.width, r.height]; })()"
            )

            def click(i: int) -> None:
                u, v = points[i]
                page.mouse.click(box[0] + u * box[2] / width, box[1] + v * box[3] / height)

            everyone = np.arange(got["n"])
            # a batch cell other than the selected one: clicking it selects it
            target = _isolated(points, everyone, crossed[1:], 2.5)
            click(target)
            page.wait_for_selector(f'#batch li.selected[data-cell="{names[target]}"]')
            assert page.locator("#batch li").count() == len(batch)  # in the batch: not added
            # a cell the page has no name for: its name comes from /api/map/cells/<position>
            outside = _isolated(points, everyone, unlabeled, 2.5)
            click(outside)
            page.wait_for_selector(f'#batch li.picked.selected[data-cell="{names[outside]}"]')
            page.wait_for_selector(f'#batch li.picked[data-cell="{names[outside]}"] .evidence h4')
            browser.close()
