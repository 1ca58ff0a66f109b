"""The SQL every writer of a session file shares, run on a connection inside one of the
store's transactions (:meth:`~scactive.app._store.SessionStore.transaction`).

What makes an answer current, the round new answers join, an answer row read as a dict, the
vocabulary growing by the labels answers bring, and the time stamps written: the store
(:mod:`._store`), the labels given to a selection (:mod:`._actions`), the cell-type hierarchy
(:mod:`._levels`) and the dot plot (:mod:`._dotplot`) read and write the same way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime

#: The keys of an answer: its row in ``answers``, and the provenance of its action (if any).
ANSWER_KEYS = (
    "id", "cell", "label", "kind", "round", "strategy", "origin", "answered_at", "supersedes",
    "superseded_by", "undone", "undone_at", "annotator", "action", "provenance",
)  # fmt: skip
#: The answers with the :data:`ANSWER_KEYS` (``a``: the answer, ``x``: its action); add the
#: ``WHERE`` and ``ORDER BY`` clauses, and read each row with :func:`answer_dict`.
SELECT_ANSWERS = (
    "SELECT "
    + ", ".join(f"a.{k}" for k in ANSWER_KEYS[:-1])
    + ", x.provenance FROM answers a LEFT JOIN actions x ON x.id = a.action"
)
#: An answer that is current: neither undone nor replaced.
ACTIVE = "undone = 0 AND superseded_by IS NULL"
#: The round new answers belong to: one past the last training round.
CURRENT_ROUND = "(SELECT COALESCE(MAX(round) + 1, 0) FROM rounds)"


def now() -> str:
    """The time in UTC, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def answer_dict(row: tuple) -> dict:
    """A row of :data:`SELECT_ANSWERS` as a dict keyed by :data:`ANSWER_KEYS`."""
    return dict(zip(ANSWER_KEYS, row, strict=True))


def insert_vocabulary(
    conn: sqlite3.Connection, entries: Iterable[tuple[str, str]], stamp: str
) -> list[str]:
    """Add ``(label, source)`` entries not in the vocabulary yet, in a transaction of
    ``conn``; returns the labels added."""
    added = []
    for label, source in entries:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO vocabulary (label, added_at, source) VALUES (?, ?, ?)",
            (label, stamp, source),
        )
        if cursor.rowcount:
            added.append(label)
    return added
