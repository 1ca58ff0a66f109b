"""An annotation session: the store of answers, the engine, the evidence and the exports.

A :class:`Session` joins the data (prepared once: normalised, features, PCA, UMAP; see
:mod:`._prepare`), the store of answers (:class:`~scactive.app._store.SessionStore`), and the
active-learning engine (:class:`scactive.loop.Engine`) that a simulation drives too: here the
oracle is a person whose answers arrive through the store (:class:`scactive.loop.StoreOracle`).
Answers go to the store at once; the model is retrained on request (:meth:`Session.train`),
which may run in a background thread while answers keep arriving from another.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .._checks import check_batch_size
from .._errors import InputError
from .._files import written_together
from ..loop import Engine, StoreOracle
from ..models import TrainedModel, make_learner, save_model
from ..strategies import ColdStart, cold_start, get_strategy
from ._estimate import default_unknown_below
from ._evidence import Evidence
from ._export import (
    Exported,
    check_export_targets,
    export_paths,
    export_table,
    protected_paths,
    write_csv,
    write_h5ad,
)
from ._labels import answer_row, check_answers, refuse_problems
from ._model import SessionModel, Snapshot, round_summary, stopping_summary
from ._prepare import PreparedCells, recorded_source
from ._record import session_record
from ._store import SessionError, SessionStore, UnknownCellError
from ._workbench import MapTools

__all__ = ["COLD_START", "CV_MODEL", "Session"]

logger = logging.getLogger("scactive")

#: The strategy name of cold-start picks (spread across clusters, no model needed).
COLD_START = ColdStart.name
#: The learner whose stratified cross-validation estimates the accuracy (cheap: ~30 ms a fold).
CV_MODEL = "logreg-pca"


class Session:
    """An annotation session: the data, its store of answers and the current model.

    Built by :func:`open_session`. Every method may be called from any thread: answers go
    straight to the store, and training fits a new learner outside the model lock, which it
    takes only to swap the learner in.
    """

    def __init__(
        self,
        store: SessionStore,
        adata: ad.AnnData,
        prepared: PreparedCells,
        umap: np.ndarray,
        *,
        model: str,
        seed: int,
        cv_model: str | None,
    ) -> None:
        self._store = store
        self._adata = adata
        self._data = prepared
        self._umap = umap
        self.seed = seed
        self.unknown_below = default_unknown_below()  # below it exports call "unknown"
        self.cells = pd.Index(prepared.log.obs_names)
        self._position = {cell: i for i, cell in enumerate(self.cells)}
        self._oracle = StoreOracle(store.active_answers, self.cells)
        self._engine = Engine(
            prepared.X,
            lambda seed: make_learner(
                self._model.model, prepared.features, rng=seed, given=prepared.input
            ),
            embedding=prepared.pca,
            # by the markers when the session has some, else the typical cells of clusters
            cold_start=cold_start(
                prepared.log.X,
                Evidence(prepared, umap, self.cells).resolve_markers(store.markers()),
            ),
        )
        self._model = SessionModel(
            store, self._engine, prepared, model=model, cv_model=cv_model or model, seed=seed
        )
        self._evidence = Evidence(prepared, umap, self.cells)
        self._evidence.use_markers(store.markers())
        self.map = MapTools(store, adata, prepared, self.cells, seed)  # genes, clusters, selections
        self._proposed_lock = threading.Lock()
        self._proposed: dict[str, str] = {}

    @property
    def model(self) -> str:
        """The learner preset of the session."""
        return self._model.model

    @property
    def cv_model(self) -> str:
        """The learner of the cross-validated accuracy estimate."""
        return self._model.cv_model

    def __repr__(self) -> str:
        return f"Session('{self._store.path}', {len(self.cells)} cells, model={self.model!r})"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the store (every answer is committed already)."""
        self._store.close()

    @property
    def path(self) -> Path:
        return self._store.path

    # -- asking ---------------------------------------------------------------------------
    def next_batch(self, n: int = 20, strategy: str = "entropy") -> list[str]:
        """The next ``n`` cells to ask about (fewer when fewer are left), never answered ones.

        With labels of fewer than two types, the cold start picks: the cells scoring highest
        for each type's markers when the session has markers, else the most typical cell of
        each k-means cluster of the PCA (:mod:`scactive.strategies._cold`). Otherwise
        ``strategy`` runs over the current model (trained first if there is none; call
        :meth:`train` to refresh a stale one).
        """
        try:
            chooser = get_strategy(strategy)
        except InputError as err:
            raise SessionError(str(err)) from err
        n = check_batch_size(n, name="n", error=SessionError)
        snap = self._snapshot()
        k = min(int(n), snap.state.n_unlabeled)
        if k == 0:
            return []
        rng = np.random.default_rng([self.seed, len(snap.answers), self._store.current_round()])
        if snap.n_types >= 2 and self._model.learner is None:
            self.ensure_trained()
        with self._model.lock:  # inference toggles the network's train/eval mode
            learner = self._model.learner
            picks, used = self._engine.query(learner, snap.state, chooser, k, rng)
        name = COLD_START if isinstance(used, ColdStart) else strategy
        cells = [str(c) for c in self.cells[picks]]
        with self._proposed_lock:
            self._proposed.update(dict.fromkeys(cells, name))
        return cells

    # -- answering ------------------------------------------------------------------------
    def answer(
        self,
        cell: str,
        label: str | None = None,
        kind: str = "label",
        strategy: str | None = None,
        annotator: str | None = None,
    ) -> int:
        """Record an answer, committed before this returns; returns its id.

        ``kind`` is ``label`` (with ``label``, which joins the vocabulary if new), ``unsure``,
        ``doublet`` or ``skip`` (without a label). Answering an answered cell relabels it.
        ``strategy`` defaults to the one that proposed the cell; ``annotator``: who answered.
        """
        return self.answer_many([(cell, label, kind, strategy, annotator)])[0]

    def answer_many(self, rows: Iterable) -> list[int]:
        """Record many answers in one transaction: all of them, or none when any is bad.

        Each row is ``(cell, label[, kind[, strategy[, annotator]]])`` or a mapping.
        """
        rows = [answer_row(r) for r in rows]
        checked, problems = check_answers(rows, self._position, self._proposed_by)
        refuse_problems(problems, len(rows))
        ids, added = self._store.add_answers(checked)
        if added:
            logger.info("new cell types in the vocabulary: %s", ", ".join(map(repr, added)))
        return ids

    def validate_answers(self, rows: Iterable) -> list[tuple[int, SessionError]]:
        """The problems of answer rows (position, error) without recording anything."""
        rows = [answer_row(r) for r in rows]
        return check_answers(rows, self._position, self._proposed_by)[1]

    def _proposed_by(self, cell: str) -> str:
        """The strategy that proposed ``cell`` (``user`` for a cell no batch held)."""
        with self._proposed_lock:
            return self._proposed.get(cell, "user")

    def undo(self, answer_id: int | None = None) -> dict | None:
        """Undo an answer; the undo of a relabel restores the previous label.

        Without ``answer_id``, the latest answer given in the session (by anyone: with several
        annotators on one file, pass the id :meth:`answer` returned to undo one's own). Returns
        the undone answer, or None when nothing is left to undo. Seed labels from the data are
        not undone without their id; relabel them instead.
        """
        return self._store.undo(answer_id)

    def labels(self) -> pd.DataFrame:
        """The current answer of every answered cell: cell, label, kind, round, strategy,
        answered_at (label is None for unsure, doublet and skip answers)."""
        columns = ["cell", "label", "kind", "round", "strategy", "answered_at"]
        return pd.DataFrame(self._store.active_answers(), columns=[*columns, "id"])[columns]

    def history(self) -> pd.DataFrame:
        """Every answer ever given, with ids, supersession and undo marks."""
        return pd.DataFrame(self._store.history())

    def _snapshot(self) -> Snapshot:
        answers = self._oracle.answers()
        return Snapshot(answers, self._oracle.state(answers))

    def _pos(self, cell: str) -> int:
        if not isinstance(cell, str) or cell not in self._position:
            raise UnknownCellError(f"Unknown cell {cell!r}: not one of the data's cells.")
        return self._position[cell]

    # -- the model ------------------------------------------------------------------------
    def train(self, progress_callback: Callable[[str, float], None] | None = None) -> dict:
        """Retrain the learner on every current label and record a new round.

        ``progress_callback(step, fraction)`` is called as the work proceeds. Returns the
        round, label counts, the cross-validated accuracy estimate (None when a type has a
        single cell) and the seconds taken. Needs labels of at least two types.
        """
        return self._model.train(self._snapshot, progress_callback)

    def ensure_trained(self) -> dict | None:
        """Train if the model is missing or older than the labels, and labels allow it.

        When the last recorded round used exactly the current labels (a reopened session),
        its learner is rebuilt without recording a new round. Returns what :meth:`train`
        returns, or None when nothing was done.
        """
        return self._model.ensure_trained(self._snapshot)

    @property
    def stale(self) -> bool:
        """Whether the labels changed since the model was trained (or there is no model)."""
        return self._model.trained_sha != self._snapshot().sha

    def predictions(self) -> pd.DataFrame:
        """The model's call for every cell: cell, predicted, confidence (empty untrained)."""
        return self._model.predictions(self.cells)

    def trained_model(self) -> TrainedModel | None:
        """The current learner with its feature space (None before any training)."""
        return self._model.trained_model()

    # -- evidence -------------------------------------------------------------------------
    def cell_evidence(self, cell: str) -> dict:
        """What speaks for a cell's type: for a person deciding its label.

        Returns a JSON-ready dict: ``umap`` and ``pca`` coordinates; ``answer`` (its current
        answer or None); ``top_genes``, the 10 most distinctive genes; ``markers``, type -> the
        marker genes; ``predictions``, the model's top 3 types with probabilities (empty
        untrained); ``neighbours``, the 5 nearest labeled cells in PCA space with labels and
        distances.

        Each gene comes with the cell's log expression, ``z`` (that value's z-score against
        the gene's mean and sd over all cells; None for a gene without variation) and
        ``z_neighbourhood`` (the same for the mean of the cell and its ``SMOOTH_K - 1``
        nearest cells in PCA). Top genes are ranked by ``z_neighbourhood`` among the feature
        genes detected in >= 1% of cells (and >= 10): ranked on the cell's own sparse counts,
        single counts of rare genes win; ranked on its neighbourhood, the known markers do
        (on pbmc3k: CD79A, MS4A1 for B cells; S100A8/9, LYZ for monocytes; PF4, PPBP for
        platelets).
        """
        pos = self._pos(cell)
        snap = self._snapshot()
        learner, proba = self._model.current()
        return self._evidence.for_cell(pos, snap.answers, snap.state, learner, proba)

    def embedding(self) -> pd.DataFrame:
        """The cached UMAP of every cell: cell, umap1, umap2."""
        return pd.DataFrame(
            {
                "cell": np.asarray(self.cells, dtype=object),
                "umap1": self._umap[:, 0],
                "umap2": self._umap[:, 1],
            }
        )

    # -- export and status ----------------------------------------------------------------
    def export_paths(self, *, overwrite: bool = False) -> dict[str, Path]:
        """The app's export files in ``<session file>.export/`` (``h5ad``, ``csv``, ``model``):
        numbered names when an export is there already, unless ``overwrite``."""
        return export_paths(self.path, overwrite=overwrite)

    def protected_paths(self) -> list[tuple[Path, str]]:
        """The files an export may not replace: the session's and the input data's."""
        return protected_paths(self.path, recorded_source(self._store.meta())[0])

    def export(
        self,
        path_h5ad: str | Path | None = None,
        path_csv: str | Path | None = None,
        path_model: str | Path | None = None,
    ) -> Exported:
        """Write the answers and the model's calls: every file, or (one failing) none.

        A target that is the session file (or its SQLite files), the input data or another
        target of this export is refused (:class:`InputError`) before anything is written.

        ``path_h5ad``: the input AnnData (all cells, its own ``X``) with the ``obs`` columns
        of ``EXPORT_COLUMNS``, the session's UMAP in ``obsm['X_umap']`` (the input's kept as
        ``obsm['X_umap_input']``) and the session's record in ``uns['scactive']`` (settings,
        vocabulary, markers, every answer, rounds). ``path_csv``: the same columns, one row
        per cell. ``path_model``: the current learner (:func:`scactive.models.load_model`
        reads it; trained first if needed). Predicted columns are empty before any training.

        The files hold one state of the session: the answers, their log and the rounds are
        read in one snapshot of the store, whatever answers arrive meanwhile. Returns the
        paths written (``kind -> path``), with the labeled cells they hold by type
        (:class:`~scactive.app._export.Exported`).
        """
        targets = check_export_targets(
            {"h5ad": path_h5ad, "csv": path_csv, "model": path_model}, self.protected_paths()
        )
        path_h5ad, path_csv, path_model = (targets.get(k) for k in ("h5ad", "csv", "model"))
        if path_model is not None and self.trained_model() is None:
            self.ensure_trained()  # first: the round it records is in the snapshot below
        table, record = self._export_contents(record=path_h5ad is not None)
        written: dict[str, Path] = {}
        with written_together():  # each through a temporary file, renamed when all are
            if path_model is not None:
                if self.trained_model() is None:
                    self.ensure_trained()
                model = self.trained_model()
                if model is None:
                    raise SessionError(
                        "No model to export: training needs labels of at least 2 cell types."
                    )
                written["model"] = save_model(model, path_model)
            if path_h5ad is not None:
                written["h5ad"] = write_h5ad(path_h5ad, self._adata, table, self._umap, record)
            if path_csv is not None:
                written["csv"] = write_csv(path_csv, table)
        return Exported(written, table)

    def _export_contents(self, *, record: bool) -> tuple[pd.DataFrame, dict | None]:
        """The export table and (with ``record``) the session's record, from one snapshot of
        the store: an export's ``obs`` columns and its answer log always agree."""
        predictions = self.predictions()  # the model's calls: not the store's
        with self._store.snapshot():
            answers = self._store.active_answers()
            kept = dict(model=self.model, cv_model=self.cv_model, unknown_below=self.unknown_below)
            log = session_record(self._store, **kept) if record else None
        hierarchy, cut = self._model.hierarchy, self.unknown_below
        return export_table(self.cells, answers, predictions, hierarchy, unknown_below=cut), log

    def export_table(self) -> pd.DataFrame:
        """One row per cell (index: cell id) with the ``EXPORT_COLUMNS``."""
        return self._export_contents(record=False)[0]

    def status(self) -> dict:
        """Counts and history: n_cells, n_labeled, n_answered, answers_by_kind,
        labels_per_type, round, model, trained_round (None untrained), stale, cv_history
        (each round's estimates, as :func:`~scactive.app._model.round_summary` gives them),
        estimate (:func:`~scactive.app._model.stopping_summary`), the vocabulary and the
        hierarchy (``{type: parent}``, ``""`` at the top level; ``{}`` without one)."""
        snap = self._snapshot()
        rounds = self._store.rounds()
        vocabulary = self._store.vocabulary()
        with self._model.lock:
            trained_sha, trained_round = self._model.trained_sha, self._model.trained_round
        return {
            "n_cells": len(self.cells),
            "n_labeled": len(snap.labels),
            "n_answered": len(snap.answers),
            "answers_by_kind": dict(Counter(a["kind"] for a in snap.answers)),
            "labels_per_type": dict(Counter(snap.labels.tolist()).most_common()),
            "round": self._store.current_round(),
            "model": self.model,
            "trained_round": trained_round,
            "stale": trained_sha != snap.sha,
            "cv_history": [round_summary(r) for r in rounds],
            "estimate": stopping_summary(rounds, n_types=self._model.n_task_types(vocabulary)),
            "vocabulary": vocabulary,
            "hierarchy": self._model.hierarchy.to_dict() if self._model.hierarchy else {},
        }
