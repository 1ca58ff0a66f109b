"""A session's exports: what they hold, where they go, and the files they may never replace.

The app writes its exports into a folder named after the session file
(``cells.scactive`` -> ``cells.scactive.export/``), so they can never collide with the input
data or the session itself; an existing export there is kept, and the next one gets a numbered
name (``annotated-2.h5ad``), unless the caller asks to overwrite. Every export target, the app's
or one named by the user, is checked against the protected files first.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import InputError
from .._files import atomic_write, check_target
from .._hierarchy import LEVEL_PREFIX, Hierarchy
from .._predict_options import call_labels
from ._estimate import default_unknown_below
from ._sqlite import SIDE_FILES

#: File names inside the export folder, by what they hold.
EXPORT_NAMES = {"h5ad": "annotated.h5ad", "csv": "labels.csv", "model": "model.safetensors"}


def export_folder(session_path: Path) -> Path:
    """The app's export folder of a session file: ``<session file>.export``."""
    return session_path.with_name(session_path.name + ".export")


def export_paths(session_path: Path, *, overwrite: bool = False) -> dict[str, Path]:
    """The app's export files: the plain names, or with ``overwrite=False`` the first
    numbered set (``annotated-2.h5ad``, ``labels-2.csv``...) of which no file exists yet."""
    folder = export_folder(session_path)
    for n in itertools.count(1):
        paths = {
            kind: folder / (name if n == 1 else f"{Path(name).stem}-{n}{Path(name).suffix}")
            for kind, name in EXPORT_NAMES.items()
        }
        if overwrite or not any(p.exists() for p in paths.values()):
            return paths
    raise AssertionError("unreachable")


def protected_paths(session_path: Path, data_path: str | None) -> list[tuple[Path, str]]:
    """The files no export may replace: the session file, SQLite's files beside it, and
    the input data (file or folder) the session was made from, when known."""
    protected = [(session_path, "the session file")]
    protected += [
        (session_path.with_name(session_path.name + s), "the session's SQLite file")
        for s in SIDE_FILES
    ]
    if data_path:
        protected.append((Path(data_path), "the input data"))
    return protected


def check_export_targets(
    targets: dict[str, str | Path | None], protected: Iterable[tuple[Path, str]]
) -> dict[str, Path]:
    """Resolve the export targets (``kind -> path``; None skipped) and refuse any that would
    replace a protected file or another target of the same export. A CSV may go into a named
    pipe or a character device, or to standard output (``-``); the other files need regular
    files (:func:`~scactive._files.check_target`)."""
    options = {"h5ad": "--out", "csv": "--csv", "model": "--model"}
    protected = list(protected)
    checked: dict[str, Path] = {}
    for kind, target in targets.items():
        if target is None:
            continue
        option = options.get(kind, kind)
        path = check_target(target, protected, option=option, stream=kind == "csv")
        for other_kind, other in checked.items():
            if other == path:
                raise InputError(
                    f"{options[kind]} and {options[other_kind]} are the same file '{path}'; "
                    "give each export its own name. Nothing was written."
                )
        checked[kind] = path
    return checked


#: The ``obs`` column of an export holding each cell's current label.
LABEL_COLUMN = "scactive_label"
#: The ``uns`` key of an export holding the session's record (:mod:`._record`).
RECORD_KEY = "scactive"
#: Columns an export writes into ``obs`` and the CSV.
EXPORT_COLUMNS = (
    LABEL_COLUMN,
    "scactive_answer_kind",
    "scactive_predicted",
    "scactive_confidence",
    "scactive_call",
    "scactive_round",
    "scactive_strategy",
    "scactive_answered_at",
    "scactive_annotator",
    "scactive_provenance",
)
#: The ``scactive_answer_kind`` of a label given to a selection in one action.
BULK_KIND = "bulk"


