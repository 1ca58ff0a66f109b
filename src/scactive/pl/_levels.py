"""Macro-F1 per level of a cell-type hierarchy against labeled cells (figure 10).

Runs given a hierarchy (``scactive simulate --hierarchy``) record ``macro_f1_level1`` (the top
level) to ``macro_f1_levelN`` each round; results without them have no figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D

from scactive._errors import InputError
from scactive.metrics import level_columns
from scactive.pl._curves import (
    _metric_ylim,
    _prepare,
    _resolve_batch_size,
    set_x_axis,
    strategy_lines,
)
from scactive.pl._style import MODEL_LINESTYLES, Spread


def has_levels(results: pd.DataFrame) -> bool:
    """Whether ``results`` has per-level macro-F1 columns (a run with a hierarchy)."""
    return bool(level_columns(results.columns))


def level_curves(
    results: pd.DataFrame,
    model: str | None = None,
    *,
    batch_size: int | None = None,
    strategies: Sequence[str] | None = None,
    palette: dict[str, str] | None = None,
    spread: Spread = "minmax",
    ax: Axes | None = None,
) -> Figure | SubFigure:
    """Macro-F1 at each level of the hierarchy against labeled cells, one model.

    Each strategy keeps its colour; each level has its own line style (solid: level 1, the
    top; then dashed, dotted...), mean over seeds with the spread shaded.

    Parameters
    ----------
    results
        The ``results.csv`` table of ``scactive simulate --hierarchy`` (columns
        ``macro_f1_level1`` ...).
    model
        Model to show; default the first model in ``results``.
    batch_size
        Batch size to show; default the largest present.
    strategies, palette, spread
        As in :func:`~scactive.pl.learning_curves`.
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes: one line per strategy and level.
    """
    levels = level_columns(results.columns)
    if not levels:
        raise InputError(
            "results has no per-level macro-F1 columns (macro_f1_level1...): run scactive "
            "simulate with --hierarchy."
        )
    model, runs, _, strategies, palette = _prepare(
        results, model, ["n_labeled", *levels], strategies, palette
    )
    size = _resolve_batch_size(runs, batch_size)
    runs = runs[runs["batch_size"] == size]
    if ax is None:
        fig = Figure(figsize=(6.5, 4.0), layout="constrained")
        ax = fig.add_subplot()
    styles = [MODEL_LINESTYLES[i % len(MODEL_LINESTYLES)] for i in range(len(levels))]
    for column, style in zip(levels, styles, strict=True):
        strategy_lines(ax, runs, column, strategies, palette, spread, linestyle=style)
    handles = [Line2D([], [], color=palette[s], label=s) for s in strategies]
    handles += [
        Line2D([], [], color="black", linestyle=style, label=f"level {i}")
        for i, style in enumerate(styles, start=1)
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize="small",
        frameon=False,
    )
    set_x_axis(ax, "n_labeled")
    ax.set_ylabel("Macro F1 per level")
    _metric_ylim(ax, "macro_f1")
    ax.grid(alpha=0.3)
    ax.set_title(f"{model}: macro F1 per hierarchy level (batch size {size})")
    return ax.get_figure()
