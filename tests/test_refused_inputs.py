"""Bad input the commands refuse in one paragraph (exit 2, no traceback, the user's files
byte-identical): ports, damaged h5ad files, trees and markers of the wrong kind, edited
session files; and the messages of a few cases that are not errors."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from starlette.testclient import TestClient
from typer.testing import CliRunner

from conftest import make_counts
from scactive import io
from scactive._errors import InputError
from scactive.cli import app as cli


def invoke(*args) -> object:
    return CliRunner().invoke(cli, list(map(str, args)))


def digest(folder: Path) -> dict[str, str]:
    """Every file of ``folder`` and its SHA-256."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()
    }


def refused(result, *words: str) -> str:
    """Exit 2, no traceback, and ``words`` in the one-paragraph message; returns it."""
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    squeezed = "".join(text.split())  # the console wraps long paths inside a word
    for word in words:
        assert "".join(word.split()) in squeezed, text
    return text


@pytest.fixture(scope="module")
def adata() -> ad.AnnData:
    return make_counts(n_cells=90, n_genes=120, n_types=3)


@pytest.fixture
def data(adata, tmp_path) -> Path:
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def query_refused(tmp_path: Path, data: Path, *args, words=()) -> str:
    """``scactive query`` refuses: the folder's files byte-identical, no session made."""
    before = digest(tmp_path)
    session = tmp_path / "new.scactive"
    text = refused(invoke("query", data, "--session", session, *args), *words)
    assert digest(tmp_path) == before
    return text


# -- the port ---------------------------------------------------------------------------------
@pytest.mark.parametrize("port", ["70000", "-1", "65536"])
def test_a_port_out_of_range_is_refused(port, data, tmp_path):
    before = digest(tmp_path)
    result = invoke("annotate", data, "--session", tmp_path / "s.scactive", "--port", port)
    refused(result, f"--port {port}", "1 to 65535, or 0")
    assert digest(tmp_path) == before


def test_port_0_listens_on_a_free_port_and_says_which(data, tmp_path):
    from serving import Server

    with Server(data, tmp_path / "s.scactive", 0) as server:
        assert server.port > 0
        assert "vocabulary" in server.call("/api/state")


# -- damaged h5ad files -----------------------------------------------------------------------
def _rewrite(path: Path, name: str, values: np.ndarray) -> None:
    with h5py.File(path, "r+") as f:
        del f[name]
        f[name] = values


def _spoil(path: Path, problem: str) -> None:
    """Plant one problem into the h5ad at ``path`` (sparse X as anndata writes it)."""
    with h5py.File(path, "r") as f:
        indptr = f["X/indptr"][()].astype(np.int64)
    if problem == "indptr decreasing":
        indptr[5], indptr[6] = indptr[6], indptr[5]
        _rewrite(path, "X/indptr", indptr)
    elif problem == "indptr too short":
        _rewrite(path, "X/indptr", indptr[:-10])
    elif problem == "indptr not from 0":
        indptr[0] = 3
        _rewrite(path, "X/indptr", indptr)
    elif problem == "indptr claims 2^40 values":
        indptr[-1] = 2**40
        _rewrite(path, "X/indptr", indptr)
    elif problem == "shape 2^40":
        with h5py.File(path, "r+") as f:
            f["X"].attrs["shape"] = np.array([2**40, 2**40])
    with h5py.File(path, "r+") as f:  # datasets that declare 2^40 entries and store none
        huge = {"shape": (2**40,), "chunks": (1 << 20,), "fillvalue": 0}
        if problem == "data of 2^40 entries":
            for name, dtype in (("X/data", "f4"), ("X/indices", "i4")):
                del f[name]
                f.create_dataset(name, dtype=dtype, **huge)
        elif problem == "dense X of 2^40 entries":
            del f["X"]
            f.create_dataset("X", shape=(90, 2**34), dtype="f4", chunks=(90, 4096), fillvalue=0)
            f["X"].attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
        elif problem == "obs column of 2^40 entries":
            del f["obs/cell_type/codes"]
            f.create_dataset("obs/cell_type/codes", dtype="i1", **huge)