def export_table(
    cells: pd.Index,
    answers: Iterable[Mapping],
    predictions: pd.DataFrame,
    hierarchy: Hierarchy | None = None,
    *,
    unknown_below: float | None = None,
) -> pd.DataFrame:
    """One row per cell (index: cell id) with the :data:`EXPORT_COLUMNS`, from the current
    answers and the model's calls (``predictions``: predicted, confidence; may be empty),
    then with a ``hierarchy`` the columns of :func:`level_columns`.

    ``scactive_call`` is each cell's final annotation: the person's label where there is one,
    else the model's prediction where its confidence reaches ``unknown_below`` (None: the
    measured default, :func:`~scactive.app._estimate.default_unknown_below`; with a
    hierarchy, the finest level that does: :func:`~scactive._predict_options.call_labels`),
    else ``"unknown"``; empty before any training for cells nobody labeled."""
    answers = list(answers)
    n = len(cells)
    position = {cell: i for i, cell in enumerate(cells)}
    columns = {c: np.full(n, None, dtype=object) for c in EXPORT_COLUMNS}
    rounds = pd.array([pd.NA] * n, dtype="Int64")
    for a in answers:
        i = position[a["cell"]]
        columns["scactive_label"][i] = a["label"]
        # a label given to a selection in one action says so, with the selection
        columns["scactive_answer_kind"][i] = BULK_KIND if a.get("action") else a["kind"]
        columns["scactive_provenance"][i] = a.get("provenance") or ""
        columns["scactive_strategy"][i] = a["strategy"]
        columns["scactive_answered_at"][i] = a["answered_at"]
        columns["scactive_annotator"][i] = a.get("annotator") or ""  # answered, not named
        rounds[i] = a["round"]
    confidence = np.full(n, np.nan, dtype=np.float32)
    if len(predictions):
        columns["scactive_predicted"][:] = predictions["predicted"].to_numpy()
        confidence[:] = predictions["confidence"].to_numpy()
        # the raw prediction, and the call: "unknown" below the threshold (with levels, the
        # finest level sure enough)
        levels = (
            [
                (predictions[f"{LEVEL_PREFIX}{k}"], predictions[f"{LEVEL_PREFIX}{k}_confidence"])
                for k in range(1, hierarchy.n_levels + 1)
            ]
            if hierarchy is not None
            else None
        )
        cut = default_unknown_below() if unknown_below is None else unknown_below
        columns["scactive_call"][:] = call_labels(
            columns["scactive_predicted"], confidence, cut, levels=levels
        )
    given = np.asarray([v is not None for v in columns[LABEL_COLUMN]], dtype=bool)
    columns["scactive_call"][given] = columns[LABEL_COLUMN][given]  # a person's label stands
    table = pd.DataFrame(index=pd.Index(cells, name=None))
    for column in EXPORT_COLUMNS:
        if column == "scactive_confidence":
            table[column] = confidence
        elif column == "scactive_round":
            table[column] = rounds
        else:
            table[column] = pd.Categorical(columns[column])
    if hierarchy is not None:
        for column, values in level_columns(hierarchy, cells, answers, predictions).items():
            table[column] = values
    return table


class Exported(dict):
    """The files an export wrote (kind -> path), with what they hold: ``labels_per_type``,
    the labeled cells of each type in the snapshot written, most first; ``n_labeled``."""

    def __init__(self, written: Mapping[str, Path], table: pd.DataFrame) -> None:
        super().__init__(written)
        counts = table[LABEL_COLUMN].value_counts(dropna=True)
        self.labels_per_type = {str(k): int(n) for k, n in counts.items() if n}

    @property
    def n_labeled(self) -> int:
        return sum(self.labels_per_type.values())


#: The ``obs`` column of a hierarchy's level ``k`` (``scactive_level1``: the top level).
LEVEL_COLUMN = f"scactive_{LEVEL_PREFIX}{{}}"


def level_columns(
    hierarchy: Hierarchy, cells: pd.Index, answers: Iterable[Mapping], predictions: pd.DataFrame
) -> dict[str, object]:
    """``scactive_level<k>`` and ``scactive_level<k>_confidence`` for each level of
    ``hierarchy``: a labeled cell's label at that level (:meth:`Hierarchy.at_level`, no
    confidence), else the model's call there (``predictions``' ``level<k>`` and
    ``level<k>_confidence`` columns, from :meth:`Hierarchy.decode`; none untrained)."""
    position = {cell: i for i, cell in enumerate(cells)}
    labeled = [(position[a["cell"]], a["label"]) for a in answers if a["kind"] == "label"]
    where = np.asarray([i for i, _ in labeled], dtype=np.int64)
    given = hierarchy.levels([label for _, label in labeled], n_levels=hierarchy.n_levels)
    out: dict[str, object] = {}
    for k in range(1, hierarchy.n_levels + 1):
        level = f"{LEVEL_PREFIX}{k}"
        values = np.full(len(cells), None, dtype=object)
        confidence = np.full(len(cells), np.nan, dtype=np.float32)
        if len(predictions):
            values[:] = predictions[level].to_numpy(object)
            confidence[:] = predictions[f"{level}_confidence"].to_numpy(np.float32)
        values[where] = given[level].to_numpy(object)
        confidence[where] = np.nan  # the person's label, not a prediction
        out[LEVEL_COLUMN.format(k)] = pd.Categorical(values)
        out[f"{LEVEL_COLUMN.format(k)}_confidence"] = confidence
    return out


def write_h5ad(
    path: Path, adata: ad.AnnData, table: pd.DataFrame, umap: np.ndarray, record: dict
) -> Path:
    """Write ``adata`` (all cells, its own ``X``) with the columns of ``table`` in ``obs``,
    the session's UMAP in ``obsm['X_umap']`` (a UMAP the input had is kept as
    ``obsm['X_umap_input']``) and the session's ``record`` (:func:`._record.session_record`)
    in ``uns['scactive']``, replacing one the input carried."""
    out = adata.copy()
    for column in table.columns:
        out.obs[column] = table[column].array
    if "X_umap" in out.obsm and not np.allclose(out.obsm["X_umap"], umap):
        out.obsm["X_umap_input"] = out.obsm["X_umap"]
    out.obsm["X_umap"] = umap.copy()
    out.uns[RECORD_KEY] = record
    return atomic_write(path, out.write_h5ad)


def write_csv(path: Path, table: pd.DataFrame) -> Path:
    """Write the export table, one row per cell (into a pipe, a device or ``-``, standard
    output, in place)."""
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index_label="cell"), stream=True)
