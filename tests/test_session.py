"""The annotation session: durable answers, undo and relabel, cold start, training, export."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from conftest import make_counts
from scactive import InputError
from scactive.app import (
    EXPORT_COLUMNS,
    MAX_LABEL_LENGTH,
    SessionError,
    UnknownCellError,
    open_session,
    read_markers,
)
from scactive.models import load_model


@pytest.fixture(scope="module")
def adata() -> ad.AnnData:
    return make_counts()  # 240 cells of 3 well-separated types, counts


@pytest.fixture(scope="module")
def truth(adata) -> pd.Series:
    return adata.obs["cell_type"].astype(str)


@pytest.fixture(scope="module")
def template(adata, tmp_path_factory):
    """A fresh session file with its UMAP computed once; tests work on copies."""
    path = tmp_path_factory.mktemp("template") / "cells.scactive"
    open_session(adata, path).close()
    assert not path.with_name(path.name + "-wal").exists()  # closed cleanly: one file
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    return path


@pytest.fixture
def path(template, tmp_path):
    dest = tmp_path / "cells.scactive"
    shutil.copy(template, dest)
    return dest


def few_of_each(truth: pd.Series, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        str(c)
        for t in sorted(truth.unique())
        for c in rng.choice(truth.index[truth == t], n, replace=False)
    ]


def test_answers_vocabulary_round_and_umap_persist(adata, truth, path):
    session = open_session(adata, path)
    cells = few_of_each(truth, 3)
    for cell in cells:
        session.answer(cell, truth[cell])
    session.answer("cell1", "Mystery type")
    session.train()
    before = (session.labels(), session.status(), session.embedding())
    session.close()
    del session

    again = open_session(adata, path)
    labels, status, umap = again.labels(), again.status(), again.embedding()
    pd.testing.assert_frame_equal(labels, before[0])
    assert len(labels) == 10
    assert status["vocabulary"] == before[1]["vocabulary"]
    assert {v["label"] for v in status["vocabulary"]} == {*truth.unique(), "Mystery type"}
    assert status["round"] == before[1]["round"] == 1
    pd.testing.assert_frame_equal(umap, before[2])  # read back, not recomputed
    assert again.predictions().empty  # the model is rebuilt lazily ...
    restored = again.ensure_trained()
    assert restored["restored"] and again.status()["round"] == 1  # ... without a new round
    again.close()


_CHILD = """
import sys, time
import scactive
from scactive.app import open_session

adata = scactive.read(sys.argv[1])
session = open_session(adata, sys.argv[2])
print("ready", flush=True)
for i, cell in enumerate(adata.obs_names):
    session.answer(cell, f"type{i % 3}")
    print(cell, flush=True)  # printed only once committed
    time.sleep(0.01)
