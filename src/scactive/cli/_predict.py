"""``scactive predict``: a trained model's cell types for new data (CellTypist's ``annotate``).

::

    scactive export --session cells.scactive --out annotated.h5ad --model model.safetensors
    scactive predict model.safetensors new_cells.h5ad --out new_annotated.h5ad --csv calls.csv
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._errors import InputError
from .._predict_options import MIN_SHARED_GENES, UNKNOWN_BELOW, check_predict_options
from . import _options as opt
from . import app, console, fail, setup_logging

#: Label counts the summary lists, at most (the rest are summed in one row).
SHOW_LABELS = 15
#: Endings of data files: given as MODEL, the arguments were likely swapped.
DATA_SUFFIXES = {".h5ad", ".h5", ".csv", ".tsv", ".txt", ".loom", ".gz"}


@app.command("predict")
def predict_command(
    model: Annotated[
        Path,
        typer.Argument(
            help="A model file (.safetensors): scactive export --model, or "
            "scactive.models.save_model. It holds data only; reading it runs no code.",
            show_default=False,
        ),
    ],
    data: opt.Data,
    *,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The h5ad to write: the data (all cells, their own X) with the scactive_* "
            "obs columns, the probabilities in obsm['scactive_proba'].",
        ),
    ],
    csv: Annotated[
        Path | None,
        typer.Option(
            help="Also write the per-cell calls as CSV (- for standard output, or a pipe)."
        ),
    ] = None,
    unknown_below: Annotated[
        float,
        typer.Option(
            help="Cells whose most probable type has a lower probability are labeled "
            "'unknown' in scactive_call (0: never)."
        ),
    ] = UNKNOWN_BELOW,
    majority_vote: Annotated[
        bool,
        typer.Option(
            "--majority-vote",
            help="Also give each cluster of an over-clustering its most common label "
            "(scactive_majority_voting), as CellTypist does.",
        ),
    ] = False,
    over_clustering: Annotated[
        str | None,
        typer.Option(
            help="obs column with the clusters majority voting uses (default: Leiden clusters "
            "computed here, at CellTypist's resolution).",
            show_default=False,
        ),
    ] = None,
    min_shared_genes: Annotated[
        float,
        typer.Option(
            help="Refuse data holding fewer than this fraction of the model's genes (the "
            "missing ones are set to 0)."
        ),
    ] = MIN_SHARED_GENES,
    seed: Annotated[int, typer.Option(help="Random seed of the over-clustering.")] = 0,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Also read a model file of the earlier pickle format (joblib). Reading a "
            "pickle RUNS ANY CODE the file holds: use it only for a file from someone you trust.",
        ),
    ] = False,
    layer: opt.Layer = None,
    use_raw: opt.UseRaw = False,
    transpose: opt.Transpose = False,
    verbose: opt.Verbose = False,
) -> None:
    """Predict the cell type of every cell of DATA with a trained MODEL."""
    from ..app._export import check_export_targets

    setup_logging(verbose)
    try:
        check_predict_options(
            unknown_below=unknown_below,
            min_shared_genes=min_shared_genes,
            majority_vote=majority_vote,
            over_clustering=over_clustering,
            cli=True,
        )
        # refuse a target that would replace the data or the model before reading anything
        protected = [(Path(data), "the input data"), (model, "the model file")]
        targets = check_export_targets({"h5ad": out, "csv": csv}, protected)
        from .. import io
        from .._files import atomic_write, written_together
        from .._predict import predict
        from ..app._export import write_csv
        from ..models import load_model

        try:
            trained = load_model(model, trust_pickle=trust_pickle)
        except InputError as err:
            if model.suffix.lower() not in DATA_SUFFIXES:
                raise
            raise InputError(
                f"{err} MODEL comes first, then DATA: scactive predict model.safetensors {model}."
            ) from None
        adata = io.read(data, transpose=transpose)
        result = predict(
            adata,
            trained,
            unknown_below=unknown_below,
            majority_vote=majority_vote,
            over_clustering=over_clustering,
            min_shared_genes=min_shared_genes,
            layer=layer,
            use_raw=use_raw,
            rng=seed,
        )
        with written_together():  # both files, or (one failing) neither
            written = [atomic_write(targets["h5ad"], result.write_h5ad)]
            if "csv" in targets:
                columns = [c for c in result.obs.columns if c.startswith("scactive_")]
                written.append(write_csv(targets["csv"], result.obs[columns]))
    except InputError as err:
        fail(err)
    _summary(result, written)


def _summary(result, written: list[Path]) -> None:
    """Cells, genes shared, the label counts and the fraction unknown."""
    from rich.table import Table

    from .._predict import CALL, MAJORITY, UNS_KEY
    from .._targets import shown_path

    info = result.uns[UNS_KEY]
    n_cells = result.n_obs
    labels = result.obs[CALL].astype(str)
    n_unknown = int((labels == info["unknown_label"]).sum())
    missing = info["n_model_genes"] - info["n_shared_genes"]
    console.print(
        f"Predicted [bold]{n_cells:,}[/] cells with {info['n_shared_genes']:,} of the model's "
        f"{info['n_model_genes']:,} genes"
        + (f" ({missing:,} missing, set to 0)" if missing else "")
        + f"; {'counts normalised' if info['input_counts'] else 'log-normalised input'}."
    )
    table = Table(title=None, show_edge=False)
    table.add_column("scactive_call")
    table.add_column("cells", justify="right")
    table.add_column("fraction", justify="right")
    voting = MAJORITY in result.obs
    if voting:
        table.add_column("majority vote", justify="right")
        votes = result.obs[MAJORITY].astype(str).value_counts()
    counts = labels.value_counts()
    shown = counts.iloc[:SHOW_LABELS]
    for label, n in shown.items():
        row = [str(label), f"{n:,}", f"{n / n_cells:.1%}"]
        table.add_row(*row, *([f"{votes.get(label, 0):,}"] if voting else []))
    if len(counts) > SHOW_LABELS:
        rest = int(counts.iloc[SHOW_LABELS:].sum())
        others = f"{len(counts) - SHOW_LABELS} other labels"
        table.add_row(others, f"{rest:,}", f"{rest / n_cells:.1%}", *([""] if voting else []))
    console.print(table)
    console.print(
        f"{n_unknown / n_cells:.1%} of the cells are '{info['unknown_label']}' (confidence "
        f"below {info['unknown_below']:g}). Wrote {', '.join(map(shown_path, written))}.",
        highlight=False,
    )
