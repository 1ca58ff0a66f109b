"""A metric against the number of labeled cells, for docs and quick comparisons."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from scactive.pl._curves import (
    _BASE_COLUMNS,
    _metric_ylim,
    _prepare,
    _resolve_batch_size,
    check_x,
    set_x_axis,
    strategy_lines,
)
from scactive.pl._style import (
    MODEL_LINESTYLES,
    Spread,
    active_rows,
    axes_legend_outside,
    draw_ceiling,
    metric_label,
    pick_model,
    require_columns,
    strategy_palette,
)


def labels_curve(
    results: pd.DataFrame,
    x: str = "n_labeled",
    metric: str = "macro_f1",
    *,
    model: str | Sequence[str] | None = None,
    batch_size: int | None = None,
    strategies: Sequence[str] | None = None,
    palette: dict[str, str] | None = None,
    spread: Spread = "minmax",
    ceiling: bool = True,
    ax: Axes | None = None,
) -> Figure | SubFigure:
    """A metric against the number (or fraction) of labeled cells, one line per strategy.

    Parameters
    ----------
    results
        The ``results.csv`` table of ``scactive simulate``.
    x
        ``"n_labeled"``, ``"frac_labeled"`` (drawn as %) or ``"round"``.
    metric
        Metric column on the y axis.
    model
        One model, several, or ``None`` for all; with several models each gets its own line
        style.
    batch_size
        Batch size to show; default the largest present.
    strategies, palette, spread
        As in :func:`learning_curves`.
    ceiling
        Draw each model's ceiling as a horizontal line.
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.
    """
    check_x(x)
    require_columns(results, [*_BASE_COLUMNS, x, metric], arg="results")
    all_models = [str(m) for m in pd.unique(results["model"].dropna())]
    if model is None:
        models = all_models
    elif isinstance(model, str):
        models = [pick_model(results, model)]
    else:
        models = [pick_model(results, m) for m in model]
    if palette is None:
        palette = strategy_palette(active_rows(results)["strategy"].dropna().unique())
    if ax is None:
        fig = Figure(figsize=(6.5, 4.0), layout="constrained")
        ax = fig.add_subplot()
    styles = {m: MODEL_LINESTYLES[i % len(MODEL_LINESTYLES)] for i, m in enumerate(models)}
    several = len(models) > 1
    for m in models:
        _, runs, ceil, strats, _ = _prepare(results, m, [metric], strategies, palette)
        size = _resolve_batch_size(runs, batch_size)
        runs = runs[runs["batch_size"] == size]
        suffix = f" ({m})" if several else ""
        strategy_lines(
            ax, runs, metric, strats, palette, spread, x=x, suffix=suffix, linestyle=styles[m]
        )
        if ceiling:
            draw_ceiling(
                ax,
                ceil,
                metric,
                color="black",
                label=f"ceiling ({m})" if several else "ceiling",
                linestyle="--" if not several else styles[m],
                spread=spread,
            )
    set_x_axis(ax, x)
    ax.set_ylabel(metric_label(metric))
    _metric_ylim(ax, metric)
    ax.grid(alpha=0.3)
    axes_legend_outside(ax)
    return ax.get_figure()
