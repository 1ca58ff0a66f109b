"""``scactive simulate``: the paper's experiment grid with a simulated oracle."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from .._errors import DiskFull, InputError, disk_full, is_disk_full
from .._files import check_out_folder
from ..models._registry import DEFAULT_MODEL
from ..strategies._registry import DEFAULT_STRATEGIES
from . import _options as opt
from . import app, console, fail, setup_logging, split_list


@app.command(cls=opt.ListingCommand)
@opt.with_data_choices
def simulate(
    data: Annotated[
        str | None,
        typer.Argument(
            help="h5ad, 10x .h5 or mtx folder, csv/tsv, loom, or a dataset name "
            "(synthetic:CELLS\\[xGENES] generates one) \\[default: the bundled demo, "
            "pbmc68k_reduced]",
            show_default=False,
        ),
    ] = None,
    label_key: opt.LabelKey = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output folder (default: runs/<data name>). Re-running resumes."
        ),
    ] = None,
    models: Annotated[
        str, typer.Option(help="Learners, comma-separated: {learners}.")
    ] = DEFAULT_MODEL,
    strategies: Annotated[
        str, typer.Option(help="Strategies, comma-separated: {strategies}.")
    ] = ",".join(DEFAULT_STRATEGIES),
    batch_sizes: Annotated[str, typer.Option(help="Cells per round, comma-separated.")] = "9,27,81",
    rounds: Annotated[int, typer.Option(help="Query rounds after round 0.")] = 10,
    seeds: opt.Seeds = 3,
    initial: Annotated[
        float,
        typer.Option(help="Initially labeled: a fraction of the pool (below 1) or a cell count."),
    ] = 0.2,
    initial_strategy: opt.InitialStrategy = "random",
    markers: opt.MarkersFile = None,
    hierarchy: opt.HierarchyFile = None,
    stop_fraction: Annotated[
        float | None,
        typer.Option(help="Query until this fraction of the pool is labeled (overrides --rounds)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per round for MLP learners.")] = None,
    retrain: Annotated[
        str, typer.Option(help="'scratch' (new learner each round) or 'continue' (keep training).")
    ] = "scratch",
    pca_clustering: Annotated[
        bool, typer.Option(help="Cluster on the pool PCA (diversity, wkmc); else on the features.")
    ] = True,
    data_choices: opt.DataChoices = opt.DataChoices(),
    ceiling: Annotated[bool, typer.Option(help="Also train on the whole pool.")] = True,
    report: Annotated[bool, typer.Option(help="Write report.html and figures.")] = True,
    progress: opt.Progress = True,
    jobs: opt.Jobs = 1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="A Dask scheduler (tcp://HOST:8786): run the grid cells on its workers, which "
            "read DATA from the same path (see docs/distributed.md).",
        ),
    ] = None,
    plugin: opt.Plugins = None,
    verbose: opt.Verbose = False,
) -> None:
    """Run active learning with a simulated oracle on labeled data and write a report."""
    from .._simulate import simulate as run

    setup_logging(verbose)
    start = time.perf_counter()
    if data is None:
        data, data_choices = demo(data_choices)
    out = out if out is not None else Path("runs") / Path(data).name.split(".")[0]
    with run_guard(out, "grid cells"):
        if markers is not None:
            from ..app import read_markers

            markers = read_markers(markers)
        if hierarchy is not None:
            from .._hierarchy import read_hierarchy

            hierarchy = read_hierarchy(hierarchy)
        adata, label_key = read_run_data(
            data, out, label_key=label_key, plugins=plugin, transpose=data_choices.transpose
        )
        table = run(
            adata,
            label_key=label_key,
            out=out,
            models=split_list(models),
            strategies=split_list(strategies),
            batch_sizes=split_list(batch_sizes, int),
            seeds=seeds,
            n_rounds=rounds,
            initial=initial,
            initial_strategy=initial_strategy,
            markers=markers,
            stop_fraction=stop_fraction,
            epochs=epochs,
            retrain=retrain,
            use_pca=pca_clustering,
            **data_choices.preparation(),
            ceiling=ceiling,
            hierarchy=hierarchy,
            report=report,
            progress=progress,
            n_jobs=jobs,
            scheduler=scheduler,
            data_path=data,
            transpose=data_choices.transpose,
            source=str(data),
        )
    n_runs = table.drop_duplicates(["model", "strategy", "batch_size", "seed"]).shape[0]
    console.print(
        f"[green]Done[/] in {time.perf_counter() - start:.0f} s: {n_runs} runs, "
        f"{len(table)} rows. Results in [bold]{out}[/]"
        + (f"; report: [bold]{out / 'report.html'}[/]" if report else "")
    )


def read_run_data(
    data: str, out: Path, *, label_key: str | None, plugins, transpose: bool
) -> tuple:
    """What a run does before its work: import the ``--plugin`` modules, check ``--out``
    (before the data is read: a bad folder fails at once), read the data and choose its label
    column. Returns the AnnData and the label column."""
    from .. import io

    opt.load_plugins(plugins)
    check_out_folder(out)
    adata = io.read(data, transpose=transpose)
    return adata, opt.label_key_or_default(adata, label_key)


DEMO = "pbmc68k_reduced"


def demo(choices: opt.DataChoices) -> tuple[str, opt.DataChoices]:
    """The bundled demo, said so: scanpy's 700 PBMCs, whose 765 genes need no gene filter."""
    console.print(
        f"No DATA given: running the bundled demo [bold]{DEMO}[/] (700 PBMCs shipped with "
        "scanpy, 765 genes, labels in bulk_labels"
        + (", --min-genes 0" if choices.min_genes is None else "")
        + "). Give a file to run on your own data: scactive simulate DATA --label-key COLUMN."
    )
    if choices.min_genes is None:
        import dataclasses

        choices = dataclasses.replace(choices, min_genes=0)
    return DEMO, choices


