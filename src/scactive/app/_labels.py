"""What a label may be, and the labels a session starts from: seed labels from a column of
the data, and marker genes per type from a file; answers checked before they are recorded."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import anndata as ad
import pandas as pd

from .._errors import InputError
from ..io import MISSING_LABELS, read_small_table
from ..loop import KINDS
from ._export import LABEL_COLUMN
from ._record import recorded_labels
from ._store import SessionError, UnknownCellError

#: Longest label (or annotator name) accepted, in characters.
MAX_LABEL_LENGTH = 200
#: Bad rows of a batch of answers named in its error message.
SHOW_PROBLEMS = 5
#: Unicode categories refused in labels: control, format (zero-width, bidi overrides),
#: surrogate, private-use, unassigned, and line or paragraph separators.
_REFUSED_CATEGORIES = {
    "Cc": "control",
    "Cf": "invisible formatting",
    "Cs": "surrogate",
    "Co": "private-use",
    "Cn": "unassigned",
    "Zl": "line-separator",
    "Zp": "paragraph-separator",
}


def seed_labels(adata: ad.AnnData, label_key: str) -> list[tuple]:
    """The labels of ``adata.obs[label_key]`` as seed answers ``(cell, label, annotator,
    answered_at)``; missing values and the texts of :data:`~scactive.io.MISSING_LABELS`
    (``unknown``, empty...) are no labels. Read from an export's ``scactive_label``, a label
    its answer log gave keeps who gave it and when (else both are None)."""
    if label_key not in adata.obs:
        raise InputError(
            f"label_key={label_key!r} not in adata.obs; available: {list(adata.obs.columns)}. "
            "Pass the column holding known cell types, or leave it out to start from scratch."
        )
    given = recorded_labels(adata) if label_key == LABEL_COLUMN else {}
    seeds = []
    for cell, value in zip(adata.obs_names.astype(str), adata.obs[label_key], strict=True):
        if value is None or pd.isna(value):
            continue
        text = str(value).strip()
        if text.lower() in MISSING_LABELS:
            continue
        try:
            label = check_label(text)
        except SessionError as err:
            raise InputError(f"label_key={label_key!r}, cell {cell!r}: {err}") from err
        answer = given.get(cell, {})
        if answer.get("label") == label:
            seeds.append((cell, label, answer["annotator"] or None, answer["answered_at"]))
        else:
            seeds.append((cell, label, None, None))
    return seeds


def check_label(label: object, what: str = "label") -> str:
    """A label stripped of surrounding space; refuses empty, over-long and control text."""
    text = _visible_text(label, what)
    if not text:
        raise SessionError(
            f"The {what} is empty; give a cell type, or answer with kind 'unsure' or 'skip'."
        )
    if text.lower() in MISSING_LABELS:
        raise SessionError(
            f"The {what} {text!r} reads as 'no label' in scactive; answer with kind 'unsure' "
            "or 'skip' instead, or name the type."
        )
    return text


def check_annotator(name: object) -> str | None:
    """Who answered: a name stripped of surrounding space (NFC), or None for no name (None
    or blank); refuses what :func:`check_label` refuses in any text."""
    if name is None:
        return None
    return _visible_text(name, "annotator name") or None


def _visible_text(label: object, what: str) -> str:
    """Text stripped and in NFC, at most :data:`MAX_LABEL_LENGTH` characters, refusing
    characters that hide or break text; may be empty."""
    if not isinstance(label, str):
        raise SessionError(f"The {what} must be text; got {type(label).__name__} {label!r:.60}.")
    bad = next(  # surrounding white space (a trailing line break, say) is only trimmed
        (
            (ch, _REFUSED_CATEGORIES[c])
            for ch in label.strip()
            if (c := unicodedata.category(ch)) in _REFUSED_CATEGORIES
        ),
        None,
    )
    if bad is not None:
        ch, kind = bad
        raise SessionError(
            f"The {what} {label.encode('utf-8', 'backslashreplace').decode()[:60]!r} holds the "
            f"{kind} character U+{ord(ch):04X}, which labels may not contain (it hides or "
            "breaks text, so labels that look alike would differ); type it again without it."
        )
    text = unicodedata.normalize("NFC", label).strip()
    if len(text) > MAX_LABEL_LENGTH:
        raise SessionError(
            f"The {what} has {len(text)} characters; at most {MAX_LABEL_LENGTH} are allowed "
            f"({text[:40]!r}...)."
        )
    return text


def check_markers(markers) -> dict[str, list[str]]:
    """Markers as ``{type: [genes]}``: each type a valid label, its genes a name or a list of
    names (text), blanks and repeats dropped; anything else is refused, naming the type."""
    if markers is None:
        return {}
    if not isinstance(markers, Mapping):
        raise InputError(
            f"markers must map cell type -> marker genes; got {type(markers).__name__}."
        )
    out: dict[str, list[str]] = {}
    for cell_type, genes in markers.items():
        try:
            cell_type = check_label(cell_type, "marker type")
        except SessionError as err:
            raise InputError(str(err)) from err
        if isinstance(genes, str):
            genes = [genes]
        elif isinstance(genes, Iterable) and not isinstance(genes, Mapping | bytes):
            genes = list(genes)
        if not isinstance(genes, list) or not all(isinstance(g, str) for g in genes):
            raise InputError(
                f"The markers of {cell_type!r} are {json.dumps(genes, default=str)[:80]}; "
                "expected a gene name or a list of gene names (text), e.g. "
                f'{{"{cell_type}": ["MS4A1", "CD79A"]}}; fix that entry.'
            )
        names = out.setdefault(cell_type, [])
        for g in genes:
            g = str(g).strip()
            if g and g not in names:
                names.append(g)
    return out


def read_markers(path: str | Path) -> dict[str, list[str]]:
    """Marker genes from a CSV/TSV with columns ``type,gene`` or a JSON ``{type: [genes]}``."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise InputError(f"Marker file not found: '{path}'.")
        try:
            markers = json.loads(path.read_text())
            if not isinstance(markers, dict):
                raise ValueError("expected an object {type: [genes]}")
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise InputError(f"Could not read the marker file '{path}': {err}.") from err
        try:
            return check_markers(markers)
        except InputError as err:
            raise InputError(f"The marker file '{path}': {err}") from err
    table = read_small_table(path, columns=("type", "gene"), what="marker file")
    markers: dict[str, list[str]] = {}
    for cell_type, gene in zip(table["type"], table["gene"], strict=True):
        markers.setdefault(cell_type, []).append(gene)
    return check_markers(markers)


