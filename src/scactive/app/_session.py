"""The engine of a human-in-the-loop annotation session.

A :class:`Session` joins the data (prepared once: normalised, features, PCA, UMAP), the store
of answers (:class:`~scactive.app._store.SessionStore`) and the current model. Answers go to
the store at once; the model is retrained on request (:meth:`Session.train`), which may run in
a background thread while answers keep arriving from another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError, unknown_name
from .._files import atomic_write
from .._meta import package_version
from ..io import data_checksum, select_matrix
from ..models import DEFAULT_MODEL, PRESETS, TrainedModel, make_learner, save_model
from ..pp import FeatureSpace, gene_symbols, normalize, remove_genes
from ..strategies import get_strategy
from ._export import check_export_targets, export_paths, protected_paths
from ._labels import MAX_LABEL_LENGTH, check_label, check_markers, seed_labels
from ._sqlite import SCHEMA_VERSION
from ._store import KINDS, SessionError, SessionStore, UnknownCellError
from ._store import now as _now

logger = logging.getLogger("scactive")

#: The strategy name of cold-start picks (spread across clusters, no model needed).
COLD_START = "cold-start"
#: Cells (the cell and its nearest neighbours in PCA) whose mean ranks distinctive genes.
SMOOTH_K = 15
#: Highly variable genes used as features.
N_TOP_GENES = 2000
#: The learner whose stratified cross-validation estimates the accuracy (cheap: ~30 ms a fold).
CV_MODEL = "logreg-pca"
#: Columns :meth:`Session.export` writes into ``obs`` and the CSV.
EXPORT_COLUMNS = (
    "scactive_label",
    "scactive_answer_kind",
    "scactive_predicted",
    "scactive_confidence",
    "scactive_round",
    "scactive_strategy",
    "scactive_answered_at",
)


@dataclass(frozen=True)
class _Prepared:
    log: ad.AnnData  # the chosen matrix, log-normalised, every gene
    features: FeatureSpace
    X: np.ndarray
    pca: np.ndarray


@dataclass(frozen=True)
class _Labels:
    """A snapshot of the current answers, and the labeled cells among them."""

    answers: list[dict]
    positions: np.ndarray
    labels: np.ndarray

    @property
    def n_types(self) -> int:
        return len(set(self.labels))

    @property
    def sha(self) -> str:
        pairs = sorted(zip(self.positions.tolist(), self.labels.tolist(), strict=True))
        return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def open_session(
    adata: ad.AnnData,
    path: str | Path,
    *,
    label_key: str | None = None,
    markers: Mapping[str, Iterable[str]] | None = None,
    model: str | None = None,
    seed: int | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    cv_model: str | None = CV_MODEL,
    source: str | Path | None = None,
    read_options: Mapping[str, object] | None = None,
) -> Session:
    """Open the annotation session stored at ``path`` on ``adata``, creating it if new.

    Parameters
    ----------
    adata
        Every cell to annotate (counts or log-normalised values; no cell is dropped). Not
        changed; :meth:`Session.export` writes a copy with the answers.
    path
        The session file (SQLite). A file made for other data is refused.
    label_key
        New sessions only: an ``obs`` column whose non-missing labels become the first
        answers (round 0, source ``seed``).
    markers
        Cell type -> marker genes: the types join the vocabulary, the genes are shown by
        :meth:`Session.cell_evidence`. Genes not in the data are named in a warning.
    model
        The learner preset (``scactive.models.PRESETS``); default: the session's, else mlp2.
    seed
        New sessions: seeds the PCA, UMAP, cold start and learners (default 0). A session
        keeps the seed it was created with.
    layer, use_raw
        Read this layer or ``.raw`` instead of ``X`` (the checksum covers the matrix read).
    cv_model
        The learner of the cross-validated accuracy estimate; None: the session's model.
    source, read_options
        Where ``adata`` was read from (a path or a bundled name) and how (e.g.
        ``{"transpose": True}``): recorded in the session, so the command line can reopen it
        without the data path, and protected from being overwritten by an export. A moved
        file is recorded anew (the checksum still has to match).
    """
    for name, value in (("model", model), ("cv_model", cv_model)):
        if value is not None and value not in PRESETS:
            raise unknown_name(name, value, PRESETS)
    markers = check_markers(markers)
    data = select_matrix(adata, layer=layer, use_raw=use_raw)
    checksum = dataset_checksum(data)
    seeds = seed_labels(adata, label_key) if label_key is not None else []
    store = SessionStore(path)
    try:
        meta = store.meta()
        if "dataset_checksum" in meta:
            _check_same_data(meta, checksum, data.n_obs, store.path)
            if label_key is not None and label_key != meta.get("label_key", ""):
                warnings.warn(
                    f"label_key={label_key!r} is ignored: seed labels are read only when a "
                    f"session is created (this one was created with "
                    f"label_key={meta.get('label_key') or None!r}).",
                    UserWarning,
                    stacklevel=2,
                )
        if "seed" in meta:
            if seed is not None and int(seed) != int(meta["seed"]):
                warnings.warn(
                    f"seed={seed} is ignored: the session keeps the seed it was created with "
                    f"({meta['seed']}), which its PCA, UMAP and rounds depend on.",
                    UserWarning,
                    stacklevel=2,
                )
            seed = int(meta["seed"])
        seed = 0 if seed is None else int(seed)
        model = model or meta.get("model") or DEFAULT_MODEL
        prepared = _prepare(data, seed)
        umap = store.embedding("umap")
        if umap is None:
            umap = _umap(prepared.pca, seed)
            created = store.initialize(
                dict(
                    schema_version=SCHEMA_VERSION,
                    dataset_checksum=checksum,
                    n_cells=data.n_obs,
                    label_key=label_key or "",
                    matrix=f"layer {layer}" if layer else ("raw" if use_raw else "X"),
                    model=model,
                    seed=seed,
                    strategy_default="entropy",
                ),
                embeddings={"umap": umap},
                seeds=seeds,
                vocabulary=[(label, "seed") for label in dict.fromkeys(s[1] for s in seeds)],
            )
            if not created:  # another process created it meanwhile
                _check_same_data(store.meta(), checksum, data.n_obs, store.path)
                umap = store.embedding("umap")
        if umap is None or umap.shape[0] != data.n_obs:
            raise InputError(f"The UMAP cached in '{store.path}' does not fit the data.")
        if model != store.meta().get("model"):
            store.set_meta(model=model)
        if markers:
            store.add_markers(markers)
        if source is not None:
            recorded = _source_meta(source, read_options or {}, layer=layer, use_raw=use_raw)
            current = store.meta()
            if any(current.get(k) != v for k, v in recorded.items()):
                store.set_meta(**recorded)
        session = Session(store, adata, prepared, umap, model=model, seed=seed, cv_model=cv_model)
        session._resolve_markers(markers, warn=True)  # name the given genes not in the data
        return session
    except BaseException:
        store.close()
        raise


class Session:
    """An annotation session: the data, its store of answers and the current model.

    Built by :func:`open_session`. Every method may be called from any thread: answers go
    straight to the store, and training fits a new learner outside the model lock, which it
    takes only to swap the learner in.
    """

    def __init__(self, store, adata, prepared, umap, *, model, seed, cv_model) -> None:
        self._store = store
        self._adata = adata
        self._data: _Prepared = prepared
        self._umap = umap
        self.model = model
        self.seed = seed
        self.cv_model = cv_model or model
        self.cells = pd.Index(prepared.log.obs_names)
        self._position = {cell: i for i, cell in enumerate(self.cells)}
        self._symbols = np.asarray(gene_symbols(prepared.log), dtype=object)
        self._markers = self._resolve_markers(store.markers())
        self._model_lock = threading.Lock()  # the learner, its predictions, proposals
        self._train_lock = threading.Lock()  # one training at a time
        self._learner = None
        self._proba: np.ndarray | None = None
        self._trained_sha: str | None = None
        self._trained_round: int | None = None
        self._proposed: dict[str, str] = {}
        self._gene_stats: tuple[np.ndarray, ...] | None = None

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

        With labels of fewer than two types, the picks spread across clusters (k-means with
        ``n`` clusters on the PCA, the cell nearest each centre). Otherwise ``strategy`` runs
        over the current model (trained first if there is none; call :meth:`train` to refresh
        a stale one).
        """
        try:
            chooser = get_strategy(strategy)
        except InputError as err:
            raise SessionError(str(err)) from err
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise SessionError(f"n={n!r}; expected a whole number of cells >= 1.")
        snap = self._snapshot()
        answered = np.zeros(len(self.cells), dtype=bool)
        answered[[self._position[a["cell"]] for a in snap.answers]] = True
        candidates = np.flatnonzero(~answered)
        k = min(int(n), len(candidates))
        if k == 0:
            return []
        rng = np.random.default_rng([self.seed, len(snap.answers), self._store.current_round()])
        if snap.n_types < 2:
            picks, name = self._cold_start(candidates, k, rng), COLD_START
        else:
            if self._learner is None:
                self.ensure_trained()
            with self._model_lock:  # inference toggles the network's train/eval mode
                picks = chooser(
                    self._learner,
                    self._data.X,
                    labeled=answered,
                    batch_size=k,
                    rng=rng,
                    embedding=self._data.pca,
                )
            name = strategy
        cells = [str(c) for c in self.cells[np.asarray(picks, dtype=np.int64)]]
        with self._model_lock:
            self._proposed.update(dict.fromkeys(cells, name))
        return cells

    def _cold_start(self, candidates: np.ndarray, k: int, rng) -> np.ndarray:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        if k >= len(candidates):
            return candidates[:k]
        points = np.asarray(self._data.pca[candidates], dtype=np.float64)
        seed = int(rng.integers(2**31 - 1))
        if len(points) > 20_000:
            km = MiniBatchKMeans(k, n_init=3, random_state=seed, batch_size=4096)
        else:
            km = KMeans(k, n_init=3, random_state=seed)
        distances = km.fit_transform(points)
        picks = []
        for c in range(k):
            members = np.flatnonzero(km.labels_ == c)
            if members.size:
                picks.append(members[np.argmin(distances[members, c])])
        if len(picks) < k:  # empty clusters: fill with the cells farthest from any centre
            rest = np.setdiff1d(np.arange(len(points)), picks)
            gap = distances[rest].min(axis=1)
            picks.extend(rest[np.argsort(-gap)[: k - len(picks)]])
        return candidates[np.asarray(picks, dtype=np.int64)]

    # -- answering ------------------------------------------------------------------------
    def answer(
        self, cell: str, label: str | None = None, kind: str = "label", strategy: str | None = None
    ) -> int:
        """Record an answer, committed before this returns; returns its id.

        ``kind`` is ``label`` (with ``label``, which joins the vocabulary if new), ``unsure``,
        ``doublet`` or ``skip`` (without a label). Answering an answered cell relabels it.
        ``strategy`` defaults to the one that proposed the cell.
        """
        return self.answer_many([(cell, label, kind, strategy)])[0]

    def answer_many(self, rows: Iterable) -> list[int]:
        """Record many answers in one transaction: all of them, or none when any is bad.

        Each row is ``(cell, label[, kind[, strategy]])`` or a mapping with those keys.
        """
        rows = [_row(r) for r in rows]
        checked, problems = self._check_rows(rows)
        if problems:
            if len(rows) == 1:
                raise problems[0][1]
            raise SessionError(
                f"{len(problems)} of {len(rows)} answers are invalid, none was recorded: "
                + "; ".join(f"row {i + 1}: {str(err).rstrip('.')}" for i, err in problems[:5])
                + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            )
        ids, added = self._store.add_answers(checked)
        if added:
            logger.info("new cell types in the vocabulary: %s", ", ".join(map(repr, added)))
        return ids

    def validate_answers(self, rows: Iterable) -> list[tuple[int, SessionError]]:
        """The problems of answer rows (position, error) without recording anything."""
        return self._check_rows([_row(r) for r in rows])[1]

    def _check_rows(self, rows: list[tuple]) -> tuple[list[tuple], list[tuple[int, SessionError]]]:
        checked, problems = [], []
        for i, row in enumerate(rows):
            try:
                checked.append(self._check_answer(*row))
            except SessionError as err:
                problems.append((i, err))
        return checked, problems

    def _check_answer(self, cell, label, kind, strategy) -> tuple:
        if not isinstance(cell, str) or cell not in self._position:
            raise UnknownCellError(
                f"Unknown cell {cell!r}: not one of the {len(self.cells)} cells of the data "
                f"(e.g. {self.cells[0]!r})."
            )
        if kind not in KINDS:
            raise SessionError(f"kind={kind!r}; expected one of {', '.join(map(repr, KINDS))}.")
        if kind == "label":
            label = check_label(label)
        elif label is not None and (not isinstance(label, str) or label.strip()):
            raise SessionError(
                f"A {kind!r} answer takes no label (got {label!r}); answer with kind='label' "
                "to give one."
            )
        else:
            label = None
        if strategy is None:
            with self._model_lock:
                strategy = self._proposed.get(cell, "user")
        elif not isinstance(strategy, str) or len(strategy) > MAX_LABEL_LENGTH:
            raise SessionError(f"strategy={strategy!r}; expected a short name.")
        return cell, label, kind, strategy

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

    def _snapshot(self) -> _Labels:
        answers = self._store.active_answers()
        labeled = [a for a in answers if a["kind"] == "label"]
        return _Labels(
            answers,
            np.asarray([self._position[a["cell"]] for a in labeled], dtype=np.int64),
            np.asarray([a["label"] for a in labeled], dtype=object),
        )

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
        with self._train_lock:
            return self._train(self._snapshot(), progress_callback)

    def ensure_trained(self) -> dict | None:
        """Train if the model is missing or older than the labels, and labels allow it.

        When the last recorded round used exactly the current labels (a reopened session),
        its learner is rebuilt without recording a new round. Returns what :meth:`train`
        returns, or None when nothing was done.
        """
        with self._train_lock:
            snap = self._snapshot()
            if snap.n_types < 2 or (self._learner is not None and self._trained_sha == snap.sha):
                return None
            rounds = self._store.rounds()
            last = rounds[-1] if rounds else None
            if last and last["labels_sha256"] == snap.sha and last["model"] == self.model:
                learner, proba = self._fit(snap, last["learner_seed"])
                self._install(learner, proba, snap.sha, last["round"])
                return {**_round_summary(last), "restored": True}
            return self._train(snap, None)

    @property
    def stale(self) -> bool:
        """Whether the labels changed since the model was trained (or there is no model)."""
        return self._trained_sha != self._snapshot().sha

    def _train(self, snap: _Labels, progress) -> dict:
        report = progress or (lambda step, fraction: None)
        if snap.n_types < 2:
            raise SessionError(
                f"Training needs labels of at least 2 cell types; the session has "
                f"{len(snap.labels)} labeled cells of {snap.n_types} type(s) "
                f"{sorted(set(snap.labels))}. Label cells of another type first (next_batch "
                "spreads its picks across clusters until then)."
            )
        started, t0 = _now(), time.perf_counter()
        round_ = self._store.current_round()
        learner_seed = int(np.random.default_rng([self.seed, round_]).integers(2**31 - 1))
        report("fit", 0.0)
        learner, proba = self._fit(snap, learner_seed)
        report("cross-validation", 0.6)
        cv, folds = self._cross_validate(snap, learner_seed)
        strategies = Counter(
            a["strategy"] for a in snap.answers if a["round"] == round_ and a["origin"] == "user"
        )
        row = dict(
            strategy=strategies.most_common(1)[0][0] if strategies else None,
            model=self.model,
            started_at=started,
            finished_at=_now(),
            n_labeled=len(snap.labels),
            n_types=snap.n_types,
            cv_accuracy=cv,
            cv_folds=folds,
            cv_model=self.cv_model if cv is not None else None,
            learner_seed=learner_seed,
            labels_sha256=snap.sha,
        )
        recorded = self._store.record_round(**row)
        self._install(learner, proba, snap.sha, recorded)
        report("done", 1.0)
        logger.info(
            "round %d: %d labeled cells of %d types, estimated accuracy %s",
            recorded,
            len(snap.labels),
            snap.n_types,
            "n/a" if cv is None else f"{cv:.3f}",
        )
        return {**_round_summary({**row, "round": recorded}), "seconds": time.perf_counter() - t0}

    def _fit(self, snap: _Labels, learner_seed: int):
        X = self._data.X
        learner = make_learner(self.model, self._data.features, rng=learner_seed)
        learner.fit(X[snap.positions], snap.labels.astype(str))
        return learner, np.asarray(learner.predict_proba(X), dtype=np.float32)

    def _cross_validate(self, snap: _Labels, learner_seed: int) -> tuple[float | None, int]:
        from sklearn.model_selection import StratifiedKFold

        y = snap.labels.astype(str)
        smallest = min(Counter(y).values())
        if smallest < 2:
            return None, 0
        folds = min(5, smallest)
        X = self._data.X[snap.positions]
        correct = 0
        split = StratifiedKFold(folds, shuffle=True, random_state=learner_seed)
        for fit_idx, test_idx in split.split(X, y):
            learner = make_learner(self.cv_model, self._data.features, rng=learner_seed)
            learner.fit(X[fit_idx], y[fit_idx])
            guess = np.asarray(learner.classes_)[learner.predict_proba(X[test_idx]).argmax(1)]
            correct += int((guess == y[test_idx]).sum())
        return correct / len(y), folds

    def _install(self, learner, proba: np.ndarray, sha: str, round_: int) -> None:
        with self._model_lock:
            self._learner, self._proba = learner, proba
            self._trained_sha, self._trained_round = sha, round_

    def predictions(self) -> pd.DataFrame:
        """The model's call for every cell: cell, predicted, confidence (empty untrained)."""
        with self._model_lock:
            learner, proba = self._learner, self._proba
        if learner is None:
            return pd.DataFrame({"cell": [], "predicted": [], "confidence": []})
        classes = np.asarray(learner.classes_, dtype=object)
        return pd.DataFrame(
            {
                "cell": np.asarray(self.cells, dtype=object),
                "predicted": classes[proba.argmax(axis=1)],
                "confidence": proba.max(axis=1),
            }
        )

    def trained_model(self) -> TrainedModel | None:
        """The current learner with its feature space (None before any training)."""
        with self._model_lock:
            learner = self._learner
        return (
            None
            if learner is None
            else TrainedModel(learner, self._data.features, package_version())
        )

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
        mean, sd, varies, usable = self._stats()
        row = np.asarray(self._data.log.X[pos].toarray()).ravel()
        z = (row - mean) / sd
        # rank on the cell and its nearest neighbours (PCA): one cell's counts are too sparse
        pca = self._data.pca
        near = np.argsort(np.linalg.norm(pca - pca[pos], axis=1), kind="stable")[:SMOOTH_K]
        z_near = (np.asarray(self._data.log.X[near].mean(axis=0)).ravel() - mean) / sd
        ranked = np.where(usable, z_near, -np.inf)
        top = [i for i in np.argsort(-ranked, kind="stable")[:10] if usable[i]]

        def gene(i: int) -> dict:
            return {
                "gene": str(self._symbols[i]),
                "expression": float(row[i]),
                "z": float(z[i]) if varies[i] else None,
                "z_neighbourhood": float(z_near[i]) if varies[i] else None,
            }

        snap = self._snapshot()
        others = snap.positions[snap.positions != pos]
        labels_of = dict(zip(snap.positions.tolist(), snap.labels.tolist(), strict=True))
        distance = np.linalg.norm(self._data.pca[others] - self._data.pca[pos], axis=1)
        nearest = others[np.argsort(distance, kind="stable")[:5]]
        with self._model_lock:
            learner, proba = self._learner, self._proba
        predictions = []
        if learner is not None:
            p = proba[pos]
            predictions = [
                {"label": str(learner.classes_[i]), "probability": float(p[i])}
                for i in np.argsort(-p, kind="stable")[:3]
            ]
        answer = next((a for a in snap.answers if a["cell"] == cell), None)
        return {
            "cell": cell,
            "umap": self._umap[pos].tolist(),
            "pca": self._data.pca[pos, :2].tolist(),
            "answer": answer,
            "top_genes": [gene(i) for i in top],
            "markers": {t: [gene(i) for i in idx] for t, idx in self._markers.items()},
            "predictions": predictions,
            "neighbours": [
                {
                    "cell": str(self.cells[j]),
                    "label": labels_of[int(j)],
                    "distance": float(np.linalg.norm(self._data.pca[j] - self._data.pca[pos])),
                }
                for j in nearest
            ],
        }

    def _stats(self) -> tuple[np.ndarray, ...]:
        """Per gene: mean and sd of log expression over all cells, sd > 0, rankable."""
        if self._gene_stats is None:  # a race computes it twice, harmlessly
            X = self._data.log.X
            mean = np.asarray(X.mean(axis=0)).ravel()
            sq = np.asarray(X.multiply(X).mean(axis=0)).ravel()
            sd = np.sqrt(np.maximum(sq - mean**2, 0))
            detected = np.asarray((X > 0).sum(axis=0)).ravel()
            # rank the feature genes seen in >= 1% of cells (and >= 10): a gene seen in a
            # handful of cells gets a huge z from a single count and says little
            floor = min(max(10, int(0.01 * X.shape[0])), max(X.shape[0] // 2, 1))
            features = np.isin(self._data.log.var_names, self._data.features.genes_)
            usable = (sd > 0) & (detected >= floor) & features
            self._gene_stats = (mean, np.where(sd > 0, sd, 1.0), sd > 0, usable)
        return self._gene_stats

    def _resolve_markers(
        self, markers: dict[str, list[str]], *, warn: bool = False
    ) -> dict[str, list[int]]:
        exact = {}
        folded = {}
        for names in (self._symbols, np.asarray(self._data.log.var_names, dtype=object)):
            for i, name in enumerate(names):
                exact.setdefault(str(name), i)
                folded.setdefault(str(name).upper(), i)
        out, missing = {}, []
        for cell_type, genes in markers.items():
            found = []
            for g in genes:
                i = exact.get(g, folded.get(g.upper()))
                if i is None:
                    missing.append(f"{g} ({cell_type})")
                elif i not in found:
                    found.append(i)
            out[cell_type] = found
        if missing and warn:
            warnings.warn(
                f"{len(missing)} marker genes are not in the data and are ignored: "
                f"{', '.join(missing[:20])}{' ...' if len(missing) > 20 else ''}.",
                UserWarning,
                stacklevel=4,
            )
        return out

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
    ) -> dict[str, Path]:
        """Write the answers and the model's calls, each file through a temporary file.

        A target that is the session file (or SQLite's files beside it), the input data, or
        another target of this export is refused (:class:`InputError`) before anything is
        written.

        ``path_h5ad``: the input AnnData (all cells, its own ``X``) with the ``obs`` columns
        of ``EXPORT_COLUMNS`` and the session's UMAP in ``obsm['X_umap']`` (a UMAP the input
        had is kept as ``obsm['X_umap_input']``). ``path_csv``: the same columns, one row per
        cell. ``path_model``: the current learner (:func:`scactive.models.load_model` reads
        it; trained first if needed). Predicted columns are empty before any training.
        """
        targets = check_export_targets(
            {"h5ad": path_h5ad, "csv": path_csv, "model": path_model}, self.protected_paths()
        )
        path_h5ad, path_csv, path_model = (targets.get(k) for k in ("h5ad", "csv", "model"))
        table = self.export_table()
        written: dict[str, Path] = {}
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
            out = self._adata.copy()
            for column in table.columns:
                out.obs[column] = table[column].array
            if "X_umap" in out.obsm and not np.allclose(out.obsm["X_umap"], self._umap):
                out.obsm["X_umap_input"] = out.obsm["X_umap"]
            out.obsm["X_umap"] = self._umap.copy()
            out.uns["scactive_session"] = {
                "session_file": str(self.path),
                "model": self.model,
                "round": self._store.current_round(),
                "vocabulary": [v["label"] for v in self._store.vocabulary()],
            }
            written["h5ad"] = atomic_write(path_h5ad, out.write_h5ad)
        if path_csv is not None:
            written["csv"] = atomic_write(
                path_csv, lambda tmp: table.to_csv(tmp, index_label="cell")
            )
        return written

    def export_table(self) -> pd.DataFrame:
        """One row per cell (index: cell id) with the ``EXPORT_COLUMNS``."""
        n = len(self.cells)
        columns = {c: np.full(n, None, dtype=object) for c in EXPORT_COLUMNS}
        rounds = pd.array([pd.NA] * n, dtype="Int64")
        for a in self._store.active_answers():
            i = self._position[a["cell"]]
            columns["scactive_label"][i] = a["label"]
            columns["scactive_answer_kind"][i] = a["kind"]
            columns["scactive_strategy"][i] = a["strategy"]
            columns["scactive_answered_at"][i] = a["answered_at"]
            rounds[i] = a["round"]
        predictions = self.predictions()
        confidence = np.full(n, np.nan, dtype=np.float32)
        if len(predictions):
            columns["scactive_predicted"][:] = predictions["predicted"].to_numpy()
            confidence[:] = predictions["confidence"].to_numpy()
        table = pd.DataFrame(index=pd.Index(self.cells, name=None))
        for column in EXPORT_COLUMNS:
            if column == "scactive_confidence":
                table[column] = confidence
            elif column == "scactive_round":
                table[column] = rounds
            else:
                table[column] = pd.Categorical(columns[column])
        return table

    def status(self) -> dict:
        """Counts and history: n_cells, n_labeled, n_answered, answers_by_kind,
        labels_per_type, round, model, trained_round (None untrained), stale, cv_history (the
        accuracy estimate of every round) and the vocabulary."""
        snap = self._snapshot()
        with self._model_lock:
            trained_sha, trained_round = self._trained_sha, self._trained_round
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
            "cv_history": [
                {k: r[k] for k in ("round", "n_labeled", "n_types", "cv_accuracy", "cv_model")}
                for r in self._store.rounds()
            ],
            "vocabulary": self._store.vocabulary(),
        }