@pytest.mark.parametrize(
    ("problem", "words"),
    [
        ("indptr decreasing", ["'X/indptr' decreases at row 5"]),
        ("indptr too short", ["'X/indptr' holds 81 entries", "needs 91"]),
        ("indptr not from 0", ["'X/indptr' starts at 3"]),
        ("indptr claims 2^40 values", ["'X/indptr' ends at 1099511627776"]),
        ("shape 2^40", ["a matrix of 1099511627776 rows"]),
        ("data of 2^40 entries", ["'/X/data' declares 1099511627776 entries", "0 of its"]),
        ("dense X of 2^40 entries", ["'/X' declares 90x17179869184 entries"]),
        ("obs column of 2^40 entries", ["'/obs/cell_type/codes' declares"]),
    ],
)
def test_a_damaged_h5ad_is_refused_before_it_is_read(problem, words, data, tmp_path):
    _spoil(data, problem)
    query_refused(tmp_path, data, words=[*words, "damaged", "re-export or re-download"])


def test_an_h5ad_larger_than_memory_is_refused_before_it_is_read(data, monkeypatch):
    import scactive._h5ad as h5ad

    monkeypatch.setattr(h5ad, "_physical_memory", lambda: 4096)
    with pytest.raises(InputError, match="more than this machine's 4.0 KiB of memory"):
        io.read(data)


@pytest.mark.parametrize("where", ["indices", "indptr"])
def test_a_damaged_matrix_in_memory_is_refused(adata, where):
    X = adata.X.copy()
    if where == "indices":
        X.indices[7] = 10**6
    else:
        X.indptr[5] = X.indptr[6] + 1
    broken = ad.AnnData(sp.csr_matrix(X.shape, dtype=np.float32), obs=adata.obs, var=adata.var)
    broken.X.data, broken.X.indices, broken.X.indptr = X.data, X.indices, X.indptr
    with pytest.raises(InputError, match="The expression matrix is damaged"):
        io.select_matrix(broken)


# -- a single PCA component -------------------------------------------------------------------
@pytest.mark.parametrize("how", ["one gene", "--n-pcs 1"])
def test_simulate_with_one_pca_component_runs(how, adata, tmp_path):
    data = tmp_path / "cells.h5ad"
    (adata[:, :1].copy() if how == "one gene" else adata).write_h5ad(data)
    out = tmp_path / "run"
    extra = ["--n-pcs", "1"] if how == "--n-pcs 1" else []
    result = invoke("simulate", data, "--label-key", "cell_type", "--strategies",
                    "random,entropy", "--batch-sizes", "6", "--rounds", "1", "--initial", "12",
                    "--seeds", "1", "--min-genes", "0", "--no-report", "--no-progress",
                    *extra, "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    picks = pd.read_csv(out / "picks.csv")
    assert len(picks) and picks["pc1"].notna().all() and picks["pc2"].isna().all()
    split = pd.read_csv(out / "split.csv")
    assert split["pc2"].isna().all()


# -- trees and markers ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tree", "words"),
    [
        ({"T cell": {"CD4 T": 5}}, ["gives 'CD4 T' the subtypes 5 (a number)"]),
        ({"T cell": {"CD8 T": True}}, ["gives 'CD8 T' the subtypes true (true/false)"]),
        ({"T cell": ["CD4 T", 3]}, ["names a type 3 (a number) under 'T cell'", '("3")']),
        ({"T cell": {}, "B": 2.5}, ["gives 'B' the subtypes 2.5"]),
    ],
)
def test_a_tree_with_a_number_or_bool_is_refused(tree, words, data, tmp_path):
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(tree))
    query_refused(tmp_path, data, "--hierarchy", path, words=["tree.json", *words])


@pytest.mark.parametrize(
    "markers", [{"B cells": 5}, {"B cells": ["MS4A1", 3]}, {"B cells": {"MS4A1": 1}}, {"B": None}]
)
def test_markers_that_are_not_gene_names_are_refused(markers, data, tmp_path):
    path = tmp_path / "markers.json"
    path.write_text(json.dumps(markers))
    type_ = next(iter(markers))
    words = ["markers.json", f"The markers of '{type_}' are", "list of gene names"]
    query_refused(tmp_path, data, "--markers", path, words=words)


