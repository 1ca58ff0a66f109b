"""Marker evidence as a dot plot, scanpy's ``sc.pl.dotplot`` convention: for each group of
cells and each gene, the mean log-normalised expression (the dot's colour) and the fraction of
cells expressing it above 0 (the dot's size); with the selected cell's own values beside its
group's.

Groups are the session's types once :data:`~scactive.loop.COLD_START_TYPES` types are labeled
(a cell belongs to its label, else to the model's call), else the map's Leiden clusters.
Genes are the session's markers and the genes most over-expressed in the cell's
neighbourhood (:meth:`~._evidence.Evidence.top_genes`). Everything is computed from the
columns of those genes in the sparse log-normalised matrix (never a dense copy of it), the
group sums as one product with a sparse indicator matrix (groups x cells).
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..loop import COLD_START_TYPES
from ._answers import ACTIVE
from ._evidence import TOP_GENES

#: Genes a dot plot shows at most (the markers first, then the neighbourhood's top genes).
MAX_GENES = 40


def gene_columns(evidence, position: int) -> tuple[list[int], list[str]]:
    """The dot plot's columns of the log-normalised matrix, each once, and where each comes
    from (``marker`` or ``neighbourhood``): the markers first, at most :data:`MAX_GENES`."""
    sources: dict[int, str] = {}
    for j in evidence.marker_columns():
        sources.setdefault(j, "marker")
    for j in evidence.top_genes(position, TOP_GENES):
        sources.setdefault(j, "neighbourhood")
    chosen = list(sources.items())[:MAX_GENES]
    return [j for j, _ in chosen], [s for _, s in chosen]


def current_answers(session) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell's current answer as three arrays: its map position, label (None: not a
    label) and kind.

    One query of those three columns of the session file: ``session.labels()`` builds a
    dict and a data-frame row per answer, 0.13 s a request at 15,000 answers (bulk labels
    make that many in a few actions), where this takes a few milliseconds.
    """
    store = session._store
    with store._read() as conn:  # the store's own read transaction and lock
        rows = conn.execute(f"SELECT cell, label, kind FROM answers WHERE {ACTIVE}").fetchall()
    if not rows:
        empty = np.array([], dtype=object)
        return np.array([], dtype=np.int64), empty, empty
    cells, labels, kinds = (np.array(column, dtype=object) for column in zip(*rows, strict=True))
    return session.cells.get_indexer(cells), labels, kinds


def cell_groups(session) -> tuple[str, list[str], np.ndarray]:
    """What the rows are (``types`` or ``clusters``), their names, and every cell's row
    (-1: in none).

    With labels of at least :data:`~scactive.loop.COLD_START_TYPES` types, the types of the
    vocabulary that hold a cell: a labeled cell in its label's row, another cell in the row
    of the model's call (when there is a model; a cell answered unsure, doublet or skip in
    none). Else the Leiden clusters of the map (computed first if need be).
    """
    where, labels, kinds = current_answers(session)
    is_label = kinds == "label"
    if len(set(labels[is_label].tolist())) < COLD_START_TYPES:
        clusters = session.map.clusters()
        n = int(clusters.max(initial=-1)) + 1
        return "clusters", [str(k) for k in range(n)], np.asarray(clusters, dtype=np.int64)
    names = [v["label"] for v in session._store.vocabulary()]
    code = pd.Index(names, dtype=object)
    rows = np.full(len(session.cells), -1, dtype=np.int64)
    predictions = session.predictions()
    if len(predictions):
        rows[:] = code.get_indexer(predictions["predicted"].to_numpy(dtype=object))
    rows[where] = np.where(is_label, code.get_indexer(labels), -1)
    kept = np.flatnonzero(np.bincount(rows[rows >= 0], minlength=len(names)))
    renumber = np.full(len(names) + 1, -1, dtype=np.int64)
    renumber[kept] = np.arange(len(kept))
    return "types", [names[k] for k in kept], renumber[rows]  # -1 stays -1 (the last entry)


