"""Opening a session file: the SQLite schema, the checks that refuse foreign, newer, damaged
or read-only files, and SQLite's errors turned into messages that name the file."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .._errors import DiskFull, InputError, disk_full, is_disk_full

#: Version of the tables below; a file with a higher one is refused, a lower one migrated.
SCHEMA_VERSION = 5
#: ``PRAGMA application_id`` of a session file ("scAc"): tells it from other SQLite files.
APPLICATION_ID = 0x73634163
#: What a person can answer about a cell.
KINDS = ("label", "unsure", "doublet", "skip")
#: Where a vocabulary entry came from (``hierarchy``: a type the cell-type tree names).
SOURCES = ("seed", "markers", "user", "hierarchy")
#: Seconds a connection waits for another one's write lock before giving up.
BUSY_TIMEOUT = 30.0
#: Files SQLite keeps beside a session file while it is open.
SIDE_FILES = ("-wal", "-shm", "-journal")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vocabulary (
    label TEXT PRIMARY KEY,
    added_at TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('seed', 'markers', 'user', 'hierarchy'))
);
CREATE TABLE IF NOT EXISTS markers (
    type TEXT NOT NULL,
    gene TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (type, gene)
);
CREATE TABLE IF NOT EXISTS answers (
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
    annotator TEXT,
    action INTEGER REFERENCES actions (id),
    CHECK ((kind = 'label') = (label IS NOT NULL))
);
-- one action of a person over many cells (a selection labeled at once), named by its answers
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('bulk')),
    provenance TEXT NOT NULL,
    label TEXT NOT NULL,
    n_cells INTEGER NOT NULL,
    annotator TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_action ON answers (action) WHERE action IS NOT NULL;
-- at most one active answer per cell, enforced by the database itself
CREATE UNIQUE INDEX IF NOT EXISTS answers_active_cell
    ON answers (cell) WHERE undone = 0 AND superseded_by IS NULL;
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    strategy TEXT,
    model TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    n_labeled INTEGER NOT NULL,
    n_types INTEGER NOT NULL,
    cv_accuracy REAL,
    cv_folds INTEGER,
    cv_model TEXT,
    learner_seed INTEGER NOT NULL,
    labels_sha256 TEXT NOT NULL,
    estimated_f1 REAL,
    agreement REAL,
    stop INTEGER
);
-- the cell-type tree: each type's parent (NULL: a top-level type), in the order given
CREATE TABLE IF NOT EXISTS hierarchy (
    label TEXT PRIMARY KEY,
    parent TEXT,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    name TEXT PRIMARY KEY,
    n_cells INTEGER NOT NULL,
    n_dims INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""


@contextmanager
def database_errors(path: Path) -> Iterator[None]:
    """Turn SQLite's errors on a full disk, a damaged or a read-only file into a message
    naming the file."""
    try:
        yield
    except sqlite3.DatabaseError as err:
        text = str(err)
        if is_disk_full(err, path):
            raise full_disk(path, err) from err
        if "readonly" in text or "read-only" in text:
            raise InputError(_read_only(path)) from err
        if isinstance(err, sqlite3.OperationalError) and "locked" in text:
            raise InputError(
                f"The session file '{path}' stayed locked by another program for "
                f"{BUSY_TIMEOUT:.0f} s; try again when it is done."
            ) from err
        raise InputError(_damaged(path, text)) from err


def full_disk(path: Path, err: BaseException, *, new: bool = False) -> InputError:
    """The message of a session file whose disk is full: a change not saved, no damage
    (``new``: the session was being created, and no file of it is left)."""
    if new:
        return disk_full(
            path, err, what="the new session file ", unsaved="the session was not created "
            "(no file of it is left)",
        )  # fmt: skip
    return disk_full(
        path,
        err,
        what="the session file ",
        unsaved="the last change was not saved (SQLite rolled it back; give it again once "
        "there is room)",
        kept="the file keeps every answer saved before it, and all of them open again",
    )


def remove_stub(path: Path) -> bool:
    """Remove a session file that holds no session yet (a new one whose creation failed),
    with SQLite's files beside it; one holding a session is kept. Returns whether it was
    removed."""
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            if conn.execute("SELECT 1 FROM meta WHERE key = 'dataset_checksum'").fetchone():
                return False
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # no tables, or no file: nothing of a session
    for name in ("", *SIDE_FILES):
        with suppress(OSError):
            path.with_name(path.name + name).unlink()
    return True


def _read_only(path: Path) -> str:
    return (
        f"The session file '{path}' cannot be written: the file or its folder "
        f"'{path.parent}' is read-only (SQLite writes the answers and a journal beside the "
        "file). Make both writable (chmod u+w), or copy the file into a folder you can write "
        "to and open the copy."
    )


def _damaged(path: Path, detail: str) -> str:
    return (
        f"The session file '{path}' is damaged (SQLite: {detail}). It was left untouched. "
        f"Keep a copy; `sqlite3 '{path}' .recover` may rescue the answers into a new file."
    )


def connect(path: Path) -> sqlite3.Connection:
    """Open (or create) a session file, refusing files that are not scactive sessions; a
    file made here whose creation fails is removed (:func:`forget_new`)."""
    new = not os.path.lexists(path)
    try:
        with database_errors(path):
            return _open_checked(path)
    except BaseException as err:
        if new:
            forget_new(path, err)
        raise


def forget_new(path: Path, err: BaseException) -> None:
    """After ``err`` stopped the creation of a new session at ``path``: remove what holds no
    session yet (:func:`remove_stub`), so no stub trips the next run, and say of a full disk
    that no file is left."""
    if remove_stub(path) and isinstance(err, DiskFull):
        raise full_disk(path, err, new=True) from err


def _open_checked(path: Path) -> sqlite3.Connection:
    if path.is_dir():
        raise InputError(
            f"The session path '{path}' is a folder; give a file name, e.g. "
            f"'{path / 'session.scactive'}'."
        )
    if path.exists() and not (
        os.access(path, os.R_OK | os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
    ):
        raise InputError(_read_only(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.OperationalError) as err:
        if is_disk_full(err, path):
            raise full_disk(path, err) from err
        raise InputError(
            f"Cannot open or create the session file '{path}': {err}. Check that its folder "
            "exists and is writable."
        ) from err
    try:
        # read-only checks first: nothing is written into a file that is not ours
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        n_tables = conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
        ).fetchone()[0]
    except sqlite3.DatabaseError as err:
        conn.close()
        if is_disk_full(err, path):
            raise full_disk(path, err) from err
        raise InputError(
            f"'{path}' is not a scactive session file (SQLite: {err}). It was left untouched; "
            "choose another --session file name to start a new session."
        ) from err
    if application_id != APPLICATION_ID and (application_id != 0 or n_tables):
        conn.close()
        raise InputError(
            f"'{path}' is an SQLite database but not a scactive session file. It was left "
            "untouched; choose another --session file name to start a new session."
        )
    if application_id == APPLICATION_ID:
        try:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)").fetchall()]
        except sqlite3.DatabaseError as err:
            if is_disk_full(err, path):
                conn.close()
                raise full_disk(path, err) from err
            problems = [str(err)]
        if problems != ["ok"]:
            conn.close()
            raise InputError(_damaged(path, "; ".join(problems)))
    if version > SCHEMA_VERSION:
        conn.close()
        raise InputError(
            f"The session file '{path}' was written by a newer scactive (session schema "
            f"{version}; this version reads up to {SCHEMA_VERSION}). Upgrade scactive "
            "(pip install -U scactive) to continue this session."
        )
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = OFF")  # superseded_by = -1 is a transient placeholder
    if application_id == 0:
        with _schema_change(conn):
            _create_missing(conn)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    elif version < SCHEMA_VERSION:
        with _schema_change(conn):
            _migrate(conn)
    return conn


@contextmanager
def _schema_change(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction that ends by stamping :data:`SCHEMA_VERSION`; on failure it is
    rolled back and the connection closed."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
    except BaseException:
        conn.execute("ROLLBACK")
        conn.close()
        raise
    conn.execute("COMMIT")


#: Columns added since schema 1, by the version that added them: (table, column, type).
_ADDED = {
    2: [
        ("rounds", "estimated_f1", "REAL"),
        ("rounds", "agreement", "REAL"),
        ("rounds", "stop", "INTEGER"),
    ],
    3: [("answers", "annotator", "TEXT")],  # who answered (NULL: not named)
    # the action an answer belongs to (NULL: a single answer); the actions table is new
    4: [("answers", "action", "INTEGER REFERENCES actions (id)")],
    5: [],  # the hierarchy table is new, and the vocabulary's source may be 'hierarchy'
}


def _migrate(conn: sqlite3.Connection) -> None:
    """Add what an older session file lacks (its answers untouched): the columns of
    :data:`_ADDED`, then the tables and indexes added since (the schema's statements create
    only what is missing)."""
    # read again under the write lock: another process may have migrated meanwhile
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for added_in, columns in sorted(_ADDED.items()):
        if version < added_in:
            for table, column, kind in columns:
                present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:  # one already there (a file edited by hand) stays
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    if version < 5:
        _widen_vocabulary_sources(conn)
    _create_missing(conn)


def _widen_vocabulary_sources(conn: sqlite3.Connection) -> None:
    """Rebuild the vocabulary table under the schema's CHECK of its ``source`` (the labels,
    their order and their sources kept): SQLite cannot change a CHECK in place."""
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'vocabulary'"
    ).fetchone()
    if "'hierarchy'" in sql:
        return
    conn.execute("ALTER TABLE vocabulary RENAME TO vocabulary_before_5")
    _create_missing(conn)
    conn.execute(
        "INSERT INTO vocabulary (rowid, label, added_at, source) "
        "SELECT rowid, label, added_at, source FROM vocabulary_before_5 ORDER BY rowid"
    )
    conn.execute("DROP TABLE vocabulary_before_5")


def _create_missing(conn: sqlite3.Connection) -> None:
    # statement by statement: executescript() would commit the transaction
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
