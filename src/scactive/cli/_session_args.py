"""What the session commands share (``query``, ``teach``, ``export``, ``annotate``): their
options and opening the session over its data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._errors import InputError
from ..models._registry import DEFAULT_MODEL

SessionFile = Annotated[
    Path,
    typer.Option(
        "--session", "-s", help="The session file (SQLite); created on first use, then resumed."
    ),
]
Markers = Annotated[
    Path | None,
    typer.Option(help="Marker genes: CSV/TSV with columns type,gene, or JSON {type: \\[genes]}."),
]
Levels = Annotated[
    Path | None,
    typer.Option(
        "--hierarchy",
        help="Cell-type levels (T cell > CD4 T): a JSON/YAML tree {type: {subtype: {}}} or a "
        "CSV/TSV with columns type,parent (a --markers file with a parent column gives them "
        "too). Kept in the session; answers may name any level.",
        show_default=False,
    ),
]
Learner = Annotated[
    str | None,
    typer.Option(
        help="Learner preset: {learners}. Default: the session's, else " + DEFAULT_MODEL + "."
    ),
]
InputUmap = Annotated[
    bool,
    typer.Option(
        help="New sessions: show the UMAP the data carries in obsm['X_umap'] (else compute "
        "one from the PCA)."
    ),
]
Seed = Annotated[int | None, typer.Option(help="Random seed; default: the session's, else 0.")]
SeedLabels = Annotated[
    str | None,
    typer.Option(
        "--label-key",
        "-l",
        help="New sessions: obs column whose known labels become the first answers.",
    ),
]
Annotator = Annotated[
    str | None,
    typer.Option(
        help="Your name, recorded with each answer (and in the export); none by default.",
        show_default=False,
    ),
]
UnknownBelow = Annotated[
    float | None,
    typer.Option(
        help="Confidence below which a cell's call (scactive_call in exports) is 'unknown'. "
        "Default: the threshold measured in simulated sessions (docs/annotate.md).",
        show_default=False,
    ),
]
OptionalData = Annotated[
    str | None,
    typer.Argument(
        help="h5ad, 10x .h5 or mtx folder, csv/tsv, loom, or a bundled dataset name. Needed to "
        "create a session; afterwards the session's recorded path is read (give DATA if the "
        "file moved).",
        show_default=False,
    ),
]


def set_unknown_below(session, value: float | None) -> None:
    """Give ``session`` the ``--unknown-below`` threshold (kept: its default)."""
    from .._predict_options import check_predict_options

    if value is not None:
        check_predict_options(unknown_below=value, min_shared_genes=1.0, cli=True)
        session.unknown_below = float(value)


def open_session_over(
    data: str | None,
    session: Path,
    *,
    label_key: str | None = None,
    markers: Path | None = None,
    learner: str | None = None,
    seed: int | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    transpose: bool = False,
    input_umap: bool = True,
    hierarchy: Path | None = None,
):
    """Read ``data`` (default: the path the session recorded) and open the session over it.

    The cell-type levels come from ``hierarchy`` and from a ``parent`` column of the
    ``markers`` file (:func:`scactive.app._levels.read_levels`).

    A new session over an scactive export says so on the terminal (see :func:`export_note`).
    """
    from .. import io
    from ..app import open_session, read_markers
    from ..app._levels import read_levels

    if data is None:
        data, options = recorded_data(session)
        transpose = transpose or bool(options.get("transpose"))
        layer = layer if layer is not None else options.get("layer")
        use_raw = use_raw or bool(options.get("use_raw"))
    levels = read_levels(hierarchy, markers)  # before the data: a bad file fails at once
    new = not Path(session).expanduser().is_file()
    adata = io.read(data, transpose=transpose)
    opened = open_session(
        adata,
        session,
        label_key=label_key,
        markers=read_markers(markers) if markers is not None else None,
        model=learner,
        seed=seed,
        layer=layer,
        use_raw=use_raw,
        source=data,
        read_options={"transpose": transpose},
        use_input_umap=input_umap,
        hierarchy=levels,
    )
    note = export_note(adata, data, label_key, opened.status()["n_labeled"]) if new else None
    if note:
        from . import console

        console.print(note, highlight=False)
    return opened


def export_note(adata, data: str, label_key: str | None, n_labeled: int) -> str | None:
    """What a new session over ``data`` starts from when it is an scactive export (its
    ``uns['scactive']`` holds an answer log); None when it is not."""
    from ..app._export import LABEL_COLUMN
    from ..app._record import recorded_answers

    log = recorded_answers(adata)
    if log is None:
        return None
    names = sorted(set(log["annotator"].tolist()) - {""})
    given = f"{len(log['cell'])} answers" + (f" by {', '.join(names)}" if names else "")
    if label_key == LABEL_COLUMN:
        return (
            f"'{data}' is an scactive export: its uns['scactive'] holds the answer log of the "
            f"session it came from ({given}). This session starts from its {n_labeled} labels "
            f"in obs['{LABEL_COLUMN}'] as seed answers, each keeping who gave it and when; the "
            "undone, replaced and non-label answers stay in that log."
        )
    if label_key is None:
        return (
            f"'{data}' is an scactive export ({given} in its uns['scactive']); this session "
            f"starts without them. To start from its labels, give --label-key {LABEL_COLUMN} "
            "with a new --session file."
        )
    return None


def recorded_data(session: Path) -> tuple[str, dict]:
    """The data path and read options recorded in an existing session file."""
    from ..app import SessionStore
    from ..app._prepare import recorded_source

    if not Path(session).expanduser().is_file():
        raise InputError(
            f"The session file '{session}' does not exist yet: give the data to annotate "
            f"first, e.g. scactive query cells.h5ad --session {session}."
        )
    store = SessionStore(session)
    try:
        data, options = recorded_source(store.meta())
    finally:
        store.close()
    if data is None:
        raise InputError(
            f"The session file '{session}' does not record its data's path (it was made by "
            "an older scactive or from Python): give DATA before the options."
        )
    return data, options
