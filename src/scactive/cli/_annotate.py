"""``scactive query``, ``teach`` and ``export``: an annotation session from the shell.

The session file keeps the answers and records where its data came from (path, read options
and checksum): ``DATA`` is needed only to create a session, or to point at data that moved. A
round trip::

    scactive query cells.h5ad --session cells.scactive --n 20 > ask.csv
    # fill a 'label' column in ask.csv (or write cell,label rows), then
    scactive teach ask.csv --session cells.scactive
    scactive export --session cells.scactive --out annotated.h5ad
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from .._errors import InputError
from .._targets import STDOUT, shown_path
from . import _options as opt
from . import app, console, fail, setup_logging
from ._session_args import (
    Annotator,
    Learner,
    Levels,
    Markers,
    OptionalData,
    Seed,
    SeedLabels,
    SessionFile,
    UnknownBelow,
    open_session_over,
    recorded_data,
    set_unknown_below,
)


@app.command(cls=opt.ListingCommand)
def query(
    data: OptionalData = None,
    *,
    session: SessionFile,
    n: Annotated[int, typer.Option("--n", "-n", help="Cells to ask about.")] = 20,
    strategy: Annotated[
        str,
        typer.Option(help="Query strategy once two types are labeled: {strategies}."),
    ] = "entropy",
    label_key: SeedLabels = None,
    markers: Markers = None,
    hierarchy: Levels = None,
    learner: Learner = None,
    seed: Seed = None,
    layer: opt.Layer = None,
    use_raw: opt.UseRaw = False,
    transpose: opt.Transpose = False,
    plugin: opt.Plugins = None,
    verbose: opt.Verbose = False,
) -> None:
    """Print the next cells to label as CSV on stdout (retrains first when labels changed).

    Columns: cell, strategy, then predicted and confidence once a model is trained, then
    umap1, umap2. Until two cell types are labeled the cells spread across clusters.
    """
    from ..app._record import remember_settings

    setup_logging(verbose)
    try:
        opt.load_plugins(plugin)
        with open_session_over(
            data,
            session,
            label_key=label_key,
            markers=markers,
            hierarchy=hierarchy,
            learner=learner,
            seed=seed,
            layer=layer,
            use_raw=use_raw,
            transpose=transpose,
        ) as s:
            trained = s.ensure_trained()
            if trained and not trained.get("restored"):
                console.print(
                    f"Trained round {trained['round']} on {trained['n_labeled']} labeled cells "
                    f"of {trained['n_types']} types; estimated macro-F1 "
                    f"{_estimate(trained, len(s.cells))}."
                )
            cells = s.next_batch(n, strategy)
            remember_settings(s.path, strategy=strategy, batch_size=n)  # for exports
            if not cells:
                console.print("Every cell has an answer: nothing left to ask.")
            table = s.embedding().set_index("cell").loc[cells]
            status = s.status()
            table.insert(
                0, "strategy", "cold-start" if len(status["labels_per_type"]) < 2 else strategy
            )
            predictions = s.predictions()
            if len(predictions):
                predictions = predictions.set_index("cell").loc[cells]
                table.insert(1, "predicted", predictions["predicted"])
                table.insert(2, "confidence", predictions["confidence"].round(4))
    except InputError as err:
        fail(err)
    sys.stdout.write(table.to_csv(index_label="cell", float_format="%.4g"))


@app.command()
def teach(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="The data (optional once the session exists), then a CSV with columns "
            "cell,label (optional: kind = label, unsure, doublet or skip; strategy). Other "
            "columns are ignored, so query's output with a label column added will do.",
            metavar="[DATA] ANSWERS",
            show_default=False,
        ),
    ],
    *,
    session: SessionFile,
    label_key: SeedLabels = None,
    markers: Markers = None,
    hierarchy: Levels = None,
    annotator: Annotator = None,
    layer: opt.Layer = None,
    use_raw: opt.UseRaw = False,
    transpose: opt.Transpose = False,
    verbose: opt.Verbose = False,
) -> None:
    """Record answers from a CSV: all rows or, if any row is bad, none."""
    from ..app._labels import check_annotator, listed_problems

    setup_logging(verbose)
    try:
        if not 1 <= len(paths) <= 2:
            raise InputError(
                f"teach takes [DATA] ANSWERS (one or two paths); got {len(paths)}: "
                "scactive teach answers.csv --session S."
            )
        data, answers = (None, Path(paths[0])) if len(paths) == 1 else (paths[0], Path(paths[1]))
        name = check_annotator(annotator)
        rows = [{**row, "annotator": name} for row in _read_answers(answers)]
        with open_session_over(
            data,
            session,
            label_key=label_key,
            markers=markers,
            hierarchy=hierarchy,
            layer=layer,
            use_raw=use_raw,
            transpose=transpose,
        ) as s:
            problems = s.validate_answers(rows)
            if problems:
                shown = listed_problems(problems, first=2, word="line")  # line 1: the header
                raise InputError(
                    f"'{answers}': {len(problems)} of {len(rows)} rows are invalid, so nothing "
                    f"was recorded. {shown}. Fix these rows and run teach again."
                )
            before = set(s.labels()["cell"])
            vocabulary = {v["label"] for v in s.status()["vocabulary"]}
            s.answer_many(rows)
            status = s.status()
    except InputError as err:
        fail(err)
    kinds = Counter(r["kind"] or "label" for r in rows)
    relabeled = len({r["cell"] for r in rows} & before)
    new_types = [v["label"] for v in status["vocabulary"] if v["label"] not in vocabulary]
    typer.echo(
        f"Recorded {len(rows)} answers from '{answers}' "
        f"({', '.join(f'{n} {k}' for k, n in kinds.items())}; {relabeled} relabeled cells)."
    )
    if new_types:
        typer.echo(f"New cell types: {', '.join(map(repr, new_types))}.")
    typer.echo(
        f"The session has {status['n_labeled']} labeled cells of "
        f"{len(status['labels_per_type'])} types ({status['n_answered']} answered of "
        f"{status['n_cells']})."
    )


@app.command("export", cls=opt.ListingCommand)
def export_session(
    data: OptionalData = None,
    *,
    session: SessionFile,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The annotated h5ad to write (all cells).")
    ],
    csv: Annotated[
        Path | None,
        typer.Option(help="Also write the labels as CSV (- for standard output, or a pipe)."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Also write the trained model: a .safetensors model file, data only (reading "
            "it runs no code), for scactive predict."
        ),
    ] = None,
    learner: Learner = None,
    unknown_below: UnknownBelow = None,
    layer: opt.Layer = None,
    use_raw: opt.UseRaw = False,
    transpose: opt.Transpose = False,
    plugin: opt.Plugins = None,
    verbose: opt.Verbose = False,
) -> None:
    """Write the data with the session's labels and predictions (scactive_* obs columns)."""
    from ..app._export import check_export_targets, protected_paths

    setup_logging(verbose)
    try:
        opt.load_plugins(plugin)
        # refuse a target that would replace the data or the session before reading anything
        source = data if data is not None else recorded_data(session)[0]
        targets = {"h5ad": out, "csv": csv, "model": model}
        check_export_targets(targets, protected_paths(Path(session).expanduser(), source))
        with open_session_over(
            data, session, learner=learner, layer=layer, use_raw=use_raw, transpose=transpose
        ) as s:
            set_unknown_below(s, unknown_below)
            s.ensure_trained()  # predictions for the current labels (when two types are)
            written = s.export(out, csv, model)  # with what the files hold: one snapshot
    except InputError as err:
        fail(err)
    typer.echo(
        f"Wrote {', '.join(map(shown_path, written.values()))} "
        f"({written.n_labeled} labeled cells of {len(written.labels_per_type)} types).",
        err=STDOUT in map(str, written.values()),  # the CSV alone on standard output
    )


