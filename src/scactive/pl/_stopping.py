"""The stopping rule against the truth: where it stops, and its estimate beside the validation
macro-F1 (figure 9).

Rounds record ``estimated_f1`` (the model's macro-F1 estimated without held-out labels; NaN
where there is none) and ``stop`` (True from the round at which the rule says stop). Results
written before these columns existed have neither; :func:`has_stopping` tells them apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D

from scactive.pl._curves import (
    _metric_ylim,
    _prepare,
    _resolve_batch_size,
    panel_grid,
    set_x_axis,
    strategy_lines,
)
from scactive.pl._style import (
    RUN_KEYS,
    Spread,
    active_rows,
    as_bool,
    legend_outside,
    metric_label,
    require_columns,
)

STOPPING_COLUMNS = ("estimated_f1", "stop")
"""Columns of ``results.csv`` the stopping figure and sentences need."""

_STOP_COLOR = "black"


def has_stopping(results: pd.DataFrame) -> bool:
    """Whether ``results`` has the stopping rule's columns (:data:`STOPPING_COLUMNS`)."""
    return all(c in results.columns for c in STOPPING_COLUMNS)


def stop_points(results: pd.DataFrame) -> pd.DataFrame:
    """Where each active-learning run's stopping rule first said stop.

    Parameters
    ----------
    results
        The ``results.csv`` table of ``scactive simulate``, with ``estimated_f1`` and ``stop``.

    Returns
    -------
    pandas.DataFrame
        One row per run (``model``, ``strategy``, ``batch_size``, ``seed``) with ``stopped``
        (whether the rule said stop in any round) and, at the first round it did (NaN when it
        never did), ``round``, ``n_labeled``, ``macro_f1`` (the truth, on the validation
        cells) and ``estimated_f1``.
    """
    require_columns(
        results, [*RUN_KEYS, "round", "n_labeled", "macro_f1", *STOPPING_COLUMNS], arg="results"
    )
    runs = active_rows(results).sort_values([*RUN_KEYS, "round"], kind="stable")
    runs = runs.assign(stop=as_bool(runs["stop"]))
    first = runs[runs["stop"]].groupby(RUN_KEYS, dropna=False, sort=False).head(1)
    values = ["round", "n_labeled", "macro_f1", "estimated_f1"]
    keys = runs[RUN_KEYS].drop_duplicates()
    out = keys.merge(first[[*RUN_KEYS, *values]], on=RUN_KEYS, how="left")
    out.insert(len(RUN_KEYS), "stopped", out["round"].notna())
    return out.reset_index(drop=True)


def stop_summary(results: pd.DataFrame) -> pd.DataFrame:
    """:func:`stop_points` over seeds: one row per model, strategy and batch size.

    Columns: ``model``, ``strategy``, ``batch_size``, ``n_seeds``, ``seeds_stopped`` and the
    means over the seeds that stopped of ``n_labeled``, ``macro_f1`` and ``estimated_f1`` at
    the stop (NaN when no seed stopped).
    """
    points = stop_points(results)
    grouped = points.groupby(RUN_KEYS[:3], dropna=False, sort=False)
    return grouped.agg(
        n_seeds=("seed", "nunique"),
        seeds_stopped=("stopped", "sum"),
        n_labeled=("n_labeled", "mean"),
        macro_f1=("macro_f1", "mean"),
        estimated_f1=("estimated_f1", "mean"),
    ).reset_index()


def stopping_curves(
    results: pd.DataFrame,
    model: str | None = None,
    *,
    batch_size: int | None = None,
    strategies: Sequence[str] | None = None,
    palette: dict[str, str] | None = None,
    spread: Spread = "minmax",
    max_cols: int = 4,
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Figure 9: the stopping rule's estimate against the truth, one panel per strategy.

    Each panel draws the validation macro-F1 (solid) and ``estimated_f1`` (dashed) against
    labeled cells, mean over seeds with their spread, and a dotted vertical line at the mean
    number of labeled cells where the rule first said stop (over the seeds that stopped).

    Parameters
    ----------
    results
        The ``results.csv`` table of ``scactive simulate``, with ``estimated_f1`` and ``stop``.
    model
        Model to show; default the first model in ``results``.
    batch_size
        Batch size to show; default the largest present.
    strategies, palette, spread
        As in :func:`~scactive.pl.learning_curves`.
    max_cols
        Panels per row.
    fig
        Empty figure to draw into; default a new one.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per strategy, each with two lines (truth and estimate) plus the stop line of
        the strategy when a seed stopped.
    """
    model, runs, _, strategies, palette = _prepare(
        results, model, ["n_labeled", "macro_f1", *STOPPING_COLUMNS], strategies, palette
    )
    batch_size = _resolve_batch_size(runs, batch_size)
    runs = runs[runs["batch_size"] == batch_size]
    stops = stop_summary(runs).set_index("strategy")
    fig, axes = panel_grid(fig, len(strategies), max_cols)
    for ax, strategy in zip(axes, strategies, strict=True):
        strategy_lines(ax, runs, "macro_f1", [strategy], palette, spread)
        strategy_lines(
            ax, runs, "estimated_f1", [strategy], palette, spread, suffix=" (estimate)", ls="--"
        )
        stop = stops.loc[strategy] if strategy in stops.index else None
        if stop is not None and stop["seeds_stopped"] > 0:
            ax.axvline(stop["n_labeled"], color=_STOP_COLOR, linestyle=":", linewidth=1.4)
            ax.annotate(
                f"stop: {stop['n_labeled']:.0f} labels\n"
                f"({int(stop['seeds_stopped'])}/{int(stop['n_seeds'])} seeds)",
                (stop["n_labeled"], 0.02),
                xycoords=("data", "axes fraction"),
                xytext=(3, 0),
                textcoords="offset points",
                fontsize="small",
            )
        elif stop is not None:
            ax.text(0.98, 0.02, "no stop", transform=ax.transAxes, ha="right", fontsize="small")
        ax.set_title(strategy)
        ax.grid(alpha=0.3)
        set_x_axis(ax, "n_labeled")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(metric_label("macro_f1"))
    _metric_ylim(axes[0], "macro_f1")
    handles = [
        Line2D([], [], color="grey", label="validation macro F1 (truth)"),
        Line2D([], [], color="grey", linestyle="--", label="estimate (no held-out labels)"),
        Line2D([], [], color=_STOP_COLOR, linestyle=":", label="first stop (mean over seeds)"),
    ]
    legend_outside(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(f"{model}: stopping rule, estimate vs truth (batch size {batch_size})")
    return fig
