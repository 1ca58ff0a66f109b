"""The export as AnnData: ``uns['scactive']`` keeps the session (settings, vocabulary, markers,
every answer, rounds), an export starts a new session with its labels, and each answer
records who gave it (``--annotator``, the page's name field), old session files included."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from conftest import make_counts
from scactive import InputError
from scactive.app import (
    EXPORT_COLUMNS,
    MAX_LABEL_LENGTH,
    SCHEMA_VERSION,
    SessionStore,
    dataset_checksum,
    open_session,
)
from scactive.app._record import ANSWER_COLUMNS, ROUND_COLUMNS
from scactive.app._server import create_app
from scactive.app._sqlite import APPLICATION_ID
from scactive.cli import app
from serving import Server, free_port

#: A learner that trains in milliseconds.
FAST = "logreg-pca"
#: Seconds a training or a server may take on a loaded machine.
WAIT = 300
LOCAL = "http://127.0.0.1:8765"
MARKERS = {"type0": ["G0", "G1"], "type1": ["G20"]}


def invoke(*args):
    return CliRunner().invoke(app, list(map(str, args)))


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def adata() -> ad.AnnData:
    return make_counts(n_cells=150, n_genes=300, n_types=3)


@pytest.fixture(scope="module")
def truth(adata) -> pd.Series:
    return adata.obs["cell_type"].astype(str)


@pytest.fixture(scope="module")
def exported(adata, truth, tmp_path_factory):
    """A session with planted answers (named and unnamed, undone, relabeled, a skip, answers
    before and after a training round) and its export; returns what was planted."""
    folder = tmp_path_factory.mktemp("exported")
    data = folder / "cells.h5ad"
    adata.write_h5ad(data)
    cells = list(adata.obs_names)
    with open_session(adata, folder / "cells.scactive", model=FAST, markers=MARKERS) as session:
        named = cells[:12]
        session.answer_many([(c, truth[c], "label", None, "alice") for c in named])
        session.answer(cells[12], truth[cells[12]])  # no name
        undone = session.answer(cells[13], "Mistake", annotator="bob")
        session.undo(undone)
        replaced = session.answer(cells[14], "First try", annotator="bob")
        relabel = session.answer(cells[14], truth[cells[14]], annotator="  Zoë ")
        session.answer(cells[15], kind="skip", annotator="alice")
        session.train()
        after = session.answer(cells[16], truth[cells[16]], annotator="carol")
        written = session.export(folder / "annotated.h5ad")
        history = session.history()
        vocabulary = session.status()["vocabulary"]
        rounds = session.status()["cv_history"]
    labels = {c: truth[c] for c in [*named, cells[12], cells[14], cells[16]]}
    return {
        "data": data,
        "h5ad": written["h5ad"],
        "history": history,
        "vocabulary": vocabulary,
        "rounds": rounds,
        "labels": labels,
        "ids": {"undone": undone, "replaced": replaced, "relabel": relabel, "after": after},
        "cells": cells,
    }


# -- what the export keeps ----------------------------------------------------------------------
def test_the_answer_log_round_trips_through_read_h5ad(exported):
    out = ad.read_h5ad(exported["h5ad"])
    record = out.uns["scactive"]
    answers = pd.DataFrame(record["answers"])
    assert set(answers.columns) == set(ANSWER_COLUMNS)
    history = exported["history"]
    assert answers["id"].tolist() == history["id"].tolist()
    assert answers["cell"].tolist() == history["cell"].tolist()
    assert answers["label"].tolist() == history["label"].fillna("").tolist()
    assert answers["kind"].tolist() == history["kind"].tolist()
    assert answers["answered_at"].tolist() == history["answered_at"].tolist()
    by_id = answers.set_index("id")
    ids = exported["ids"]
    undone = by_id.loc[ids["undone"]]
    assert undone["undone"] and undone["undone_at"] and undone["label"] == "Mistake"
    assert not undone["superseded"] and undone["annotator"] == "bob"
    replaced = by_id.loc[ids["replaced"]]
    assert replaced["superseded"] and replaced["superseded_by"] == ids["relabel"]
    assert not replaced["undone"]
    relabel = by_id.loc[ids["relabel"]]
    assert relabel["supersedes"] == ids["replaced"] and relabel["annotator"] == "Zoë"
    assert relabel["superseded_by"] == -1 and not relabel["superseded"]
    assert by_id["annotator"].value_counts().to_dict() == {
        "alice": 13, "bob": 2, "Zoë": 1, "carol": 1, "": 1
    }  # fmt: skip
    # the model on screen: none before the first round, round 0's after it
    after = by_id.loc[ids["after"]]
    assert after["round"] == 1 and after["model_round"] == 0 and after["model"] == FAST
    before = by_id.drop(index=ids["after"])
    assert (before["model_round"] == -1).all() and (before["model"] == "").all()

    vocabulary = pd.DataFrame(record["vocabulary"])
    assert vocabulary["label"].tolist() == [v["label"] for v in exported["vocabulary"]]
    assert vocabulary["source"].tolist() == [v["source"] for v in exported["vocabulary"]]
    assert dict(zip(vocabulary["label"], vocabulary["source"], strict=True))["type0"] == "markers"
    markers = pd.DataFrame(record["markers"])
    assert markers.groupby("type")["gene"].apply(list).to_dict() == MARKERS
    rounds = pd.DataFrame(record["rounds"])
    assert set(rounds.columns) == set(ROUND_COLUMNS)
    assert rounds["round"].tolist() == [0] and rounds["model"].tolist() == [FAST]
    assert rounds["n_labeled"].tolist() == [exported["rounds"][0]["n_labeled"]]

    settings = record["settings"]
    assert settings["model"] == FAST and settings["seed"] == 0 and settings["label_key"] == ""
    assert settings["schema_version"] == SCHEMA_VERSION and settings["round"] == 1
    assert settings["scactive_version"] and settings["strategy"] == "entropy"


def test_the_obs_columns_show_who_answered(exported):
    out = ad.read_h5ad(exported["h5ad"])
    assert set(EXPORT_COLUMNS) <= set(out.obs.columns)
    cells = exported["cells"]
    who = out.obs["scactive_annotator"]
    assert who[cells[0]] == "alice" and who[cells[14]] == "Zoë" and who[cells[15]] == "alice"
    assert who[cells[12]] == ""  # answered without a name
    assert pd.isna(who[cells[13]]) and pd.isna(who[cells[40]])  # undone; never answered
    labeled = out.obs["scactive_label"].dropna().astype(str)
    assert labeled.to_dict() == exported["labels"]


# -- starting a new session from an export ------------------------------------------------------
def test_a_new_session_from_the_export_has_exactly_its_labels(exported, tmp_path):
    out = ad.read_h5ad(exported["h5ad"])
    with open_session(out, tmp_path / "again.scactive", label_key="scactive_label") as session:
        labels = session.labels().set_index("cell")
        history = session.history().set_index("cell")
    assert labels["label"].to_dict() == exported["labels"]
    assert set(labels["kind"]) == {"label"} and (history["origin"] == "seed").all()
    # who gave each label and when are those of the answer that gave it
    old = exported["history"]
    current = old[(old["undone"] == 0) & old["superseded_by"].isna() & (old["kind"] == "label")]
    current = current.set_index("cell")
    assert history["annotator"].to_dict() == current["annotator"].to_dict()
    assert history["answered_at"].to_dict() == current["answered_at"].to_dict()


def test_a_new_session_from_the_export_keeps_its_vocabulary_and_markers(exported, tmp_path):
    out = ad.read_h5ad(exported["h5ad"])
    given = {"type1": ["G21"], "typeNew": ["G30"]}
    with open_session(
        out, tmp_path / "again.scactive", label_key="scactive_label", markers=given
    ) as session:
        vocabulary = session.status()["vocabulary"]
        markers = session._store.markers()
    before = [(v["label"], v["source"]) for v in exported["vocabulary"]]
    # every type of the exported session, the ones no cell holds ("Mistake", "First try")
    # included, in its order and with its sources; then the new type of the given markers
    assert ("Mistake", "user") in before and ("First try", "user") in before
    assert [(v["label"], v["source"]) for v in vocabulary] == [*before, ("typeNew", "markers")]
    assert markers == {"type0": ["G0", "G1"], "type1": ["G20", "G21"], "typeNew": ["G30"]}


def test_a_control_character_in_the_carried_vocabulary_is_refused(exported, tmp_path):
    out = ad.read_h5ad(exported["h5ad"])
    vocabulary = out.uns["scactive"]["vocabulary"]
    vocabulary["label"] = np.array([*vocabulary["label"][:-1], "bad\u202etype"], dtype=object)
    with pytest.raises(InputError, match=r"uns\['scactive'\]\['vocabulary'\]"):
        open_session(out, tmp_path / "s.scactive", label_key="scactive_label")
    assert not (tmp_path / "s.scactive").exists()


def test_unknown_and_empty_labels_do_not_count(exported, tmp_path):
    out = ad.read_h5ad(exported["h5ad"])
    cells = exported["cells"]
    column = out.obs["scactive_label"].astype(object)
    planted = {cells[0]: "unknown", cells[1]: "", cells[2]: "Unassigned", cells[3]: "  "}
    for cell, value in planted.items():
        column[cell] = value
    out.obs["scactive_label"] = pd.Categorical(column)
    with open_session(out, tmp_path / "s.scactive", label_key="scactive_label") as session:
        labels = session.labels().set_index("cell")["label"].to_dict()
    expected = {c: t for c, t in exported["labels"].items() if c not in planted}
    assert labels == expected


def test_query_over_an_export_says_where_its_labels_come_from(exported, tmp_path):
    session = tmp_path / "resumed.scactive"
    before = sha256(exported["h5ad"])
    result = invoke(
        "query", exported["h5ad"], "--session", session, "--label-key", "scactive_label",
        "--n", 3, "--learner", FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    n = len(exported["labels"])
    assert "is an scactive export" in text and f"starts from its {n} labels" in text
    assert "bob" in text and "carol" in text  # the log's annotators
    plain = invoke("query", exported["h5ad"], "--session", tmp_path / "plain.scactive", "--n", 3)
    assert plain.exit_code == 0, plain.output
    assert "--label-key scactive_label" in " ".join(plain.output.split())
    # nothing overwrites the input: an export onto it is refused, and it is unchanged
    refused = invoke("export", "--session", session, "--out", exported["h5ad"])
    assert refused.exit_code == 2 and "would overwrite the input data" in " ".join(
        refused.output.split()
    )
    assert sha256(exported["h5ad"]) == before


def test_annotate_resumes_from_an_export_with_the_annotators_name(exported, tmp_path):
    session = tmp_path / "served.scactive"
    before = sha256(exported["h5ad"])
    args = ("--label-key", "scactive_label", "--annotator", "dana", "--learner", FAST)
    with Server(exported["h5ad"], session, free_port(), *args) as server:
        assert "is an scactive export" in " ".join("".join(server.output).split())
        state = server.state_with_batch()
        assert state["n_labeled"] == len(exported["labels"]) and state["annotator"] == "dana"
        cell = state["batch"][0]
        given = server.call("/api/answer", {"cell": cell, "label": "typeX"})
        exports = server.call("/api/export", {})["written"]
    with open_session(ad.read_h5ad(exported["h5ad"]), session) as reopened:
        history = reopened.history().set_index("id")
    assert history.loc[given["id"], "annotator"] == "dana"
    assert history.loc[given["id"], "origin"] == "user"
    out = ad.read_h5ad(next(p for p in exports if p.endswith(".h5ad")))
    assert out.obs.loc[cell, "scactive_annotator"] == "dana"
    assert out.uns["scactive"]["settings"]["batch_size"] == state["batch_size"]
    assert sha256(exported["h5ad"]) == before  # the input export untouched


# -- the annotator's name -----------------------------------------------------------------------
def test_teach_records_the_annotator_and_export_shows_it(adata, truth, tmp_path):
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    session = tmp_path / "cells.scactive"
    named, unnamed = list(adata.obs_names[:4]), list(adata.obs_names[4:6])
    for cells, extra in ((named, ("--annotator", "Ana")), (unnamed, ())):
        answers = tmp_path / f"answers{len(extra)}.csv"
        pd.DataFrame({"cell": cells, "label": truth[cells]}).to_csv(answers, index=False)
        result = invoke("teach", data, answers, "--session", session, *extra)
        assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"cell": adata.obs_names[9:10], "label": "type0"}).to_csv(bad, index=False)
    refused = invoke("teach", bad, "--session", session, "--annotator", "An\u202ea")
    assert refused.exit_code == 2 and "annotator name" in refused.output
    out_path = tmp_path / "out.h5ad"
    assert invoke("export", "--session", session, "--out", out_path).exit_code == 0
    out = ad.read_h5ad(out_path)
    who = out.obs["scactive_annotator"]
    assert (who[named] == "Ana").all() and (who[unnamed] == "").all()
    assert who.notna().sum() == len(named) + len(unnamed)
    log = pd.DataFrame(out.uns["scactive"]["answers"]).set_index("cell")
    assert log.loc[named, "annotator"].tolist() == ["Ana"] * len(named)
    assert log.loc[unnamed, "annotator"].tolist() == [""] * len(unnamed)


def test_the_page_names_who_answered(adata, truth, tmp_path):
    with open_session(adata, tmp_path / "s.scactive", model=FAST) as session:
        web = create_app(session, batch_size=4, annotator=" Rui ")
        web.state.trainer.wait(WAIT)
        cells = list(adata.obs_names[:4])
        with TestClient(web, base_url=LOCAL, headers={"Origin": LOCAL}) as client:
            assert client.get("/api/state").json()["annotator"] == "Rui"
            bodies = [{}, {"annotator": "Maya"}, {"annotator": "   "}, {"annotator": None}]
            ids = []
            for cell, extra in zip(cells, bodies, strict=True):
                reply = client.post("/api/answer", json={"cell": cell, "label": "B", **extra})
                assert reply.status_code == 200, reply.text
                ids.append(reply.json()["id"])
            for name, status in (("M\u200bx", 422), ("x" * (MAX_LABEL_LENGTH + 1), 422)):
                body = {"cell": cells[0], "label": "C", "annotator": name}
                assert client.post("/api/answer", json=body).status_code == status
            assert client.post("/api/answer", json={**body, "annotator": 7}).status_code == 400
        history = session.history().set_index("id")
    assert history.loc[ids, "annotator"].tolist() == ["Rui", "Maya", "Rui", "Rui"]
    assert len(history) == len(ids)  # the refused answers changed nothing


def test_a_bad_annotator_name_is_refused_at_start(adata, tmp_path):
    with open_session(adata, tmp_path / "s.scactive", model=FAST) as session:
        with pytest.raises(InputError, match="annotator name"):
            create_app(session, annotator="A\x07B")


# -- session files of the schema before the annotator --------------------------------------------
#: The tables as schema 2 wrote them (before ``answers.annotator``).
SCHEMA_2 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE vocabulary (
    label TEXT PRIMARY KEY,
    added_at TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('seed', 'markers', 'user'))
);
CREATE TABLE markers (
    type TEXT NOT NULL, gene TEXT NOT NULL, added_at TEXT NOT NULL, PRIMARY KEY (type, gene)
);
CREATE TABLE answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cell TEXT NOT NULL,
    label TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('label', 'unsure', 'doublet', 'skip')),
    round INTEGER NOT NULL,
    strategy TEXT,
    origin TEXT NOT NULL CHECK (origin IN ('seed', 'user')),
    answered_at TEXT NOT NULL,
    supersedes INTEGER REFERENCES answers (id),
    superseded_by INTEGER REFERENCES answers (id),
    undone INTEGER NOT NULL DEFAULT 0 CHECK (undone IN (0, 1)),
    undone_at TEXT,
    CHECK ((kind = 'label') = (label IS NOT NULL))
);
CREATE UNIQUE INDEX answers_active_cell
    ON answers (cell) WHERE undone = 0 AND superseded_by IS NULL;
CREATE TABLE rounds (
    round INTEGER PRIMARY KEY, strategy TEXT, model TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL, n_labeled INTEGER NOT NULL, n_types INTEGER NOT NULL,
    cv_accuracy REAL, cv_folds INTEGER, cv_model TEXT, learner_seed INTEGER NOT NULL,
    labels_sha256 TEXT NOT NULL, estimated_f1 REAL, agreement REAL, stop INTEGER
);
CREATE TABLE embeddings (
    name TEXT PRIMARY KEY, n_cells INTEGER NOT NULL, n_dims INTEGER NOT NULL, data BLOB NOT NULL
);
"""