# -- preparation ---------------------------------------------------------------------------
def _source_meta(source, read_options, *, layer, use_raw) -> dict[str, str]:
    path = Path(source).expanduser()
    return {
        "data_path": str(path.resolve()) if path.exists() else str(source),
        "data_read_options": json.dumps(
            {**dict(read_options), "layer": layer, "use_raw": bool(use_raw)}, sort_keys=True
        ),
    }


def recorded_source(meta: Mapping[str, str]) -> tuple[str | None, dict]:
    """The data path and read options a session file recorded (None, {} if none)."""
    try:
        options = json.loads(meta.get("data_read_options") or "{}")
    except ValueError:
        options = {}
    return meta.get("data_path") or None, options if isinstance(options, dict) else {}


def dataset_checksum(data: ad.AnnData) -> str:
    """SHA-256 of a CSR matrix (values and structure) and the cell and gene names."""
    return data_checksum(data.X, data.obs_names, data.var_names)


def _prepare(data: ad.AnnData, seed: int) -> _Prepared:
    """Normalise (if counts), fit features on every cell without mito/ribo/hemoglobin genes."""
    data.X = data.X.copy()  # select_matrix may share the input's arrays
    normalize(data)
    data.X = sp.csr_matrix(data.X, dtype=np.float32)
    probe = ad.AnnData(sp.csr_matrix((1, data.n_vars), dtype=np.float32), var=data.var.copy())
    remove_genes(probe)  # decides on names only: no copy of the matrix
    features = FeatureSpace(n_top_genes=N_TOP_GENES, random_state=seed)
    features.fit(data[:, probe.var_names])
    X = features.transform(data)
    return _Prepared(data, features, X, features.embed(X))