def group_statistics(
    X, columns: list[int], rows: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: its cell count, and per gene of ``columns`` the mean of ``X`` and the
    fraction of cells above 0 (groups x genes); ``rows`` gives each cell's group (-1: none).

    ``X`` is read only at ``columns`` (a column slice; sparse stays sparse); the sums are one
    product with a sparse (groups x cells) indicator matrix.
    """
    inside = np.flatnonzero(rows >= 0)
    indicator = sp.csr_matrix(
        (np.ones(len(inside)), (rows[inside], inside)), shape=(n_groups, X.shape[0])
    )
    block = X[:, columns]
    block = block.tocsr() if sp.issparse(block) else sp.csr_matrix(np.asarray(block))
    counts = np.asarray(indicator.sum(axis=1)).ravel()
    sums = np.asarray((indicator @ block).todense())
    expressing = np.asarray((indicator @ (block > 0).astype(np.float64)).todense())
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts[:, None]
        fraction = expressing / counts[:, None]
    return counts.astype(np.int64), mean, fraction


def answers_version(session) -> tuple[int, float, int]:
    """What changes whenever a cell's current answer or the vocabulary does: the last
    answer's id (every answer is a new row), how many answers are undone (an undo changes
    no id) and the vocabulary's size (it only grows). One read of the session file, so
    answers given by another process (``scactive teach``) count too."""
    with session._store._read() as conn:
        (version,) = conn.execute(
            "SELECT COALESCE(MAX(id), 0), TOTAL(undone), "
            "(SELECT COUNT(*) FROM vocabulary) FROM answers"
        ).fetchall()
    return version


class DotPlots:
    """The dot plots of one session, keeping the rows (:func:`cell_groups`) while the
    answers, the vocabulary and the model are those they were computed from.

    Each cell's dot plot differs only in its genes; its rows are every cell's group, which
    takes reading every current answer and the model's calls (0.2 s at 30,000 cells and
    20,000 answers on 2 cores), and which changes only with an answer or a new model.
    """

    def __init__(self, session) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._kept: tuple | None = None  # (version, learner, proba, groups)

    def groups(self) -> tuple[str, list[str], np.ndarray]:
        """:func:`cell_groups` of the session, computed again only when it may differ."""
        # taken before the groups: an answer given meanwhile makes the next request recompute
        version = answers_version(self._session)
        learner, proba = self._session._model.current()
        with self._lock:
            kept = self._kept
        if kept is not None and kept[0] == version and kept[1] is learner and kept[2] is proba:
            return kept[3]
        groups = cell_groups(self._session)
        with self._lock:
            self._kept = (version, learner, proba, groups)  # held: the model's identity
        return groups

    def plot(self, position: int) -> dict:
        """:func:`dot_plot` of the cell at ``position``, with the kept rows."""
        return dot_plot(self._session, position, groups=self.groups())


def dot_plot(session, position: int, *, groups: tuple | None = None) -> dict:
    """The dot plot around the cell at ``position`` (a map position), JSON-ready:

    ``genes`` (symbols) with ``gene_sources`` (``marker`` or ``neighbourhood``), ``grouping``
    (``types`` or ``clusters``), ``groups`` (``name`` and ``n_cells``), ``mean`` and
    ``fraction`` (groups x genes), ``cell`` (its name, ``position``, ``values``: its own log
    expression of each gene, ``group``: its row, None when in none) and ``max_mean``.
    ``groups``: :func:`cell_groups` of the session, when known (:class:`DotPlots`).
    """
    evidence = session._evidence  # the session's own, with the genes' statistics computed
    columns, sources = gene_columns(evidence, position)
    grouping, names, rows = cell_groups(session) if groups is None else groups
    X = session._data.log.X  # the session's log-normalised matrix (read at columns only)
    counts, mean, fraction = group_statistics(X, columns, rows, len(names))
    own = X[position, columns]
    values = np.asarray(own.todense() if sp.issparse(own) else own, dtype=np.float64).ravel()
    group = int(rows[position])
    return {
        "genes": [str(evidence.symbols[j]) for j in columns],
        "gene_sources": sources,
        "grouping": grouping,
        "groups": [{"name": n, "n_cells": int(c)} for n, c in zip(names, counts, strict=True)],
        "mean": mean.tolist(),
        "fraction": fraction.tolist(),
        "cell": {
            "cell": str(session.cells[position]),
            "position": position,
            "values": values.tolist(),
            "group": None if group < 0 else group,
        },
        "max_mean": float(np.nanmax(mean, initial=0.0)) if mean.size else 0.0,
    }


def model_needs(session, pending: int, training: bool) -> dict:
    """Why the predictions are empty, by the rule that starts training: the server trains
    when the batch has no cell left to answer and labels of at least
    :data:`~scactive.loop.COLD_START_TYPES` types exist (fewer: the cold start picks and no
    model is trained). ``pending``: cells of the batch still unanswered; ``training``: a
    training is running. Also why the nearest labeled cells are empty (no labeled cell)."""
    status = session.status()
    types = status["labels_per_type"]
    n_labeled, n_types = status["n_labeled"], len(types)
    trained = status["trained_round"] is not None
    if trained:
        model = None
    elif training and n_types >= COLD_START_TYPES:
        model = "No model yet: the first model is training."
    elif n_types < COLD_START_TYPES:
        model = (
            f"No model yet: label cells of at least {COLD_START_TYPES} types to train the "
            f"first model (now {n_labeled} labeled cell{'s' * (n_labeled != 1)} of "
            f"{n_types} type{'s' * (n_types != 1)}); it trains when the batch is done."
        )
    elif not pending:
        model = f"No model yet: press New batch to train it on the {n_labeled} labels."
    else:
        model = (
            f"No model yet: it trains on the {n_labeled} labels of {n_types} types once the "
            f"{pending} cell{'s' * (pending != 1)} left in this batch "
            f"{'are' if pending != 1 else 'is'} answered (or on New batch)."
        )
    neighbours = (
        None
        if n_labeled
        else "No labeled cells yet: the nearest ones appear once cells are labeled."
    )
    return {
        "trained": trained,
        "min_types": COLD_START_TYPES,
        "n_labeled": n_labeled,
        "n_types": n_types,
        "pending": pending,
        "predictions": model,
        "neighbours": neighbours,
    }