@contextlib.contextmanager
def run_guard(out: Path, finished: str) -> Iterator[InterruptWatch]:
    """A run as the user sees it: each of the library's warnings shown once per place; an
    input error is a message and exit 2; Ctrl-C (or an error a library raised for it) says
    what is kept in ``out`` and exits 130."""
    with InterruptWatch() as watch, warnings.catch_warnings():
        warnings.simplefilter("default", UserWarning)
        try:
            yield watch
        except typer.Exit:  # the command's own exit, its message printed
            raise
        except InputError as err:
            if watch.caused(err):  # a reader failing because of the Ctrl-C
                interrupted(out, finished)
            fail(_resumable(err, out, finished))
        except KeyboardInterrupt:
            interrupted(out, finished)
        except Exception as err:
            if watch.caused(err):
                interrupted(out, finished)
            if is_disk_full(err):  # a write of a library's (a cache, a temporary file)
                where = getattr(err, "filename", None) or out
                fail(_resumable(disk_full(where, err), out, finished))
            raise


def _resumable(err: InputError, out: Path, finished: str) -> InputError:
    """A full disk's message, with what is kept of the run and how to go on."""
    if not isinstance(err, DiskFull):
        return err
    return DiskFull(f"{err} The finished {finished} are kept in '{out}': running it again resumes.")


def interrupted(out: Path, finished: str) -> None:
    """After Ctrl-C: one line on what is kept and how to go on; exit with code 130."""
    console.print(
        f"[bold yellow]Interrupted.[/] The finished {finished} are kept in '{out}'; run the "
        "same command again to resume.",
        highlight=False,
    )
    raise typer.Exit(code=130)


class InterruptWatch:
    """Notes a Ctrl-C while active, for the errors some libraries raise in place of the
    ``KeyboardInterrupt`` (numba's ``SystemError``, pandas' C reader's ``ParserError``)."""

    def __init__(self) -> None:
        self.seen = False
        self._previous = None

    def __enter__(self) -> InterruptWatch:
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.default_int_handler and threading.current_thread() is (
            threading.main_thread()
        ):
            self._previous = previous
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.seen = True
        signal.default_int_handler(signum, frame)

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def caused(self, err: BaseException) -> bool:
        """Whether ``err`` came from a Ctrl-C."""
        seen = set()
        while err is not None and id(err) not in seen:
            if isinstance(err, KeyboardInterrupt):
                return True
            seen.add(id(err))
            err = err.__cause__ or err.__context__
        return self.seen