def test_a_session_file_of_schema_2_opens_and_gains_the_annotator(adata, truth, tmp_path):
    path = tmp_path / "old.scactive"
    umap = np.random.default_rng(0).normal(size=(adata.n_obs, 2)).astype(np.float32)
    old_cell = str(adata.obs_names[0])
    meta = {
        "schema_version": "2", "dataset_checksum": dataset_checksum(adata),
        "n_cells": str(adata.n_obs), "label_key": "", "matrix": "X", "model": FAST, "seed": "0",
        "strategy_default": "entropy", "created": "2024-01-01T00:00:00.000+00:00",
    }  # fmt: skip
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(SCHEMA_2)
        conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        conn.execute("INSERT INTO embeddings VALUES ('umap', ?, 2, ?)", (len(umap), umap.tobytes()))
        conn.execute(
            "INSERT INTO vocabulary VALUES (?, '2024-01-01T00:00:00.000+00:00', 'user')",
            (truth[old_cell],),
        )
        conn.execute(
            "INSERT INTO answers (cell, label, kind, round, strategy, origin, answered_at) "
            "VALUES (?, ?, 'label', 0, 'user', 'user', '2024-01-01T00:00:01.000+00:00')",
            (old_cell, truth[old_cell]),
        )
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 2")
        conn.commit()
    new_cell = str(adata.obs_names[1])
    with open_session(adata, path) as session:
        session.answer(new_cell, truth[new_cell], annotator="Eve")
        history = session.history().set_index("cell")
        table = session.export_table()
    assert history.loc[old_cell, "label"] == truth[old_cell]  # the old answer kept
    assert (
        history.loc[old_cell, "annotator"] is None and history.loc[new_cell, "annotator"] == "Eve"
    )
    assert table.loc[old_cell, "scactive_annotator"] == ""
    assert table.loc[new_cell, "scactive_annotator"] == "Eve"
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(answers)")]
    assert "annotator" in columns


