"""Plots of a method comparison, drawn from the tables of ``scactive compare``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from scactive._errors import InputError
from scactive.pl._style import (
    axes_legend_outside,
    metric_label,
    natural_key,
    new_figure,
    require_columns,
)

_KEYS = ("method", "training_set", "budget", "seed")
#: Training sets holding every labeled cell; drawn last.
_FULL_SETS = ("pool", "reference")
#: Marker per kind of method, so the real tools stand out from the baselines.
_KIND_MARKERS = {"learner": "o", "baseline": "s", "tool": "D"}


def method_palette(methods) -> dict[str, str]:
    """A fixed colour per method name (learners first in the table order)."""
    names = list(dict.fromkeys(str(m) for m in methods))
    colors = [colormaps["tab10"](i) for i in range(10)] + [colormaps["Dark2"](i) for i in range(8)]
    return {name: to_hex(colors[i % len(colors)]) for i, name in enumerate(names)}


def _training_order(table: pd.DataFrame) -> list[tuple[str, int]]:
    """Training sets left to right: each strategy's budgets rising, the full set last."""
    sets = table[["training_set", "budget"]].drop_duplicates()
    last = sets["training_set"].isin(_FULL_SETS)
    ordered = sets[~last].sort_values(["training_set", "budget"], key=_natural)
    return [*map(tuple, ordered.to_numpy()), *map(tuple, sets[last].to_numpy())]


def _natural(column: pd.Series) -> pd.Series:
    return column.map(natural_key) if column.dtype == object else column


def _set_label(name: str, budget: int) -> str:
    if name in _FULL_SETS:
        return f"whole {name}\n({budget} cells)"
    return f"{name}\n{budget} labels"


def comparison_scores(
    table: pd.DataFrame, *, metric: str = "macro_f1", palette: dict[str, str] | None = None
) -> Figure:
    """``metric`` of every method (lines) on every training set (x), mean over seeds.

    Error bars span the seeds' minimum to maximum. Markers tell learners (circles),
    baselines (squares) and real tools (diamonds) apart.
    """
    require_columns(table, [*_KEYS, metric], arg="comparison")
    if table[metric].dropna().empty:
        raise InputError(f"The comparison has no {metric} values (the query had no labels).")
    order = _training_order(table)
    palette = palette or method_palette(table["method"])
    kinds = table.drop_duplicates("method").set_index("method").get("kind")
    fig = new_figure(1, 1, panel=(max(4.0, 1.5 * len(order)), 3.6))
    ax = fig.subplots()
    xs = np.arange(len(order))
    offsets = np.linspace(-0.2, 0.2, max(table["method"].nunique(), 1))
    for offset, (method, rows) in zip(offsets, table.groupby("method", sort=False), strict=True):
        stats = rows.groupby(["training_set", "budget"])[metric].agg(["mean", "min", "max"])
        mean, low, high = stats.reindex(order).to_numpy(dtype=float).T
        marker = _KIND_MARKERS.get(kinds.get(method) if kinds is not None else None, "o")
        names = np.array([name for name, _ in order], dtype=object)
        # one line per training-set family (a strategy's budgets); families are not joined
        for i, name in enumerate(dict.fromkeys(names)):
            part = names == name
            ax.errorbar(
                xs[part] + offset,
                mean[part],
                yerr=[(mean - low)[part], (high - mean)[part]],
                color=palette[method],
                marker=marker,
                markersize=5,
                linewidth=1.2,
                capsize=2,
                label=method if i == 0 else None,
            )
    ax.set_xticks(xs, [_set_label(name, budget) for name, budget in order], fontsize="small")
    ax.set_xlabel("Training set")
    ax.set_ylabel(metric_label(metric))
    ax.grid(axis="y", alpha=0.3)
    axes_legend_outside(ax, title="Method")
    return fig