#: The fields of an answer row, in the order a sequence gives them.
ANSWER_FIELDS = ("cell", "label", "kind", "strategy", "annotator")


def answer_row(row) -> tuple:
    """An answer row as ``(cell, label, kind, strategy, annotator)``: from a mapping with
    those keys or a sequence ``(cell, label[, kind[, strategy[, annotator]]])``; kind
    defaults to ``label``."""
    if isinstance(row, Mapping):
        cell, label, kind, strategy, annotator = (row.get(k) for k in ANSWER_FIELDS)
    else:
        row = tuple(row)
        if not 2 <= len(row) <= len(ANSWER_FIELDS):
            raise SessionError(
                f"An answer row is (cell, label[, kind[, strategy[, annotator]]]); got {row!r}."
            )
        cell, label, kind, strategy, annotator = (*row, None, None, None)[: len(ANSWER_FIELDS)]
    return cell, label, kind or "label", strategy, annotator


def listed_problems(problems: Sequence[tuple[int, Exception]], *, first: int, word: str) -> str:
    """The first :data:`SHOW_PROBLEMS` problems ``(position, error)`` as ``"row 1: ...; row
    4: ...; and 3 more"``, numbered from ``first`` and named by ``word``."""
    shown = "; ".join(
        f"{word} {i + first}: {str(err).rstrip('.')}" for i, err in problems[:SHOW_PROBLEMS]
    )
    more = len(problems) - SHOW_PROBLEMS
    return shown + (f"; and {more} more" if more > 0 else "")


def check_answer(label, kind, strategy: str, annotator=None) -> tuple:
    """``(label, kind, strategy, annotator)`` checked: a known kind, a valid label for
    ``label`` answers and none for the others, a short strategy name, a name or None."""
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
    if not isinstance(strategy, str) or len(strategy) > MAX_LABEL_LENGTH:
        raise SessionError(f"strategy={strategy!r}; expected a short name.")
    return label, kind, strategy, check_annotator(annotator)


def check_answers(
    rows: Sequence[tuple], position: Mapping[str, int], proposed: Callable[[str], str]
) -> tuple[list[tuple], list[tuple[int, SessionError]]]:
    """Answer rows ``(cell, label, kind, strategy, annotator)`` (as :func:`answer_row` gives
    them) checked against the session's cells (``position``: cell -> its position, in the
    data's order): the valid rows checked by :func:`check_answer`, and the problems of the
    others as ``(position in rows, error)``. A row without a strategy takes
    ``proposed(cell)``, the strategy that proposed the cell."""
    checked, problems = [], []
    for i, (cell, label, kind, strategy, annotator) in enumerate(rows):
        try:
            if not isinstance(cell, str) or cell not in position:
                raise UnknownCellError(
                    f"Unknown cell {cell!r}: not one of the {len(position)} cells of the data "
                    f"(e.g. {next(iter(position))!r})."
                )
            if strategy is None:
                strategy = proposed(cell)
            checked.append((cell, *check_answer(label, kind, strategy, annotator)))
        except SessionError as err:
            problems.append((i, err))
    return checked, problems


def refuse_problems(problems: Sequence[tuple[int, SessionError]], n_rows: int) -> None:
    """Raise the problems of :func:`check_answers` (none: return): a single row's own error,
    else one :class:`SessionError` listing the bad rows of the ``n_rows``."""
    if not problems:
        return
    if n_rows == 1:
        raise problems[0][1]
    listed = listed_problems(problems, first=1, word="row")
    counts = f"{len(problems)} of {n_rows}"
    raise SessionError(f"{counts} answers are invalid, none was recorded: {listed}")
