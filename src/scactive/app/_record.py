"""What an export keeps of its session in ``uns['scactive']``, and reading it back.

The record holds the session's settings, its vocabulary (with each label's source), its
markers, every answer ever given (undone and superseded ones included) and its training
rounds. Every table is a dict of equal-length numpy arrays, one a column, which anndata
writes to h5ad and reads back as they were (and h5py or R's readers read as plain arrays):
a text column holds ``""`` where the session holds nothing, a whole-number column ``-1``, a
real one NaN. ``docs/annotate.md`` lists every key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import anndata as ad
import numpy as np

from .._hierarchy import Hierarchy
from .._meta import package_version
from ._answers import now
from ._export import RECORD_KEY
from ._store import SessionStore

#: The record's layout version (``settings['format']``).
RECORD_FORMAT = 1

_TEXT, _WHOLE, _REAL, _FLAG = "text", "whole", "real", "flag"

#: Columns of ``answers``, one row per answer ever given, oldest first.
ANSWER_COLUMNS = {
    "id": _WHOLE,
    "cell": _TEXT,
    "label": _TEXT,
    "kind": _TEXT,
    "annotator": _TEXT,
    "answered_at": _TEXT,
    "strategy": _TEXT,
    "round": _WHOLE,
    "origin": _TEXT,
    "supersedes": _WHOLE,
    "superseded_by": _WHOLE,
    "superseded": _FLAG,
    "undone": _FLAG,
    "undone_at": _TEXT,
    # the model on screen when the answer was given: the round trained before it
    "model": _TEXT,
    "model_round": _WHOLE,
    # the action (a selection labeled at once) the answer belongs to, and how it selected
    "action": _WHOLE,
    "provenance": _TEXT,
}
#: Columns of an answer log that exports made before actions existed lack.
_LATER_COLUMNS = ("action", "provenance")
#: Columns of ``rounds``, one row per training round (the session's ``rounds`` table).
ROUND_COLUMNS = {
    "round": _WHOLE,
    "model": _TEXT,
    "strategy": _TEXT,
    "started_at": _TEXT,
    "finished_at": _TEXT,
    "n_labeled": _WHOLE,
    "n_types": _WHOLE,
    "cv_accuracy": _REAL,
    "cv_folds": _WHOLE,
    "cv_model": _TEXT,
    "learner_seed": _WHOLE,
    "labels_sha256": _TEXT,
    "estimated_f1": _REAL,
    "agreement": _REAL,
    "stop": _WHOLE,
}
#: Columns of ``vocabulary``, in the order the labels were added.
VOCABULARY_COLUMNS = {"label": _TEXT, "source": _TEXT, "added_at": _TEXT}
#: Columns of ``markers``: one row per (type, gene).
MARKER_COLUMNS = {"type": _TEXT, "gene": _TEXT}
#: Columns of ``hierarchy``: each type of the cell-type tree and its parent (``""``: top level).
HIERARCHY_COLUMNS = {"type": _TEXT, "parent": _TEXT}


def session_record(
    store: SessionStore, *, model: str, cv_model: str, unknown_below: float | None = None
) -> dict:
    """The record of the session in ``store`` (``model``, ``cv_model``: its learners;
    ``unknown_below``: the threshold of the export's ``scactive_call``), as
    :func:`~scactive.app._export.write_h5ad` writes it into ``uns['scactive']``."""
    meta = store.meta()
    rounds = store.rounds()
    trained = {r["round"]: r for r in rounds}
    answers = []
    for answer in store.history():
        shown = trained.get(answer["round"] - 1)  # round r's answers came after round r-1
        answers.append(
            {
                **answer,
                "superseded": answer["superseded_by"] is not None,
                "model": None if shown is None else shown["model"],
                "model_round": None if shown is None else shown["round"],
            }
        )
    markers = [
        {"type": cell_type, "gene": gene}
        for cell_type, genes in store.markers().items()
        for gene in genes
    ]
    settings = {
        "format": RECORD_FORMAT,
        "scactive_version": package_version(),
        "schema_version": int(meta.get("schema_version", -1)),
        "model": model,
        "cv_model": cv_model,
        "strategy": meta.get("strategy") or meta.get("strategy_default", ""),
        "batch_size": int(meta.get("batch_size", -1)),
        "seed": int(meta.get("seed", -1)),
        "label_key": meta.get("label_key", ""),
        "unknown_below": float("nan") if unknown_below is None else float(unknown_below),
        "round": store.current_round(),
        "n_cells": int(meta.get("n_cells", -1)),
        "dataset_checksum": meta.get("dataset_checksum", ""),
        "session_file": str(store.path),
        "created": meta.get("created", ""),
        "exported_at": now(),
    }
    return {
        "settings": settings,
        "vocabulary": columns(store.vocabulary(), VOCABULARY_COLUMNS),
        "markers": columns(markers, MARKER_COLUMNS),
        "hierarchy": columns(
            [{"type": label, "parent": up} for label, up in store.hierarchy()], HIERARCHY_COLUMNS
        ),
        "answers": columns(answers, ANSWER_COLUMNS),
        "rounds": columns(rounds, ROUND_COLUMNS),
    }


def columns(rows: Iterable[Mapping], spec: Mapping[str, str]) -> dict[str, np.ndarray]:
    """``rows`` (mappings) as one numpy array per column of ``spec`` (name -> ``text``,
    ``whole``, ``real`` or ``flag``), a missing value as ``""``, ``-1`` or NaN."""
    rows = list(rows)
    return {name: _column([r.get(name) for r in rows], kind) for name, kind in spec.items()}


def _column(values: list, kind: str) -> np.ndarray:
    if kind == _TEXT:
        return np.array(["" if v is None else str(v) for v in values], dtype=object)
    if kind == _WHOLE:
        return np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)
    if kind == _REAL:
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array([bool(v) for v in values], dtype=bool)


def recorded_answers(adata: ad.AnnData) -> dict[str, np.ndarray] | None:
    """The answer log of the session ``adata`` was exported from (``uns['scactive']
    ['answers']``, as :func:`columns` wrote it), or None when it carries none."""
    record = adata.uns.get(RECORD_KEY)
    answers = record.get("answers") if isinstance(record, Mapping) else None
    needed = set(ANSWER_COLUMNS) - set(_LATER_COLUMNS)
    if not isinstance(answers, Mapping) or not needed <= set(answers):
        return None
    log = {name: np.asarray(answers[name]) for name in ANSWER_COLUMNS if name in answers}
    if len({len(column) for column in log.values()}) != 1:
        return None
    return log


def recorded_labels(adata: ad.AnnData) -> dict[str, dict]:
    """The current label answer of each cell in the answer log ``adata`` carries (neither
    undone nor superseded): cell -> label, annotator (``""``: not named) and answered_at."""
    log = recorded_answers(adata)
    if log is None:
        return {}
    current = (log["kind"] == "label") & ~log["undone"].astype(bool)
    current &= ~log["superseded"].astype(bool)
    return {
        str(log["cell"][i]): {
            "label": str(log["label"][i]),
            "annotator": str(log["annotator"][i]),
            "answered_at": str(log["answered_at"][i]),
        }
        for i in np.flatnonzero(current)
    }


def _recorded_rows(adata: ad.AnnData, name: str, spec: Mapping[str, str]) -> list[tuple]:
    """The rows of the record's table ``name`` (the columns of ``spec``, as text), none when
    ``adata`` carries no such table or it is malformed."""
    record = adata.uns.get(RECORD_KEY)
    table = record.get(name) if isinstance(record, Mapping) else None
    if not isinstance(table, Mapping) or not set(spec) <= set(table):
        return []
    values = [[_text(v) for v in np.atleast_1d(table[column]).tolist()] for column in spec]
    if len({len(column) for column in values}) != 1:
        return []
    return list(zip(*values, strict=True))


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def recorded_hierarchy(adata: ad.AnnData) -> Hierarchy | None:
    """The cell-type hierarchy of the session ``adata`` was exported from (``uns['scactive']
    ['hierarchy']``), or None when it carries none."""
    rows = _recorded_rows(adata, "hierarchy", HIERARCHY_COLUMNS)
    return Hierarchy.from_pairs(rows) if rows else None


def recorded_vocabulary(adata: ad.AnnData) -> list[tuple[str, str]]:
    """The vocabulary of the session ``adata`` was exported from, in its order: ``(label,
    source)``, the labels no cell holds included."""
    return [(label, source or "user") for label, source, _ in
            _recorded_rows(adata, "vocabulary", VOCABULARY_COLUMNS) if label]  # fmt: skip


def recorded_markers(adata: ad.AnnData) -> dict[str, list[str]]:
    """The marker genes of the session ``adata`` was exported from: type -> genes."""
    markers: dict[str, list[str]] = {}
    for cell_type, gene in _recorded_rows(adata, "markers", MARKER_COLUMNS):
        markers.setdefault(cell_type, []).append(gene)
    return markers


def remember_settings(path: str | Path, *, strategy: str, batch_size: int) -> None:
    """Record in the session file the strategy and batch size it is being asked with (the
    page's, or ``scactive query``'s), which the next export's settings report."""
    store = SessionStore(path)
    try:
        meta = store.meta()
        if (meta.get("strategy"), meta.get("batch_size")) != (strategy, str(batch_size)):
            store.set_meta(strategy=strategy, batch_size=batch_size)
    finally:
        store.close()
