"""``scactive simulate``: the paper's experiment grid with a simulated oracle."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated

import typer

from .._errors import InputError
from . import app, console, fail, setup_logging, split_list


@app.command()
def simulate(
    data: Annotated[
        str,
        typer.Argument(
            help="h5ad, 10x .h5 or mtx folder, csv/tsv, loom, or a bundled dataset name."
        ),
    ] = "pbmc68k_reduced",
    label_key: Annotated[
        str | None,
        typer.Option(
            "--label-key", "-l", help="obs column with the cell types (bundled data: preset)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output folder (default: runs/<data name>). Re-running resumes."
        ),
    ] = None,
    models: Annotated[
        str,
        typer.Option(
            help="Learners, comma-separated: mlp2, mlp3, mlp3-ln, "
            "mlp2-paper, mlp3-paper, mlp3-ln-paper, logreg, "
            "logreg-pca."
        ),
    ] = "mlp2",
    strategies: Annotated[
        str,
        typer.Option(
            help="Strategies, comma-separated: random, entropy, margin, least-confidence, qbc, "
            "bald, diversity, wkmc."
        ),
    ] = "random,entropy,qbc,diversity,wkmc",
    batch_sizes: Annotated[str, typer.Option(help="Cells per round, comma-separated.")] = "9,27,81",
    rounds: Annotated[int, typer.Option(help="Query rounds after round 0.")] = 10,
    seeds: Annotated[int, typer.Option(help="Replicates (seeds 0 .. N-1).")] = 3,
    initial: Annotated[
        float,
        typer.Option(help="Initially labeled: a fraction of the pool (below 1) or a cell count."),
    ] = 0.2,
    val_fraction: Annotated[float, typer.Option(help="Held-out validation fraction.")] = 0.2,
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
    layer: Annotated[str | None, typer.Option(help="Read this layer instead of X.")] = None,
    use_raw: Annotated[bool, typer.Option("--use-raw", help="Read .raw instead of X.")] = False,
    transpose: Annotated[bool, typer.Option(help="Text tables with genes in rows.")] = False,
    remove_mito: Annotated[bool, typer.Option(help="Drop mitochondrial genes.")] = True,
    remove_ribo: Annotated[bool, typer.Option(help="Drop ribosomal genes.")] = True,
    remove_hemoglobin: Annotated[bool, typer.Option(help="Drop hemoglobin genes.")] = True,
    min_genes: Annotated[int, typer.Option(help="Drop cells with fewer detected genes.")] = 500,
    min_cells: Annotated[int, typer.Option(help="Drop genes seen in fewer pool cells.")] = 10,
    n_top_genes: Annotated[int, typer.Option(help="Highly variable genes kept.")] = 2000,
    n_pcs: Annotated[int, typer.Option(help="PCA components.")] = 50,
    ceiling: Annotated[bool, typer.Option(help="Also train on the whole pool.")] = True,
    report: Annotated[bool, typer.Option(help="Write report.html and figures.")] = True,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j", help="Grid cells run at once, one process each (e.g. the core count)."
        ),
    ] = 1,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
) -> None:
    """Run active learning with a simulated oracle on labeled data and write a report."""
    from .. import io
    from .._simulate import simulate as run

    setup_logging(verbose)
    start = time.perf_counter()
    try:
        adata = io.read(data, transpose=transpose)
        if label_key is None:
            label_key = adata.uns.get("scactive_default_label_key")
            if label_key is None:
                raise InputError(
                    f"Give the label column with --label-key; obs columns: "
                    f"{list(adata.obs.columns)}."
                )
        out = out if out is not None else Path("runs") / Path(data).name.split(".")[0]
        with warnings.catch_warnings():
            warnings.simplefilter("default", UserWarning)
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
                val_fraction=val_fraction,
                stop_fraction=stop_fraction,
                epochs=epochs,
                retrain=retrain,
                use_pca=pca_clustering,
                layer=layer,
                use_raw=use_raw,
                remove_mito=remove_mito,
                remove_ribo=remove_ribo,
                remove_hemoglobin=remove_hemoglobin,
                min_genes=min_genes,
                min_cells=min_cells,
                n_top_genes=n_top_genes,
                n_pcs=n_pcs,
                ceiling=ceiling,
                report=report,
                progress=progress,
                n_jobs=jobs,
                source=str(data),
            )
    except InputError as err:
        fail(err)
    n_runs = table.drop_duplicates(["model", "strategy", "batch_size", "seed"]).shape[0]
    console.print(
        f"[green]Done[/] in {time.perf_counter() - start:.0f} s: {n_runs} runs, "
        f"{len(table)} rows. Results in [bold]{out}[/]"
        + (f"; report: [bold]{out / 'report.html'}[/]" if report else "")
    )
