"""Options shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from .._errors import InputError

Data = Annotated[
    str,
    typer.Argument(help="h5ad, 10x .h5 or mtx folder, csv/tsv, loom, or a bundled dataset name."),
]
LabelKey = Annotated[
    str | None,
    typer.Option(
        "--label-key", "-l", help="obs column with the cell types (bundled data: preset)."
    ),
]
Layer = Annotated[str | None, typer.Option(help="Read this layer instead of X.")]
UseRaw = Annotated[bool, typer.Option("--use-raw", help="Read .raw instead of X.")]
Transpose = Annotated[bool, typer.Option(help="Text tables with genes in rows.")]
RemoveMito = Annotated[bool, typer.Option(help="Drop mitochondrial genes.")]
RemoveRibo = Annotated[bool, typer.Option(help="Drop ribosomal genes.")]
RemoveHemoglobin = Annotated[bool, typer.Option(help="Drop hemoglobin genes.")]
MinGenes = Annotated[int, typer.Option(help="Drop cells with fewer detected genes.")]
MinCells = Annotated[int, typer.Option(help="Drop genes seen in fewer pool cells.")]
NTopGenes = Annotated[int, typer.Option(help="Highly variable genes kept.")]
NPcs = Annotated[int, typer.Option(help="PCA components.")]
ValFraction = Annotated[float, typer.Option(help="Held-out validation fraction.")]
Seeds = Annotated[int, typer.Option(help="Replicates (seeds 0 .. N-1).")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]
Jobs = Annotated[
    int,
    typer.Option(
        "--jobs", "-j", help="Grid cells run at once, one process each (e.g. the core count)."
    ),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")]


def label_key_or_default(adata, label_key: str | None) -> str:
    """The given label column, or the bundled dataset's preset one."""
    if label_key is None:
        label_key = adata.uns.get("scactive_default_label_key")
        if label_key is None:
            raise InputError(
                f"Give the label column with --label-key; obs columns: {list(adata.obs.columns)}."
            )
    return label_key
