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
OptionalData = Annotated[
    str | None,
    typer.Argument(
        help="h5ad, 10x .h5 or mtx folder, csv/tsv, loom, or a bundled dataset name. Needed to "
        "create a session; afterwards the session's recorded path is read (give DATA if the "
        "file moved).",
        show_default=False,
    ),
]


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
):
    """Read ``data`` (default: the path the session recorded) and open the session over it."""
    from .. import io
    from ..app import open_session, read_markers

    if data is None:
        data, options = recorded_data(session)
        transpose = transpose or bool(options.get("transpose"))
        layer = layer if layer is not None else options.get("layer")
        use_raw = use_raw or bool(options.get("use_raw"))
    adata = io.read(data, transpose=transpose)
    return open_session(
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
    )


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