def _umap(pca: np.ndarray, seed: int) -> np.ndarray:
    n = len(pca)
    if n < 10:  # too few cells for a neighbour graph: the first two components
        out = np.zeros((n, 2), dtype=np.float32)
        out[:, : min(2, pca.shape[1])] = pca[:, :2]
        return out
    import scanpy as sc
    from sklearn.neighbors import KNeighborsTransformer

    tmp = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(n)]), obsm={"X_pca": pca})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = min(15, n - 1)
        # an exact neighbour search: scanpy's default above 4,096 cells (pynndescent) fails
        # with scipy >= 1.17 sparse arrays (no getnnz)
        sc.pp.neighbors(
            tmp,
            n_neighbors=k,
            use_rep="X_pca",
            random_state=seed,
            transformer=KNeighborsTransformer(n_neighbors=k, mode="distance"),
        )
        sc.tl.umap(tmp, random_state=seed)
    return np.asarray(tmp.obsm["X_umap"], dtype=np.float32)


def _check_same_data(meta: dict, checksum: str, n_cells: int, path: Path) -> None:
    recorded = meta["dataset_checksum"]
    if recorded != checksum:
        raise InputError(
            f"The session file '{path}' belongs to other data: it was made for data with "
            f"checksum {recorded[:16]} ({meta.get('n_cells', '?')} cells, matrix "
            f"{meta.get('matrix', 'X')}), but the data given has checksum {checksum[:16]} "
            f"({n_cells} cells). Open the session with the data it was made for (same file, "
            "same --layer / --use-raw), or give another --session file to start a new session."
        )


# -- small helpers -------------------------------------------------------------------------
def _row(row) -> tuple:
    if isinstance(row, Mapping):
        cell, label, kind, strategy = (row.get(k) for k in ("cell", "label", "kind", "strategy"))
    else:
        row = tuple(row)
        if not 2 <= len(row) <= 4:
            raise SessionError(f"An answer row is (cell, label[, kind[, strategy]]); got {row!r}.")
        cell, label, kind, strategy = (*row, None, None)[:4]
    return cell, label, kind or "label", strategy


def _round_summary(row: dict) -> dict:
    keys = ("round", "model", "n_labeled", "n_types", "cv_accuracy", "cv_folds", "cv_model")
    return {k: row.get(k) for k in keys}