def per_class_heatmap(
    per_class: pd.DataFrame, table: pd.DataFrame | None = None, *, sets=None
) -> Figure:
    """F1 per cell type (columns) and method (rows), mean over seeds, one panel per set.

    ``sets`` are ``(training_set, budget)`` pairs; default: the smallest labeled set and the
    whole pool.
    """
    require_columns(per_class, [*_KEYS, "cell_type", "f1"], arg="per_class")
    if per_class.empty:
        raise InputError("The comparison has no per-class scores (the query had no labels).")
    order = _training_order(per_class)
    sets = list(sets) if sets is not None else list(dict.fromkeys([order[0], order[-1]]))
    methods = list(dict.fromkeys(per_class["method"]))
    if table is not None:  # best methods first, by their mean over every set
        means = table.groupby("method")["macro_f1"].mean().reindex(methods)
        methods = list(means.sort_values(ascending=False, kind="stable").index)
    types = sorted(per_class["cell_type"].unique(), key=natural_key)
    fig = new_figure(1, len(sets), panel=(0.5 * len(types) + 1.6, 0.38 * len(methods) + 1.6))
    axes = np.atleast_1d(fig.subplots(1, len(sets), sharey=True))
    image = None
    for ax, (name, budget) in zip(axes, sets, strict=True):
        rows = per_class[(per_class["training_set"] == name) & (per_class["budget"] == budget)]
        grid = rows.pivot_table(index="method", columns="cell_type", values="f1", aggfunc="mean")
        grid = grid.reindex(index=methods, columns=types)
        image = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
        for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if value < 0.6 else "black")  # fmt: skip
        ax.set_xticks(range(len(types)), types, rotation=60, ha="right", fontsize="small")
        ax.set_yticks(range(len(methods)), methods, fontsize="small")
        ax.set_title(_set_label(name, budget).replace("\n", " "), fontsize="medium")
    fig.colorbar(image, ax=list(axes), label="F1", shrink=0.8)
    return fig


def confusion_matrices(
    predictions: pd.DataFrame,
    methods,
    *,
    training_set: str,
    budget: int,
    seed: int | None = None,
) -> Figure:
    """Row-normalised confusion matrices (true type x call) of ``methods``, side by side.

    Calls outside the true types ("unassigned", intermediate types, or the reference types
    of a cross-dataset run) get their own columns after the true types.
    """
    require_columns(predictions, [*_KEYS, "true", "predicted"], arg="predictions")
    methods = list(methods)
    rows = predictions[
        (predictions["training_set"] == training_set) & (predictions["budget"] == budget)
    ]
    if seed is not None:
        rows = rows[rows["seed"] == seed]
    rows = rows[rows["method"].isin(methods) & (rows["true"].astype(str) != "")]
    if rows.empty:
        raise InputError(f"No labeled predictions for {methods} on {training_set} ({budget}).")
    true_types = sorted(rows["true"].astype(str).unique(), key=natural_key)
    called = set(rows["predicted"].astype(str))
    calls = sorted(called - set(true_types), key=natural_key)
    # calls in another vocabulary (cross-dataset, unmapped) get no empty true-type columns
    columns = (true_types if called & set(true_types) else []) + calls
    fig = new_figure(
        1, len(methods), panel=(0.42 * len(columns) + 1.8, 0.42 * len(true_types) + 1.6)
    )
    axes = np.atleast_1d(fig.subplots(1, len(methods)))
    image = None
    for ax, method in zip(axes, methods, strict=True):
        mine = rows[rows["method"] == method]
        counts = pd.crosstab(mine["true"].astype(str), mine["predicted"].astype(str))
        counts = counts.reindex(index=true_types, columns=columns, fill_value=0)
        fractions = counts.to_numpy(dtype=float)
        fractions /= np.maximum(fractions.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
        for (i, j), value in np.ndenumerate(fractions):
            if value >= 0.005:
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if value > 0.6 else "black")  # fmt: skip
        ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize="small")
        ax.set_yticks(range(len(true_types)), true_types, fontsize="small")
        ax.set_xlabel("Call")
        ax.set_title(method, fontsize="medium")
        if 0 < len(columns) - len(calls) < len(columns):
            ax.axvline(len(columns) - len(calls) - 0.5, color="grey", linewidth=0.8)
    axes[0].set_ylabel("True type")
    fig.colorbar(image, ax=list(axes), label="Fraction of the true type", shrink=0.8)
    return fig
