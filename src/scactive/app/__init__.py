"""The human-in-the-loop annotation service: a session engine over a durable SQLite store.

>>> from scactive.app import open_session
>>> session = open_session(adata, "pbmc.scactive", markers={"B cell": ["CD79A", "MS4A1"]})
>>> cells = session.next_batch(20)               # spread across clusters at first
>>> session.answer(cells[0], "B cell")           # committed before it returns
>>> session.train()                               # in a background thread if you like
>>> session.export("annotated.h5ad", "labels.csv", "model.safetensors")
"""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    attributes={
        "._labels": ("KINDS", "MAX_LABEL_LENGTH", "check_label", "read_markers"),
        "._export": ("EXPORT_COLUMNS",),
        "._open": ("open_session",),
        "._prepare": ("dataset_checksum",),
        "._session": ("COLD_START", "Session"),
        "._sqlite": ("SCHEMA_VERSION",),
        "._store": ("SessionError", "SessionStore", "UnknownCellError"),
    },
)
