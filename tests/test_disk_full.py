"""A full disk is a full disk: the session store, export, simulate and the web app say the disk
is full (not that the file is damaged), exit 2 or answer 507, lose no answer and leave no stub.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from pathlib import Path

import anndata as ad
import pandas as pd
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from conftest import make_counts
from scactive._errors import DiskFull, disk_full, is_disk_full
from scactive.app import open_session
from scactive.app._server import create_app
from scactive.app._store import SessionStore
from scactive.cli import app as cli

LOCAL = "http://127.0.0.1:8765"
FULL = "database or disk is full"


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def says_full(result) -> str:
    """Exit 2 with a full disk's message, not damage's, and no traceback."""
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "is full" in text and "not damage" in text, text
    assert "damaged" not in text and ".recover" not in text, text
    return text


class FullConnection:
    """A session store's connection whose writes fail as SQLite's do on a full disk."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _check(self, sql: str) -> None:
        if sql.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            raise sqlite3.OperationalError(FULL)

    def execute(self, sql: str, *args):
        self._check(sql)
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args):
        self._check(sql)
        return self._conn.executemany(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self._conn, name)


@pytest.fixture
def full_store(monkeypatch):
    """Every session store's writes fail with SQLITE_FULL while the fixture is active."""
    connection = SessionStore._connection
    monkeypatch.setattr(SessionStore, "_connection", lambda self: FullConnection(connection(self)))


@pytest.fixture(scope="module")
def adata() -> ad.AnnData:
    return make_counts(n_cells=120, n_genes=200, n_types=3)


def answers_file(adata, folder: Path, name: str, cells: slice) -> Path:
    truth = adata.obs["cell_type"].astype(str)
    path = folder / name
    pd.DataFrame({"cell": truth.index[cells], "label": truth.iloc[cells]}).to_csv(path, index=False)
    return path


@pytest.fixture
def files(adata, tmp_path):
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    session = tmp_path / "cells.scactive"
    result = invoke("teach", data, answers_file(adata, tmp_path, "a.csv", slice(0, 12)),
                    "--session", session)  # fmt: skip
    assert result.exit_code == 0, result.output
    return data, session


def active_cells(data: Path, session: Path) -> set[str]:
    with open_session(ad.read_h5ad(data), session) as s:
        return set(s.labels()["cell"])


# -- the shared detection ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "err",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        sqlite3.OperationalError(FULL),
        OSError(
            "Can't write data (file write failed: errno = 28, error message = 'No space "
            "left on device')"
        ),  # fmt: skip
    ],
)
def test_full_disks_are_told_apart(err):
    assert is_disk_full(err)
    wrapped = RuntimeError("while writing")
    wrapped.__cause__ = err
    assert is_disk_full(wrapped)
    message = str(disk_full("/data/out.h5ad", err))
    assert "'/data/out.h5ad'" in message and ("is full" in message or "quota" in message)


@pytest.mark.parametrize(
    "err", [OSError(errno.EACCES, "Permission denied"), sqlite3.DatabaseError("malformed")]
)
def test_other_errors_are_not_a_full_disk(err):
    assert not is_disk_full(err)


# -- the session store ---------------------------------------------------------------------------
def test_a_real_sqlite_full_is_not_damage_and_keeps_every_answer(files):
    data, session = files
    with open_session(ad.read_h5ad(data), session) as s:
        conn = s._store._conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own SQLITE_FULL
        with pytest.raises(DiskFull, match="session file") as caught:
            s._store.set_embedding("large", __import__("numpy").zeros((5000, 50)))
        assert "damaged" not in str(caught.value)
    assert len(active_cells(data, session)) == 12


def test_teach_on_a_full_disk_says_so_and_loses_nothing(adata, files, tmp_path, full_store):
    data, session = files
    more = answers_file(adata, tmp_path, "b.csv", slice(12, 20))
    says_full(invoke("teach", more, "--session", session))


def test_answers_are_all_there_after_a_full_disk(adata, files, tmp_path, monkeypatch):
    data, session = files
    more = answers_file(adata, tmp_path, "b.csv", slice(12, 20))
    connection = SessionStore._connection
    with monkeypatch.context() as patched:
        patched.setattr(SessionStore, "_connection", lambda self: FullConnection(connection(self)))
        says_full(invoke("teach", more, "--session", session))
    assert len(active_cells(data, session)) == 12  # every acknowledged answer kept
    assert invoke("teach", more, "--session", session).exit_code == 0  # room again: it works
    assert len(active_cells(data, session)) == 20


def test_a_new_session_on_a_full_disk_leaves_no_stub(adata, tmp_path, full_store):
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    session = tmp_path / "new.scactive"
    answers = answers_file(adata, tmp_path, "a.csv", slice(0, 6))
    text = says_full(invoke("teach", data, answers, "--session", session))
    assert "new session" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "cells.h5ad"]
    with pytest.raises(DiskFull):
        open_session(ad.read_h5ad(data), session)
    assert not any(p.name.startswith("new.scactive") for p in tmp_path.iterdir())


