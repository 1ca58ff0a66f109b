"""Learning curves: metrics against labeled cells (or the labeled fraction), figures 2-4."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import MaxNLocator

from scactive._errors import InputError, unknown_name
from scactive.pl._style import (
    Spread,
    active_rows,
    aggregate_over_seeds,
    batch_sizes_of,
    ceiling_rows,
    draw_ceiling,
    legend_outside,
    metric_label,
    new_figure,
    order_strategies,
    pick_model,
    plot_mean_spread,
    require_columns,
    strategy_palette,
    unique_handles,
)

_BASE_COLUMNS = ("model", "strategy", "batch_size", "seed", "round")
DEFAULT_METRICS = ("accuracy", "macro_f1", "loss")
X_COLUMNS = ("n_labeled", "frac_labeled", "round")
"""Columns a learning curve may run along; ``frac_labeled`` is drawn as a percentage."""


def _prepare(
    results: pd.DataFrame,
    model: str | None,
    metrics: Sequence[str],
    strategies: Sequence[str] | None,
    palette: dict[str, str] | None,
) -> tuple[str, pd.DataFrame, pd.DataFrame, list[str], dict[str, str]]:
    """Validate inputs; return model, its active rows, its ceiling rows, strategies, palette."""
    if isinstance(metrics, str):
        metrics = (metrics,)
    require_columns(results, [*_BASE_COLUMNS, *metrics], arg="results")
    model = pick_model(results, model)
    rows = results[results["model"] == model]
    runs = active_rows(rows)
    present = order_strategies(runs["strategy"].dropna().unique())
    if strategies is None:
        strategies = present
    else:
        for s in strategies:
            if s not in present:
                raise unknown_name("strategy", s, present, plural="strategies")
        strategies = list(strategies)
    if palette is None:
        palette = strategy_palette(active_rows(results)["strategy"].dropna().unique())
    return model, runs, ceiling_rows(rows), strategies, palette


def _resolve_batch_size(runs: pd.DataFrame, batch_size: int | None) -> int:
    sizes = batch_sizes_of(runs)
    if not sizes:
        raise InputError("results has no active-learning rows with a batch_size; nothing to plot.")
    if batch_size is None:
        return sizes[-1]
    if int(batch_size) not in sizes:
        raise InputError(f"batch_size={batch_size!r} is not in results; available: {sizes}.")
    return int(batch_size)


def check_x(x: str) -> None:
    """Raise :class:`InputError` unless ``x`` is one of :data:`X_COLUMNS`."""
    if x not in X_COLUMNS:
        raise InputError(f"x={x!r} is not valid; expected 'n_labeled', 'frac_labeled' or 'round'.")


def set_x_axis(ax: Axes, x: str) -> None:
    """Label the x axis for column ``x``; counts and rounds get integer ticks."""
    ax.set_xlabel(metric_label(x))
    if x != "frac_labeled":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _target_figure(fig: Figure | SubFigure | None, nrows: int, ncols: int) -> Figure | SubFigure:
    if fig is None:
        return new_figure(nrows, ncols)
    if fig.axes:
        raise InputError("fig already has axes; pass an empty Figure (or SubFigure) or fig=None.")
    return fig


def panel_grid(
    fig: Figure | SubFigure | None, n_panels: int, max_cols: int = 4
) -> tuple[Figure | SubFigure, list[Axes]]:
    """``n_panels`` axes sharing both axes, at most ``max_cols`` a row, in an empty figure."""
    ncols = max(1, min(int(max_cols), n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = _target_figure(fig, nrows, ncols)
    axes = list(fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel())
    for ax in axes[n_panels:]:
        ax.remove()
    return fig, axes[:n_panels]


def _metric_ylim(ax: Axes, metric: str) -> None:
    if metric != "loss" and not metric.startswith("n_"):
        lo, hi = ax.get_ylim()
        ax.set_ylim(max(lo, -0.02), min(hi, 1.02))


def strategy_lines(
    ax: Axes,
    runs: pd.DataFrame,
    metric: str,
    strategies: Sequence[str],
    palette: dict[str, str],
    spread: Spread,
    *,
    x: str = "n_labeled",
    suffix: str = "",
    **line_kw: object,
) -> None:
    """One mean line with its spread over seeds per strategy, against ``x``; each line is
    labelled with the strategy's name followed by ``suffix``."""
    scale = 100.0 if x == "frac_labeled" else 1.0
    for strategy in strategies:
        sub = runs[runs["strategy"] == strategy]
        if not sub.empty:
            agg = aggregate_over_seeds(sub, metric, by=("strategy",), x=x)
            plot_mean_spread(
                ax,
                agg,
                x,
                color=palette[strategy],
                label=f"{strategy}{suffix}",
                spread=spread,
                scale_x=scale,
                **line_kw,
            )