def test_the_pages_name_field_is_sent_and_kept_in_the_browser(adata, tmp_path):
    from test_app_browser import CHROMIUM, FLAGS

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    session = tmp_path / "web.scactive"
    args = ("--batch-size", "4", "--annotator", "Host", "--learner", FAST)
    with Server(data, session, free_port(), *args) as server:
        first, second = server.state_with_batch()["batch"][:2]
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            page.set_default_timeout(WAIT * 1000)
            page.goto(server.origin + "/")
            page.wait_for_selector(f'#batch li.selected[data-cell="{first}"]')
            assert page.get_attribute("#annotator", "placeholder") == "Host"
            page.keyboard.press("u")  # the field is empty: the server's name
            page.wait_for_selector(f'#batch li.answered[data-cell="{first}"]')
            page.fill("#annotator", "  Ana  ")
            page.evaluate("document.activeElement.blur()")  # keys answer again
            page.wait_for_selector(f'#batch li.selected[data-cell="{second}"]')
            page.keyboard.press("s")
            page.wait_for_selector(f'#batch li.answered[data-cell="{second}"]')
            page.reload()
            page.wait_for_selector("#batch li.answered")
            assert page.input_value("#annotator") == "Ana"  # kept in localStorage
            browser.close()
    store = SessionStore(session)
    try:
        who = {a["cell"]: a["annotator"] for a in store.history()}
    finally:
        store.close()
    assert who == {first: "Host", second: "Ana"}