# -- edited session files ---------------------------------------------------------------------
@pytest.fixture
def session(adata, data, tmp_path) -> Path:
    """A session file with two answers, made from the command line."""
    answers = tmp_path / "answers.csv"
    answers.write_text("cell,label\ncell0,type0\ncell1,type1\n")
    path = tmp_path / "cells.scactive"
    assert invoke("teach", data, answers, "--session", path).exit_code == 0
    return path


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ("UPDATE embeddings SET n_dims = 3 WHERE name = 'umap'",
         ["caches the embedding 'umap' as 90 x 3 values", "90 x 2 values"]),
        ("UPDATE embeddings SET data = substr(data, 1, 100) WHERE name = 'umap'",
         ["stored in 100 bytes"]),
        ("INSERT INTO answers (cell, label, kind, round, strategy, origin, answered_at) "
         "VALUES ('ghost', 'type0', 'label', 0, 'user', 'user', '2024-01-01')",
         ["answers for 1 cell(s) not in the data ('ghost')"]),
        ("UPDATE meta SET value = '1.5' WHERE key = 'seed'", ["records the seed '1.5'"]),
        ("UPDATE meta SET value = 'abc' WHERE key = 'seed'", ["records the seed 'abc'"]),
        ("UPDATE meta SET value = '-3' WHERE key = 'seed'", ["records the seed '-3'"]),
        ("UPDATE meta SET value = '99999999999' WHERE key = 'seed'", ["from 0 to 4294967295"]),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["query", "export"])
def test_an_edited_session_file_is_refused_untouched(command, edit, words, session, tmp_path):
    with closing(sqlite3.connect(session)) as conn, conn:
        conn.execute(edit)
    before = digest(tmp_path)
    args = ["--out", tmp_path / "out.h5ad"] if command == "export" else []
    result = invoke(command, "--session", session, *args)
    refused(result, str(session), *words, "edited or damaged", "left untouched")
    assert digest(tmp_path) == before


def test_a_seed_out_of_range_is_refused(adata, tmp_path):
    from scactive.app import open_session

    with pytest.raises(InputError, match="seed=-1 is not a seed"):
        open_session(adata, tmp_path / "s.scactive", seed=-1)
    assert not (tmp_path / "s.scactive").exists()


# -- the estimate when every cell is labeled --------------------------------------------------
def test_the_estimate_says_why_it_is_missing_when_every_cell_is_labeled(tmp_path):
    cells = make_counts(n_cells=40, n_genes=150, n_types=5)
    data, answers = tmp_path / "cells.h5ad", tmp_path / "answers.csv"
    cells.write_h5ad(data)
    labels = cells.obs["cell_type"].astype(str)
    pd.DataFrame({"cell": labels.index, "label": labels}).to_csv(answers, index=False)
    session = tmp_path / "s.scactive"
    assert invoke("teach", data, answers, "--session", session).exit_code == 0
    result = invoke("query", "--session", session, "--learner", "logreg")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "of 5 types" in text and "one type labeled" not in text
    assert "every cell is labeled: no unlabeled cell is left to estimate it on" in text


# -- the same-origin check --------------------------------------------------------------------
@pytest.fixture(scope="module")
def web(adata, tmp_path_factory):
    from scactive.app import open_session
    from scactive.app._server import create_app

    with open_session(adata, tmp_path_factory.mktemp("web") / "s.scactive") as session:
        app = create_app(session, batch_size=3, strategy="random")
        app.state.trainer.wait(300)
        yield app


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://127.0.0.1:8765", 200),
        ("HTTP://127.0.0.1:8765", 200),
        ("https://127.0.0.1:8765", 403),
        ("https://127.0.0.1", 403),
        ("http://127.0.0.1", 403),
        ("http://127.0.0.1:80", 403),
        ("ftp://127.0.0.1:8765", 403),
        ("http://127.0.0.1:notaport", 403),
    ],
)
def test_the_origin_must_match_scheme_host_and_port(web, origin, status):
    client = TestClient(web, base_url="http://127.0.0.1:8765")
    reply = client.post("/api/next", json={}, headers={"Origin": origin})
    assert reply.status_code == status, reply.text
    referer = client.post("/api/next", json={}, headers={"Referer": origin + "/page"})
    assert referer.status_code == status, referer.text