def _estimate(trained: dict, n_cells: int) -> str:
    """A round's estimated macro-F1 (of the model on the unlabeled cells), or why there is
    none: it needs two labeled types and unlabeled cells to be measured on."""
    estimate = trained.get("estimated_f1")
    if estimate is not None:
        return f"{estimate:.1%}"
    if trained["n_types"] < 2:
        return "n/a (one type labeled)"
    if trained["n_labeled"] >= n_cells:
        return "n/a (every cell is labeled: no unlabeled cell is left to estimate it on)"
    return "n/a (the cells it is measured on are all labeled)"


def _read_answers(path: Path) -> list[dict]:
    from ..io import read_small_table

    table = read_small_table(
        path, columns=("cell", "label"), what="answers file", optional="'kind', 'strategy'"
    )
    if table.empty:
        raise InputError(f"The answers file '{path}' holds no rows.")
    rows, seen = [], {}
    for line, record in enumerate(table.to_dict("records"), start=2):
        kind = record.get("kind", "").strip().lower() or "label"
        label = record["label"] if kind == "label" or record["label"].strip() else None
        strategy = record.get("strategy", "").strip() or None
        row = {"cell": record["cell"].strip(), "label": label, "kind": kind, "strategy": strategy}
        previous = seen.get(row["cell"])
        if previous is not None:
            first_line, first = previous
            if (first["label"], first["kind"]) != (row["label"], row["kind"]):
                raise InputError(
                    f"'{path}' answers cell {row['cell']!r} twice, differently: line "
                    f"{first_line} says {_said(first)}, line {line} says {_said(row)}. Keep one "
                    "of the two lines; nothing was recorded."
                )
            continue  # the same answer twice: once is enough
        seen[row["cell"]] = (line, row)
        rows.append(row)
    return rows


def _said(row: dict) -> str:
    return repr(row["label"]) if row["kind"] == "label" else f"kind {row['kind']!r}"
