"""The SQLite store of an annotation session: answers, vocabulary, rounds and the cached UMAP.

Durability
----------
The file runs in WAL mode with ``synchronous=FULL``: every commit is fsynced to the write-ahead
log before it returns, so an answer that :meth:`SessionStore.add_answers` returned survives a
killed process *and* a power cut or OS crash. (``NORMAL`` with WAL survives a killed process
too but can lose the last commits on power loss; an answer is a person's work and costs one
fsync of a few hundred bytes, so FULL it is.) Writes run in ``BEGIN IMMEDIATE`` transactions,
which take the write lock up front: a read that later turns into a write can then never fail
with "database is locked", and other connections wait up to ``busy_timeout`` instead.

Nothing is deleted: a relabel adds an answer and marks the old one ``superseded_by``, an undo
marks the answer ``undone`` and re-activates the one it superseded. The statements the store
shares with the other writers of the file (what a current answer is, the vocabulary's growth)
are in :mod:`._answers`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .._errors import InputError
from ._answers import (
    ACTIVE,
    CURRENT_ROUND,
    SELECT_ANSWERS,
    answer_dict,
    insert_vocabulary,
    now,
)
from ._sqlite import connect, database_errors


class SessionError(InputError):
    """A request the session refuses (bad cell, label or argument); the message says why."""


class UnknownCellError(SessionError, KeyError):
    """A cell id that is not in the data."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SessionStore:
    """One connection to a session file, shared by the threads of one :class:`Session`.

    A lock serialises the use of the connection within the process; other connections (other
    ``SessionStore`` objects, other processes) are kept apart by SQLite's own locking.

    Parameters
    ----------
    path
        The session file. Created (with its folder) when missing; an existing file must be a
        scactive session of this or an older schema, anything else is refused untouched.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.RLock()
        self._conn = connect(self.path)

    # -- connection ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (the store cannot be used afterwards)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock from its first statement."""
        with self._lock, database_errors(self.path):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: a consistent snapshot over several statements. Inside one
        already open on this thread (:meth:`snapshot`, a write), its statements join it."""
        with self._lock, database_errors(self.path):
            conn = self._connection()
            if conn.in_transaction:  # the lock is this thread's: so is the transaction
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction over the block (``with store.snapshot(): ...``): every read
        of the store in it sees the same state, whatever other threads or processes commit
        meanwhile. Other threads of this process wait for the store until the block ends, so
        keep it to reading."""
        with self._read():
            yield

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise InputError(f"The session store '{self.path}' is closed; open it again.")
        return self._conn

    # -- meta, embeddings, vocabulary, markers -------------------------------------------
    def meta(self) -> dict[str, str]:
        """The key/value metadata ({} for a session not initialised yet)."""
        with self._read() as conn:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, **items: object) -> None:
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(k, str(v)) for k, v in items.items()],
            )

    def initialize(
        self,
        meta: dict[str, object],
        *,
        embeddings: dict[str, np.ndarray],
        seeds: Sequence[tuple] = (),
        vocabulary: Sequence[tuple[str, str]] = (),
    ) -> bool:
        """Write a new session's metadata, cached embeddings, seed answers and vocabulary.

        Each seed is ``(cell, label[, annotator, answered_at])``: who gave the label and when,
        when known (a label carried over from an export's answer log), else no one and now.
        All in one transaction. Returns False (writing nothing) when another process has
        initialised the file in the meantime.
        """
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM meta WHERE key = 'dataset_checksum'").fetchone():
                return False
            stamp = now()
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(k, str(v)) for k, v in meta.items()] + [("created", stamp)],
            )
            for name, values in embeddings.items():
                _put_embedding(conn, name, values)
            insert_vocabulary(conn, vocabulary, stamp)
            conn.executemany(
                "INSERT INTO answers (cell, label, kind, round, strategy, origin, answered_at, "
                "annotator) VALUES (?, ?, 'label', 0, 'seed', 'seed', ?, ?)",
                [_seed_row(seed, stamp) for seed in seeds],
            )
        return True

    def embedding(self, name: str) -> np.ndarray | None:
        """A cached embedding (cells x dims, float32), or None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT n_cells, n_dims, data FROM embeddings WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            return None
        n_cells, n_dims, data = row
        return np.frombuffer(data, dtype=np.float32).reshape(n_cells, n_dims).copy()

    def embedding_sizes(self) -> dict[str, tuple[int, int, int]]:
        """Each cached embedding's declared cells and dimensions, and its bytes stored."""
        with self._read() as conn:
            rows = conn.execute("SELECT name, n_cells, n_dims, length(data) FROM embeddings")
            return {name: (n_cells, n_dims, size) for name, n_cells, n_dims, size in rows}

    def set_embedding(self, name: str, values: np.ndarray) -> None:
        """Keep ``values`` (cells x dims, stored as float32) under ``name``, replacing any."""
        with self._write() as conn:
            _put_embedding(conn, name, values)

    def add_vocabulary(self, labels: Iterable[str], source: str) -> list[str]:
        """Add labels not in the vocabulary yet; returns the ones added."""
        with self._write() as conn:
            return insert_vocabulary(conn, [(label, source) for label in labels], now())

    def vocabulary(self) -> list[dict]:
        """Every label, in the order it was added, with when and from where."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT label, added_at, source FROM vocabulary ORDER BY rowid"
            ).fetchall()
        return [dict(label=r[0], added_at=r[1], source=r[2]) for r in rows]

    def hierarchy(self) -> list[tuple[str, str | None]]:
        """The cell-type tree: ``(type, parent)`` in the order given (None: top level)."""
        with self._read() as conn:
            return conn.execute("SELECT label, parent FROM hierarchy ORDER BY rowid").fetchall()

    def add_markers(self, markers: dict[str, list[str]]) -> None:
        """Record marker genes per type and add the types to the vocabulary (source markers)."""
        with self._write() as conn:
            stamp = now()
            conn.executemany(
                "INSERT OR IGNORE INTO markers (type, gene, added_at) VALUES (?, ?, ?)",
                [(t, g, stamp) for t, genes in markers.items() for g in genes],
            )
            insert_vocabulary(conn, [(t, "markers") for t in markers], stamp)

    def markers(self) -> dict[str, list[str]]:
        with self._read() as conn:
            rows = conn.execute("SELECT type, gene FROM markers ORDER BY rowid").fetchall()
        out: dict[str, list[str]] = {}
        for cell_type, gene in rows:
            out.setdefault(cell_type, []).append(gene)
        return out

    # -- answers ---------------------------------------------------------------------------
    def add_answers(self, rows: Sequence[tuple]) -> tuple[list[int], list[str]]:
        """Record answers ``(cell, label, kind, strategy, annotator)`` in one transaction
        (``annotator``: who answered, None when not named).

        A cell with an active answer is relabeled: the new answer supersedes the old one.
        Labels not in the vocabulary are added to it (source ``user``). Returns the new answer
        ids and the labels added to the vocabulary. The rows must be validated already.
        """
        ids: list[int] = []
        with self._write() as conn:
            stamp = now()
            added = insert_vocabulary(
                conn, [(row[1], "user") for row in rows if row[2] == "label"], stamp
            )
            for cell, label, kind, strategy, annotator in rows:
                old = conn.execute(
                    f"SELECT id FROM answers WHERE cell = ? AND {ACTIVE}", (cell,)
                ).fetchone()
                if old is not None:  # deactivate first: one active answer per cell, always
                    conn.execute("UPDATE answers SET superseded_by = -1 WHERE id = ?", old)
                new = conn.execute(
                    "INSERT INTO answers (cell, label, kind, round, strategy, origin, "
                    "answered_at, supersedes, annotator) "
                    f"VALUES (?, ?, ?, {CURRENT_ROUND}, ?, 'user', ?, ?, ?)",
                    (cell, label, kind, strategy, stamp, old and old[0], annotator),
                ).lastrowid
                if old is not None:
                    conn.execute("UPDATE answers SET superseded_by = ? WHERE id = ?", (new, old[0]))
                ids.append(int(new))
        return ids, added

    def undo(self, answer_id: int | None = None) -> dict | None:
        """Mark an answer undone and re-activate the one it replaced (if any).

        Without ``answer_id``: the latest active answer given by a person (seed answers from
        the data's label column are not undone this way; relabel them), or None when there is
        none. With it: that answer, which must be active (not undone, not superseded). An
        answer of an action (a selection labeled at once) takes back the whole action: every
        answer of it still current, in this one transaction (``n_undone`` says how many).
        """
        with self._write() as conn:
            if answer_id is None:
                row = conn.execute(
                    f"{SELECT_ANSWERS} WHERE {ACTIVE} AND origin = 'user' "
                    "ORDER BY a.id DESC LIMIT 1"
                ).fetchone()
                if row is None:
                    return None
            else:
                row = conn.execute(f"{SELECT_ANSWERS} WHERE a.id = ?", (answer_id,)).fetchone()
                if row is None:
                    raise SessionError(f"No answer has id {answer_id!r}.")
            answer = answer_dict(row)
            if answer["action"] is not None:  # one answer of an action: the whole action
                return _undo_action(conn, answer)
            if answer["undone"] or answer["superseded_by"] is not None:
                state = (
                    "undone already"
                    if answer["undone"]
                    else f"replaced by answer {answer['superseded_by']}"
                )
                raise SessionError(f"Answer {answer_id} cannot be undone: it was {state}.")
            stamp = now()
            conn.execute(
                "UPDATE answers SET undone = 1, undone_at = ? WHERE id = ?", (stamp, answer["id"])
            )
            if answer["supersedes"] is not None:
                conn.execute(
                    "UPDATE answers SET superseded_by = NULL WHERE id = ?", (answer["supersedes"],)
                )
        return {**answer, "undone": 1, "undone_at": stamp}

    def transaction(self):
        """A write transaction on the store's connection (``with store.transaction() as
        conn``): committed at the end of the block, rolled back on an error."""
        return self._write()

    def active_answers(self) -> list[dict]:
        """The current answer of every answered cell, oldest first."""
        with self._read() as conn:
            rows = conn.execute(f"{SELECT_ANSWERS} WHERE {ACTIVE} ORDER BY a.id").fetchall()
        return [answer_dict(r) for r in rows]

    def history(self) -> list[dict]:
        """Every answer ever given, undone and superseded ones included, oldest first."""
        with self._read() as conn:
            rows = conn.execute(f"{SELECT_ANSWERS} ORDER BY a.id").fetchall()
        return [answer_dict(r) for r in rows]

    # -- rounds ----------------------------------------------------------------------------
    def current_round(self) -> int:
        """The round new answers belong to: one past the last training round (0 at first)."""
        with self._read() as conn:
            return int(conn.execute(f"SELECT {CURRENT_ROUND}").fetchone()[0])

    def record_round(self, **row: object) -> int:
        """Record a training round as the next round number; returns that number."""
        with self._write() as conn:
            round_ = int(conn.execute(f"SELECT {CURRENT_ROUND}").fetchone()[0])
            columns = ["round", *row]
            conn.execute(
                f"INSERT INTO rounds ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                [round_, *row.values()],
            )
        return round_

    def rounds(self) -> list[dict]:
        with self._read() as conn:
            cursor = conn.execute("SELECT * FROM rounds ORDER BY round")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def _put_embedding(conn: sqlite3.Connection, name: str, values: np.ndarray) -> None:
    values = np.ascontiguousarray(values, dtype=np.float32)
    conn.execute(
        "INSERT OR REPLACE INTO embeddings (name, n_cells, n_dims, data) VALUES (?, ?, ?, ?)",
        (name, values.shape[0], values.shape[1], values.tobytes()),
    )


def _undo_action(conn: sqlite3.Connection, answer: dict) -> dict:
    """Undo every current answer of ``answer``'s action, re-activating what they replaced."""
    rows = conn.execute(
        f"SELECT id, supersedes FROM answers WHERE action = ? AND {ACTIVE}", (answer["action"],)
    ).fetchall()
    if not rows:
        raise SessionError(
            f"Action {answer['action']} (answer {answer['id']}) cannot be undone: none of its "
            "answers is current any more."
        )
    stamp = now()
    conn.executemany(
        "UPDATE answers SET undone = 1, undone_at = ? WHERE id = ?", [(stamp, r[0]) for r in rows]
    )
    conn.executemany(
        "UPDATE answers SET superseded_by = NULL WHERE id = ?",
        [(r[1],) for r in rows if r[1] is not None],
    )
    return {**answer, "undone": 1, "undone_at": stamp, "n_undone": len(rows)}


def _seed_row(seed: Sequence, stamp: str) -> tuple:
    """A seed ``(cell, label[, annotator, answered_at])`` as the row it is stored as."""
    cell, label, *given = seed
    annotator, answered_at = (*given, None, None)[:2]
    return cell, label, answered_at or stamp, annotator