"""


def test_answers_survive_sigkill(adata, path, tmp_path):
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(data), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        printed = [child.stdout.readline().strip() for _ in range(8)]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        printed += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert len(printed) < adata.n_obs  # killed mid-way
    with open_session(adata, path) as session:
        found = list(session.labels()["cell"])
    assert set(printed) <= set(found)  # never fewer than printed
    assert len(found) <= len(printed) + 1  # at most the one committed as it was killed


def test_other_data_and_foreign_files_are_refused(adata, path, tmp_path):
    other = make_counts(seed=1)
    with pytest.raises(InputError, match="belongs to other data") as err:
        open_session(other, path)
    assert "checksum" in str(err.value) and "--session" in str(err.value)

    text = tmp_path / "notes.txt"
    text.write_text("cell,label\ncell1,B\n")
    with pytest.raises(InputError, match="not a scactive session"):
        open_session(adata, text)
    assert text.read_text() == "cell,label\ncell1,B\n"  # left untouched

    foreign = tmp_path / "foreign.sqlite"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
    with pytest.raises(InputError, match="not a scactive session"):
        open_session(adata, foreign)

    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(InputError, match="newer scactive"):
        open_session(adata, path)


def test_undo_and_relabel(adata, path):
    with open_session(adata, path) as session:
        first = session.answer("cell3", "T cell")
        session.answer("cell4", "B cell")
        second = session.answer("cell3", "NK cell")  # relabel supersedes
        assert second > first
        labels = session.labels().set_index("cell")["label"]
        assert labels.to_dict() == {"cell3": "NK cell", "cell4": "B cell"}
        vocabulary = {v["label"]: v["source"] for v in session.status()["vocabulary"]}
        assert vocabulary == {"T cell": "user", "B cell": "user", "NK cell": "user"}

        undone = session.undo()
        assert undone["id"] == second and undone["label"] == "NK cell"
        labels = session.labels().set_index("cell")["label"]
        assert labels["cell3"] == "T cell"  # the old label is back
        assert session.undo()["cell"] == "cell4"
        assert session.undo()["id"] == first
        assert session.labels().empty
        assert session.undo() is None

        history = session.history()  # nothing is deleted
        assert len(history) == 3 and history["undone"].tolist() == [1, 1, 1]
        assert history.set_index("id").loc[second, "supersedes"] == first

        # by id: one annotator's undo leaves another's later answer alone
        mine = session.answer("cell6", "T cell")
        session.answer("cell7", "B cell")
        assert session.undo(mine)["cell"] == "cell6"
        assert list(session.labels()["cell"]) == ["cell7"]
        with pytest.raises(SessionError, match="undone already"):
            session.undo(mine)


def test_answer_validation(adata, path):
    with open_session(adata, path) as session:
        with pytest.raises(UnknownCellError, match="Unknown cell 'nope'") as err:
            session.answer("nope", "T cell")
        assert isinstance(err.value, SessionError) and isinstance(err.value, KeyError)
        with pytest.raises(SessionError, match="at most 200"):
            session.answer("cell1", "x" * (MAX_LABEL_LENGTH + 1))
        for empty in ("", "   ", None):
            with pytest.raises(SessionError, match="empty|text"):
                session.answer("cell1", empty)
        with pytest.raises(SessionError, match="kind="):
            session.answer("cell1", "T", kind="maybe")
        with pytest.raises(SessionError, match="takes no label"):
            session.answer("cell1", "T", kind="skip")
        with pytest.raises(SessionError, match="reads as 'no label'"):
            session.answer("cell1", "Unknown")
        with pytest.raises(SessionError, match="invalid, none was recorded"):
            session.answer_many([("cell1", "T"), ("cell2", ""), ("ghost", "B")])
        assert session.labels().empty  # nothing recorded from the bad batch

        session.answer("cell1", "x" * MAX_LABEL_LENGTH)
        session.answer("cell2", "  <script>alert(1)</script> ")
        session.answer("cell5", kind="doublet")
        labels = session.labels().set_index("cell")
        assert labels.loc["cell2", "label"] == "<script>alert(1)</script>"  # verbatim
        assert labels.loc["cell5", "kind"] == "doublet"
        assert pd.isna(labels.loc["cell5", "label"])


def test_seed_labels_and_markers(adata, truth, tmp_path):
    seeded = adata.copy()
    known = pd.Series("unknown", index=adata.obs_names, dtype=object)
    picked = few_of_each(truth, 2)
    known[picked] = truth[picked]
    seeded.obs["known"] = known
    markers = {"type0": ["G0", "G1", "G2", "NOPE1"], "Platelet": ["PPBP"]}
    with pytest.warns(UserWarning, match="NOPE1.*PPBP|PPBP.*NOPE1"):
        session = open_session(seeded, tmp_path / "s.scactive", label_key="known", markers=markers)
    with session:
        labels = session.labels()
        assert set(labels["cell"]) == set(picked)
        assert (labels["round"] == 0).all() and (labels["strategy"] == "seed").all()
        sources = {v["label"]: v["source"] for v in session.status()["vocabulary"]}
        assert sources == {"type0": "seed", "type1": "seed", "type2": "seed", "Platelet": "markers"}
        assert session.undo() is None  # seed labels are relabeled, not undone

        # the planted markers G0..G2 are high in type0 cells, not in the others
        type0 = next(c for c in adata.obs_names if truth[c] == "type0" and c not in picked)
        type1 = next(c for c in adata.obs_names if truth[c] == "type1" and c not in picked)
        z0 = [g["z"] for g in session.cell_evidence(type0)["markers"]["type0"]]
        z1 = [g["z"] for g in session.cell_evidence(type1)["markers"]["type0"]]
        assert len(z0) == 3 and np.mean(z0) > 0.5 > np.mean(z1)


def test_read_markers(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("type,gene\nB cell,CD79A\nB cell,MS4A1\nT cell,CD3E\n")
    js = tmp_path / "m.json"
    js.write_text('{"B cell": ["CD79A", "MS4A1"], "T cell": "CD3E"}')
    expected = {"B cell": ["CD79A", "MS4A1"], "T cell": ["CD3E"]}
    assert read_markers(csv) == expected == read_markers(js)
    (tmp_path / "bad.csv").write_text("celltype,marker\nB,CD79A\n")
    with pytest.raises(InputError, match="columns 'type' and 'gene'"):
        read_markers(tmp_path / "bad.csv")


def test_cold_start_spreads_across_clusters(adata, truth, path):
    with open_session(adata, path) as session:
        picks = session.next_batch(3)
        assert sorted(truth[picks]) == ["type0", "type1", "type2"]
        session.answer(picks[0], truth[picks[0]])  # one type: still a cold start
        more = session.next_batch(6)
        assert len(set(more)) == 6 and picks[0] not in more
        assert truth[more].nunique() == 3
        assert set(session.labels()["strategy"]) == {"cold-start"}


def test_train_predicts_planted_types(adata, truth, path):
    with open_session(adata, path) as session:
        with pytest.raises(SessionError, match="at least 2 cell types"):
            session.train()
        labeled = few_of_each(truth, 4)
        session.answer_many([(c, truth[c]) for c in labeled])
        steps = []
        result = session.train(progress_callback=lambda step, f: steps.append((step, f)))
        assert result["round"] == 0 and result["n_labeled"] == 12 and result["n_types"] == 3
        assert 0.0 <= result["cv_accuracy"] <= 1.0 and result["cv_folds"] == 4
        assert steps[-1] == ("done", 1.0)
        predictions = session.predictions().set_index("cell")
        unlabeled = predictions.drop(index=labeled)
        accuracy = (unlabeled["predicted"] == truth[unlabeled.index]).mean()
        assert accuracy >= 0.9
        status = session.status()
        assert status["round"] == 1 and not status["stale"]
        assert status["cv_history"][0]["cv_accuracy"] == result["cv_accuracy"]

        evidence = session.cell_evidence(unlabeled.index[0])
        assert len(evidence["top_genes"]) == 10 and len(evidence["umap"]) == 2
        t = int(truth[unlabeled.index[0]][-1])  # make_counts plants G{20t}..G{20t+19}
        planted = {f"G{i}" for i in range(20 * t, 20 * t + 20)}
        assert len({g["gene"] for g in evidence["top_genes"]} & planted) >= 8
        assert len(evidence["predictions"]) == 3
        assert (
            evidence["predictions"][0]["probability"] >= evidence["predictions"][1]["probability"]
        )
        neighbours = evidence["neighbours"]
        assert len(neighbours) == 5 and all(n["cell"] in labeled for n in neighbours)
        assert neighbours[0]["label"] == truth[unlabeled.index[0]]
        with pytest.raises(UnknownCellError):
            session.cell_evidence("ghost")

        session.answer(unlabeled.index[0], "type1")
        assert session.status()["stale"]


def test_next_batch_never_returns_answered_cells(adata, truth, path):
    with open_session(adata, path) as session:
        with pytest.raises(InputError, match="Unknown strategy 'entropie'.*'entropy'"):
            session.next_batch(5, strategy="entropie")
        with pytest.raises(SessionError, match="n=0"):
            session.next_batch(0)
        answered = few_of_each(truth, 2)
        session.answer_many([(c, truth[c]) for c in answered])
        for kind, cell in zip(
            ("unsure", "doublet", "skip"), ("cell0", "cell1", "cell2"), strict=True
        ):
            session.answer(cell, kind=kind)
            answered.append(cell)
        for strategy in ("entropy", "margin", "random", "wkmc"):
            batch = session.next_batch(20, strategy=strategy)
            assert len(batch) == len(set(batch)) == 20
            assert not set(batch) & set(answered)
        assert set(session.labels().query("kind == 'label'")["strategy"]) == {"user"}

        rest = [c for c in adata.obs_names if c not in answered]
        session.answer_many([(c, None, "skip") for c in rest[5:]])
        left = session.next_batch(20)
        assert sorted(left) == sorted(rest[:5])  # fewer when the pool runs out
        session.answer_many([(c, truth[c]) for c in left])
        assert session.next_batch(20) == []


def test_two_sessions_in_threads_lose_no_answer(adata, truth, path):
    first, second = open_session(adata, path), open_session(adata, path)
    seeds = few_of_each(truth, 3)
    first.answer_many([(c, truth[c]) for c in seeds])
    cells = [c for c in adata.obs_names if c not in seeds][:120]
    errors: list[BaseException] = []

    def run(task):
        try:
            task()
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    def answer_all(session, chunk):
        for cell in chunk:
            session.answer(cell, truth[cell])

    threads = [
        threading.Thread(target=run, args=(lambda: answer_all(first, cells[0::2]),)),
        threading.Thread(target=run, args=(lambda: answer_all(second, cells[1::2]),)),
        threading.Thread(target=run, args=(first.train,)),  # training meanwhile
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for session in (first, second):
        assert set(session.labels()["cell"]) == set(seeds) | set(cells)
    assert not first.predictions().empty
    first.close()
    second.close()


def test_export_round_trips(adata, truth, path, tmp_path):
    with open_session(adata, path) as session:
        session.answer("cell0", truth["cell0"])
        session.answer("cell1", kind="skip")
        early = session.export(tmp_path / "early.h5ad", tmp_path / "early.csv")
        table = pd.read_csv(early["csv"], index_col="cell")
        assert table["scactive_predicted"].isna().all()  # no model yet
        assert table.loc["cell0", "scactive_label"] == truth["cell0"]
        with pytest.raises(SessionError, match="No model to export"):
            session.export(path_model=tmp_path / "m.safetensors")

        labeled = few_of_each(truth, 3)
        session.answer_many([(c, truth[c]) for c in labeled])
        session.train()
        written = session.export(
            tmp_path / "out" / "a.h5ad",
            tmp_path / "out" / "a.csv",
            tmp_path / "out" / "m.safetensors",
        )
    out = ad.read_h5ad(written["h5ad"])
    assert out.n_obs == adata.n_obs and list(out.obs_names) == list(adata.obs_names)
    assert (out.X != adata.X).nnz == 0  # the input's own counts
    assert set(EXPORT_COLUMNS) <= set(out.obs.columns) and out.obsm["X_umap"].shape == (240, 2)
    assert out.obs.loc["cell1", "scactive_answer_kind"] == "skip"
    assert pd.isna(out.obs.loc["cell1", "scactive_label"])
    assert out.obs.loc["cell0", "scactive_round"] == 0
    assert out.obs["scactive_label"].notna().sum() == 1 + len(labeled)
    assert out.obs["scactive_predicted"].notna().all()
    assert out.obs["scactive_confidence"].between(0, 1).all()
    csv = pd.read_csv(written["csv"], index_col="cell")
    assert list(csv.columns) == list(EXPORT_COLUMNS)
    assert (csv["scactive_predicted"] == out.obs["scactive_predicted"].astype(str)).all()
    model = load_model(written["model"])
    assert list(model.classes) == ["type0", "type1", "type2"]
    assert not list(tmp_path.glob("out/.*"))  # no temporary files left behind


def test_umap_of_more_cells_than_scanpys_exact_search_limit():
    # above 4,096 cells scanpy switches to an approximate search that fails with recent scipy
    from scactive.app._prepare import compute_umap as _umap

    pca = np.random.default_rng(0).normal(size=(4200, 10)).astype(np.float32)
    umap = _umap(pca, 0)
    assert umap.shape == (4200, 2) and np.isfinite(umap).all()


def test_a_umap_the_input_carries_is_shown_and_kept(adata, tmp_path):
    planted = np.column_stack([np.arange(adata.n_obs), -np.arange(adata.n_obs)]).astype("f4")
    carrying = adata.copy()
    carrying.obsm["X_umap"] = planted
    with open_session(carrying, tmp_path / "given.scactive") as session:
        np.testing.assert_array_equal(session.embedding()[["umap1", "umap2"]], planted)
        out = session.export(path_h5ad=tmp_path / "out.h5ad")["h5ad"]
    exported = ad.read_h5ad(out)
    np.testing.assert_array_equal(exported.obsm["X_umap"], planted)
    assert "X_umap_input" not in exported.obsm  # the same UMAP, not kept twice
    with open_session(carrying, tmp_path / "computed.scactive", use_input_umap=False) as session:
        assert not np.array_equal(session.embedding()[["umap1", "umap2"]], planted)
    bad = adata.copy()
    bad.obsm["X_umap"] = np.full((adata.n_obs, 2), np.nan, dtype="f4")  # unusable: computed
    with open_session(bad, tmp_path / "bad.scactive") as session:
        assert np.isfinite(session.embedding()[["umap1", "umap2"]].to_numpy()).all()


def test_umap_of_a_large_session_is_a_sketch_with_every_cell_placed_near_its_own():
    from scactive.app._prepare import compute_umap

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 20, size=(3, 10))
    group = np.repeat(np.arange(3), 200)
    pca = (centres[group] + rng.normal(size=(600, 10))).astype(np.float32)
    umap = compute_umap(pca, 0, sketch=150)
    assert umap.shape == (600, 2) and np.isfinite(umap).all()
    # placed cells land among their own group's sketch cells: nearest group centre is theirs
    means = np.array([umap[group == g].mean(0) for g in range(3)])
    nearest = np.argmin(((umap[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (nearest == group).mean() > 0.99
    np.testing.assert_array_equal(umap, compute_umap(pca, 0, sketch=150))  # seeded
