"""A session's cell-type levels: the hierarchy kept in the session file, grown by the one given
when a session is opened (a ``--hierarchy`` file, a marker file's ``parent`` column, or the
hierarchy an export carried), its types joining the vocabulary.

The tree lives in the session file's ``hierarchy`` table (``label``, ``parent``: NULL at the
top level, ``added_at``), in the order it was given. A hierarchy given again may add types and
give a top-level type a parent; one that gives a type another parent, or closes a cycle, is
refused and nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from .._errors import InputError
from .._hierarchy import Hierarchy, read_hierarchy
from ..io import read_small_table
from ._answers import insert_vocabulary, now
from ._labels import check_label
from ._store import SessionError, SessionStore

#: The vocabulary source of the types a hierarchy brings.
HIERARCHY_SOURCE = "hierarchy"


def stored_hierarchy(store: SessionStore) -> Hierarchy | None:
    """The session's hierarchy, or None when it has none."""
    pairs = store.hierarchy()
    return Hierarchy.from_pairs(pairs) if pairs else None


def store_hierarchy(store: SessionStore, given: Hierarchy) -> Hierarchy:
    """Merge ``given`` into the session's hierarchy, in one transaction with its types joining
    the vocabulary (source ``hierarchy``); returns the merged hierarchy."""
    given = check_hierarchy(given)
    stored = stored_hierarchy(store)
    merged = (
        given
        if stored is None
        else stored.merged(
            given,
            mine=f"hierarchy kept in the session file '{store.path}'",
            theirs="hierarchy given",
        )
    )
    before = {} if stored is None else stored.parent
    rows = [
        (label, merged.parent[label])
        for label in merged.labels
        if label not in before or before[label] != merged.parent[label]
    ]
    if rows:
        with store.transaction() as conn:
            stamp = now()
            conn.executemany(
                "INSERT INTO hierarchy (label, parent, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT (label) DO UPDATE SET parent = excluded.parent",
                [(label, parent, stamp) for label, parent in rows],
            )
            insert_vocabulary(conn, [(lb, HIERARCHY_SOURCE) for lb in merged.labels], stamp)
    return merged


def check_hierarchy(hierarchy: Hierarchy) -> Hierarchy:
    """``hierarchy`` with its types as labels are (:func:`~._labels.check_label`: trimmed,
    NFC), refusing (:class:`InputError`) a type no label may be."""
    return Hierarchy.from_pairs(
        (_checked(label), None if up is None else _checked(up))
        for label, up in hierarchy.parent.items()
    )


def _checked(label: str) -> str:
    """A type of a hierarchy as a label (NFC, trimmed), refusing what labels may not be."""
    try:
        return check_label(label, "type of the cell-type hierarchy")
    except SessionError as err:
        raise InputError(str(err)) from err


def read_levels(
    hierarchy: str | Path | None = None, markers: str | Path | None = None
) -> Hierarchy | None:
    """The hierarchy of a ``--hierarchy`` file (:func:`scactive._hierarchy.read_hierarchy`)
    and of a CSV/TSV marker file's ``parent`` column, merged; None when neither gives one."""
    found: list[tuple[Hierarchy, str]] = []
    if hierarchy is not None:
        found.append((read_hierarchy(hierarchy), f"hierarchy file '{hierarchy}'"))
    if markers is not None and Path(markers).suffix.lower() != ".json":
        table = read_small_table(markers, columns=("type",), what="marker file")
        if "parent" in table.columns:
            found.append((read_hierarchy(markers), f"marker file's parent column '{markers}'"))
    if not found:
        return None
    merged, mine = found[0]
    for other, theirs in found[1:]:
        merged = merged.merged(other, mine=mine, theirs=theirs)
    return merged
