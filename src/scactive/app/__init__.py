"""The human-in-the-loop annotation service: a session engine over a durable SQLite store.

>>> from scactive.app import open_session
>>> session = open_session(adata, "pbmc.scactive", markers={"B cell": ["CD79A", "MS4A1"]})
>>> cells = session.next_batch(20)               # spread across clusters at first
>>> session.answer(cells[0], "B cell")           # committed before it returns
>>> session.train()                               # in a background thread if you like
>>> session.export("annotated.h5ad", "labels.csv", "model.joblib")
"""

from ._labels import MAX_LABEL_LENGTH, check_label, read_markers
from ._session import (
    COLD_START,
    EXPORT_COLUMNS,
    Session,
    dataset_checksum,
    open_session,
)
from ._sqlite import SCHEMA_VERSION
from ._store import KINDS, SessionError, SessionStore, UnknownCellError

__all__ = [
    "COLD_START",
    "EXPORT_COLUMNS",
    "KINDS",
    "MAX_LABEL_LENGTH",
    "SCHEMA_VERSION",
    "Session",
    "SessionError",
    "SessionStore",
    "UnknownCellError",
    "check_label",
    "dataset_checksum",
    "open_session",
    "read_markers",
]