def learning_curves(
    results: pd.DataFrame,
    model: str | None = None,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    x: str = "n_labeled",
    batch_size: int | None = None,
    strategies: Sequence[str] | None = None,
    palette: dict[str, str] | None = None,
    spread: Spread = "minmax",
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Figure 2: metrics per strategy against labeled cells, one panel per metric, one model.

    Parameters
    ----------
    results
        The ``results.csv`` table of ``scactive simulate``.
    model
        Model to show; default the first model in ``results``.
    metrics
        Metric columns, one panel each.
    x
        Column on the x axis: ``"n_labeled"`` (labeled cells, default), ``"frac_labeled"``
        (drawn as % of the pool) or ``"round"``.
    batch_size
        Batch size to show; default the largest present.
    strategies
        Strategies to draw, in this order; default all present (``random`` first).
    palette
        Strategy to colour; default :func:`~scactive.pl.strategy_palette` of all strategies.
    spread
        Shaded spread over seeds: ``"minmax"``, ``"std"`` or ``None``.
    fig
        Empty figure to draw into; default a new one.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric; each has one line per strategy plus the dashed ceiling line.
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    check_x(x)
    model, runs, ceiling, strategies, palette = _prepare(
        results, model, [*metrics, x], strategies, palette
    )
    batch_size = _resolve_batch_size(runs, batch_size)
    runs = runs[runs["batch_size"] == batch_size]
    fig = _target_figure(fig, 1, len(metrics))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        strategy_lines(ax, runs, metric, strategies, palette, spread, x=x)
        draw_ceiling(ax, ceiling, metric, spread=spread)
        set_x_axis(ax, x)
        ax.set_ylabel(metric_label(metric))
        _metric_ylim(ax, metric)
        ax.grid(alpha=0.3)
    handles, labels = unique_handles(axes)
    legend_outside(fig, handles, labels, title="strategy")
    fig.suptitle(f"{model}: batch size {batch_size}")
    return fig


def metric_grid(
    results: pd.DataFrame,
    model: str | None = None,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    x: str = "n_labeled",
    batch_sizes: Sequence[int] | None = None,
    strategies: Sequence[str] | None = None,
    palette: dict[str, str] | None = None,
    spread: Spread = "minmax",
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Figure 3: metrics (rows) by batch size (columns) against labeled cells, one line per
    strategy.

    Parameters
    ----------
    results
        The ``results.csv`` table of ``scactive simulate``.
    model
        Model to show; default the first model in ``results``.
    metrics
        Metric columns, one row of panels each.
    batch_sizes
        Batch sizes, one column each; default all present, ascending.
    x, strategies, palette, spread, fig
        As in :func:`learning_curves`.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(metrics) * len(batch_sizes)`` axes, rows sharing their y axis.
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    check_x(x)
    model, runs, ceiling, strategies, palette = _prepare(
        results, model, [*metrics, x], strategies, palette
    )
    sizes = [_resolve_batch_size(runs, b) for b in (batch_sizes or batch_sizes_of(runs) or [None])]
    fig = _target_figure(fig, len(metrics), len(sizes))
    axes = fig.subplots(len(metrics), len(sizes), squeeze=False, sharex="col", sharey="row")
    for i, metric in enumerate(metrics):
        for j, size in enumerate(sizes):
            ax = axes[i, j]
            sub = runs[runs["batch_size"] == size]
            strategy_lines(ax, sub, metric, strategies, palette, spread, x=x)
            draw_ceiling(ax, ceiling, metric, spread=spread)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(f"batch size {size}")
            if i == len(metrics) - 1:
                set_x_axis(ax, x)
            if j == 0:
                ax.set_ylabel(metric_label(metric))
        _metric_ylim(axes[i, 0], metric)
    handles, labels = unique_handles(axes.ravel())
    legend_outside(fig, handles, labels, title="strategy")
    fig.suptitle(f"{model}: metrics by batch size")
    return fig


def batch_size_palette(sizes: Sequence[int]) -> dict[int, str]:
    """Sequential colours for batch sizes, small = light, large = dark."""
    cmap = colormaps["viridis"]
    n = len(sizes)
    return {int(b): to_hex(cmap(0.85 - 0.75 * i / max(n - 1, 1))) for i, b in enumerate(sizes)}


def curves_by_fraction(
    results: pd.DataFrame,
    model: str | None = None,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    x: str = "frac_labeled",
    strategies: Sequence[str] | None = None,
    spread: Spread = "minmax",
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Figure 4: metrics against % of the pool labeled (or labeled cells), one column per
    strategy and one line per batch size.

    Parameters
    ----------
    results
        The ``results.csv`` table of ``scactive simulate``.
    model
        Model to show; default the first model in ``results``.
    metrics
        Metric columns, one row of panels each.
    x
        ``"frac_labeled"`` (% of the pool, default), ``"n_labeled"`` (the report's choice) or
        ``"round"``.
    strategies
        Strategies, one column each; default all present.
    spread, fig
        As in :func:`learning_curves`.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(metrics) * len(strategies)`` axes; one line per batch size plus the ceiling.
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    check_x(x)
    model, runs, ceiling, strategies, _ = _prepare(results, model, [*metrics, x], strategies, {})
    sizes = batch_sizes_of(runs)
    colors = batch_size_palette(sizes)
    fig = _target_figure(fig, len(metrics), len(strategies))
    axes = fig.subplots(len(metrics), len(strategies), squeeze=False, sharex=True, sharey="row")
    for i, metric in enumerate(metrics):
        for j, strategy in enumerate(strategies):
            ax = axes[i, j]
            sub_s = runs[runs["strategy"] == strategy]
            for size in sizes:
                sub = sub_s[sub_s["batch_size"] == size]
                if sub.empty:
                    continue
                agg = aggregate_over_seeds(sub, metric, by=("batch_size",), x=x)
                plot_mean_spread(
                    ax,
                    agg,
                    x,
                    color=colors[size],
                    label=str(size),
                    spread=spread,
                    scale_x=100.0 if x == "frac_labeled" else 1.0,
                )
            draw_ceiling(ax, ceiling, metric, spread=spread)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(strategy)
            if i == len(metrics) - 1:
                set_x_axis(ax, x)
            if j == 0:
                ax.set_ylabel(metric_label(metric))
        _metric_ylim(axes[i, 0], metric)
    handles, labels = unique_handles(axes.ravel())
    legend_outside(fig, handles, labels, title="batch size")
    against = "the labeled fraction of the pool" if x == "frac_labeled" else metric_label(x).lower()
    fig.suptitle(f"{model}: metrics against {against}")
    return fig
