"""``scactive compare``: established annotation methods on the same cells and labeled sets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from .._errors import InputError, ToolError
from ..models._registry import DEFAULT_MODEL
from . import _options as opt
from . import app, console, setup_logging, split_list
from ._simulate import interrupted, read_run_data, run_guard


@app.command(cls=opt.ListingCommand)
@opt.with_data_choices
def compare(
    data: opt.Data,
    label_key: opt.LabelKey = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output folder. Without --from-simulation, it also holds the "
            "simulation run first. Re-running resumes.",
        ),
    ] = ...,  # type: ignore[assignment]
    methods: Annotated[
        str | None,
        typer.Option(
            help=f"Methods, comma-separated (default: {DEFAULT_MODEL}, every baseline and every "
            "real tool installed). {methods}.",
            show_default=False,
        ),
    ] = None,
    from_simulation: Annotated[
        Path | None,
        typer.Option(help="Read the split and labeled sets from this `scactive simulate` folder."),
    ] = None,
    budgets: Annotated[
        str, typer.Option(help="Labeled-set sizes taken from the active-learning runs.")
    ] = "100,300",
    strategies: Annotated[
        str,
        typer.Option(help="Strategies whose labeled sets are used, comma-separated: {strategies}."),
    ] = "random,entropy",
    model: Annotated[
        str | None,
        typer.Option(help="Learner of the active-learning runs (default: mlp2 / the first)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Cells per round of those runs (default: 9 / the smallest)."),
    ] = None,
    initial: Annotated[
        int, typer.Option(help="Cells labeled at the start of the simulation run here.")
    ] = 20,
    seeds: opt.Seeds = 3,
    query: Annotated[
        str | None,
        typer.Option(help="Cross-dataset mode: train on DATA, annotate this dataset."),
    ] = None,
    query_label_key: Annotated[
        str | None, typer.Option(help="obs column with the query's known cell types.")
    ] = None,
    label_map: Annotated[
        Path | None,
        typer.Option(
            help="CSV with columns 'reference' and 'query': which query type each reference "
            "type counts as when scoring a cross-dataset run."
        ),
    ] = None,
    data_choices: opt.DataChoices = opt.DataChoices(),
    progress: opt.Progress = True,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j", help="Method runs (and simulation runs) at once, e.g. the core count."
        ),
    ] = 1,
    plugin: opt.Plugins = None,
    verbose: opt.Verbose = False,
) -> None:
    """Compare the learners with established annotation methods on the same cells."""
    from .. import io
    from ..comparison import compare as run

    setup_logging(verbose)
    start = time.perf_counter()
    with run_guard(out, "method runs") as watch:
        try:
            adata, label_key = read_run_data(
                data, out, label_key=label_key, plugins=plugin, transpose=data_choices.transpose
            )
            query_data = (
                io.read(query, transpose=data_choices.transpose) if query is not None else None
            )
            if query_data is None and (query_label_key or label_map):
                raise InputError("--query-label-key and --label-map need --query.")
            table = run(
                adata,
                label_key=label_key,
                out=out,
                methods=split_list(methods) if methods is not None else None,
                from_simulation=from_simulation,
                budgets=split_list(budgets, int),
                strategies=split_list(strategies),
                model=model,
                batch_size=batch_size,
                initial=initial,
                seeds=seeds,
                query=query_data,
                query_label_key=query_label_key,
                label_map=read_label_map(label_map) if label_map is not None else None,
                **data_choices.preparation(),
                progress=progress,
                n_jobs=jobs,
                source=str(data),
            )
        except ToolError as err:  # a real tool failed on this data: its own message, no traceback
            if watch.caused(err):  # Ctrl-C reaches the tool's process too
                interrupted(out, "method runs")
            console.print(
                f"[bold red]Error:[/] {err}\nThe method runs that finished are kept; run the same "
                "command again to resume, or leave this method out with --methods.",
                highlight=False,
            )
            raise typer.Exit(code=1) from None
    console.print(
        f"[green]Done[/] in {time.perf_counter() - start:.0f} s: {table['method'].nunique()} "
        f"methods, {len(table)} rows. Table: [bold]{out / 'comparison.csv'}[/]; report: "
        f"[bold]{out / 'report.html'}[/]"
    )


def read_label_map(path: Path) -> dict[str, str]:
    """Reference type -> query type, from a CSV with columns ``reference`` and ``query``."""
    from ..io import read_small_table

    table = read_small_table(path, columns=("reference", "query"), what="label map")
    duplicated = table["reference"][table["reference"].duplicated()].unique()
    if len(duplicated):
        raise InputError(
            f"The label map '{path}' maps {list(duplicated)} more than once; give each reference "
            "type one query type."
        )
    return dict(zip(table["reference"], table["query"], strict=True))