# -- exports, simulate ---------------------------------------------------------------------------
def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_export_on_a_full_disk_writes_nothing_and_keeps_the_old_files(files, monkeypatch):
    data, session = files
    out, csv = session.with_name("annotated.h5ad"), session.with_name("labels.csv")
    out.write_bytes(b"the previous export")
    before = names_in(session.parent)

    def half_then_full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF half")
        enospc()

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_full)  # the second file fails
    text = says_full(invoke("export", "--session", session, "--out", out, "--csv", csv))
    assert "".join(str(csv).split()) in "".join(text.split())  # rich may wrap inside it
    assert out.read_bytes() == b"the previous export"  # the h5ad waited for the CSV
    assert names_in(session.parent) == before


def names_in(folder: Path) -> list[str]:
    """The files in ``folder``, but for those SQLite keeps beside an open session."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm")))


def test_simulate_on_a_full_disk_says_so(files, tmp_path, monkeypatch):
    data, _ = files
    out = tmp_path / "run"
    monkeypatch.setattr(os, "fsync", enospc)
    result = invoke(
        "simulate", data, "--label-key", "cell_type", "--strategies", "random",
        "--batch-sizes", "6", "--rounds", "1", "--initial", "12", "--no-report", "--seeds", "1",
        "--min-genes", "0", "--n-top-genes", "100", "--n-pcs", "10", "--no-progress",
        "--out", out,
    )  # fmt: skip
    text = says_full(result)
    assert "running it again resumes" in text
    leftover = (
        [p for p in out.rglob("*") if p.is_file() and ".tmp" in p.name] if out.exists() else []
    )
    assert leftover == []


# -- the web app ---------------------------------------------------------------------------------
@pytest.fixture
def client(files):
    data, session_path = files
    session = open_session(ad.read_h5ad(data), session_path)
    web = create_app(session, batch_size=4, strategy="random")
    web.state.trainer.wait(300)
    with TestClient(web, base_url=LOCAL, headers={"Origin": LOCAL}) as client:
        client.session = session
        yield client
    session.close()


def test_the_server_answers_507_on_a_full_disk(client, monkeypatch):
    session = client.session
    cell = session.cells[50]
    connection = SessionStore._connection
    with monkeypatch.context() as patched:
        patched.setattr(SessionStore, "_connection", lambda self: FullConnection(connection(self)))
        reply = client.post("/api/answer", json={"cell": cell, "label": "type0"})
    assert reply.status_code == 507, reply.text
    message = reply.json()["error"]
    assert "is full" in message and "damaged" not in message
    assert cell not in set(session.labels()["cell"])
    assert client.post("/api/answer", json={"cell": cell, "label": "type0"}).status_code == 200


def test_the_page_export_answers_507_on_a_full_disk(client, monkeypatch):
    monkeypatch.setattr(ad.AnnData, "write_h5ad", enospc)
    reply = client.post("/api/export", json={})
    assert reply.status_code == 507, reply.text
    assert "is full" in reply.json()["error"]
    folder = client.session.path.with_name(client.session.path.name + ".export")
    assert not folder.exists() or list(folder.iterdir()) == []


# -- a real full disk ----------------------------------------------------------------------------
@contextlib.contextmanager
def small_disk(folder: Path):
    """A 2 MiB tmpfs mounted on ``folder`` (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=60)


def fill(folder: Path) -> Path:
    """Fill the disk holding ``folder`` to its last byte; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                fh.write(chunk)
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0")
    return filler


def test_a_real_full_disk(adata, tmp_path):
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    first = answers_file(adata, tmp_path, "a.csv", slice(0, 12))
    more = answers_file(adata, tmp_path, "b.csv", slice(12, 40))
    with small_disk(tmp_path / "disk") as disk:
        session = disk / "cells.scactive"
        assert invoke("teach", data, first, "--session", session).exit_code == 0
        filler = fill(disk)
        says_full(invoke("teach", more, "--session", session))
        text = says_full(invoke("teach", data, first, "--session", disk / "new.scactive"))
        assert "new session" in text
        says_full(invoke("export", "--session", session, "--out", disk / "x.h5ad"))
        names = {p.name for p in disk.iterdir()}
        assert not {n for n in names if n.startswith("new.scactive") or "tmp" in n}, names
        assert "x.h5ad" not in names
        filler.unlink()  # room again: everything works, nothing was lost
        assert len(active_cells(data, session)) == 12
        assert invoke("teach", more, "--session", session).exit_code == 0
        assert len(active_cells(data, session)) == 40
