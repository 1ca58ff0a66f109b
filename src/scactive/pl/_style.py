"""Shared plotting helpers: colours, seed aggregation, figure and legend set-up.

Every plot in :mod:`scactive.pl` draws metrics aggregated over seeds through
:func:`aggregate_over_seeds` and :func:`plot_mean_spread`, and takes its colours from
:func:`strategy_palette` and :func:`celltype_palette`, so a strategy or a cell type keeps the
same colour in every figure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure, SubFigure

from scactive._errors import InputError, unknown_name
from scactive.strategies._registry import SPARE_COLORS, STRATEGY_COLORS

Spread = Literal["minmax", "std"] | None

CEILING = "ceiling"
"""Value of the ``strategy`` column for the model trained on the whole pool."""

RUN_KEYS = ["model", "strategy", "batch_size", "seed"]
"""Columns of ``results.csv`` that identify one run (its rounds share them)."""

MODEL_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
METRIC_LABELS: dict[str, str] = {
    "accuracy": "Accuracy",
    "macro_f1": "Macro F1",
    "weighted_f1": "Weighted F1",
    "loss": "Validation loss",
    "n_labeled": "Labeled cells",
    "frac_labeled": "Pool labeled (%)",
    "n_types_found": "Cell types found",
    "round": "Round",
}


def metric_label(name: str) -> str:
    """Return a readable axis label for a column name (``recall:B`` -> ``Recall B``)."""
    if name.startswith("recall:"):
        return f"Recall {name.split(':', 1)[1]}"
    return METRIC_LABELS.get(name, name.replace("_", " "))


def order_strategies(names: Iterable[str]) -> list[str]:
    """Order strategy names: the registered ones in registry order (``random`` first), then
    the rest sorted.

    The ``ceiling`` pseudo-strategy is dropped.
    """
    names = {str(n) for n in names if isinstance(n, str) and n != CEILING}
    known = [n for n in STRATEGY_COLORS if n in names]  # registry order: random first
    return known + sorted(names - set(known))


def strategy_palette(names: Iterable[str]) -> dict[str, str]:
    """Colour per strategy: a registered strategy always gets its registered colour.

    Parameters
    ----------
    names
        Strategy names; pass every strategy of a run so all its figures share one palette.

    Returns
    -------
    dict
        Strategy name to hex colour.
    """
    ordered = order_strategies(names)
    unknown = [n for n in ordered if n not in STRATEGY_COLORS]  # e.g. from an older run
    spare = iter(c for c in SPARE_COLORS if c not in set(STRATEGY_COLORS.values()))
    cmap = colormaps["hsv"]
    palette: dict[str, str] = {}
    for i, name in enumerate(ordered):
        if name in STRATEGY_COLORS:
            palette[name] = STRATEGY_COLORS[name]
        else:
            palette[name] = next(spare, None) or to_hex(cmap(i / max(len(unknown), 1)))
    return palette


def natural_key(text: str) -> tuple[object, ...]:
    """Sort key that orders the digit runs of ``text`` by value: ``T2`` before ``T10``."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", str(text))
        if part
    )


def celltype_palette(labels: Iterable[str]) -> dict[str, str]:
    """Colour per cell type by natural-sorted name (``T2`` before ``T10``); 60 stay distinct.

    Parameters
    ----------
    labels
        Cell type labels (repeats are fine); pass every label of a run so all its figures
        share one palette.

    Returns
    -------
    dict
        Label to hex colour.
    """
    uniq = sorted({str(x) for x in labels if not pd.isna(x)}, key=natural_key)
    if len(uniq) <= 10:
        colors = [colormaps["tab10"](i) for i in range(10)]
    elif len(uniq) <= 20:
        colors = [colormaps["tab20"](i) for i in range(20)]
    elif len(uniq) <= 60:
        colors = [colormaps[c](i) for c in ("tab20", "tab20b", "tab20c") for i in range(20)]
    else:
        cmap = colormaps["gist_ncar"]
        colors = [cmap(i / len(uniq)) for i in range(len(uniq))]
    return {lab: to_hex(colors[i]) for i, lab in enumerate(uniq)}


def require_columns(df: pd.DataFrame, columns: Iterable[str], *, arg: str) -> None:
    """Raise :class:`InputError` naming ``arg`` when ``df`` lacks any of ``columns``."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{arg} must be a pandas DataFrame; got {type(df).__name__}.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"{arg} lacks column(s) {missing}; available: {list(df.columns)}. "
            "Pass the table written by `scactive simulate`."
        )


def as_bool(col: pd.Series) -> pd.Series:
    """A boolean column read back from CSV may be bool, 0/1 or the strings True/False."""
    if col.dtype == bool:
        return col
    return col.astype(str).str.strip().str.lower().isin(["true", "1", "1.0", "yes"])


def pick_model(df: pd.DataFrame, model: str | None, *, arg: str = "results") -> str:
    """Return ``model`` after checking it is in ``df``, or the first model when ``None``."""
    models = [str(m) for m in pd.unique(df["model"].dropna())]
    if not models:
        raise InputError(f"{arg} has no rows with a model; nothing to plot.")
    if model is None:
        return models[0]
    if model not in models:
        raise unknown_name("model", model, models)
    return model


def active_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of the active-learning runs (everything but the ceiling)."""
    return results[results["strategy"] != CEILING]


def ceiling_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of the ceiling (one model trained on the whole pool)."""
    return results[results["strategy"] == CEILING]


def batch_sizes_of(df: pd.DataFrame) -> list[int]:
    """Sorted distinct batch sizes of the active-learning rows."""
    return sorted(int(b) for b in pd.unique(df["batch_size"].dropna()))


def aggregate_over_seeds(
    df: pd.DataFrame,
    y: str,
    *,
    by: Sequence[str] = ("strategy",),
    x: str = "round",
    step: str = "round",
) -> pd.DataFrame:
    """Mean and spread of ``y`` over seeds, per group and step.

    Parameters
    ----------
    df
        Tidy table with a ``seed`` column.
    y
        Column to aggregate.
    by
        Columns identifying a curve (seeds of one curve are pooled).
    x
        Column used as the x coordinate; averaged over seeds at each step, so it may differ
        slightly between seeds (e.g. ``frac_labeled``).
    step
        Column that aligns seeds (the round).

    Returns
    -------
    pandas.DataFrame
        One row per group and step with the ``by`` columns, ``step``, ``x``, ``mean``,
        ``std`` (0 for a single seed), ``min``, ``max`` and ``n`` (number of seeds), sorted by
        group and ``x``.
    """
    by = list(by)
    keys = by + ([step] if step not in by else [])
    agg = df.groupby(keys, dropna=False, sort=True).agg(
        _x=(x, "mean"),
        mean=(y, "mean"),
        std=(y, "std"),
        min=(y, "min"),
        max=(y, "max"),
        n=(y, "count"),
    )
    agg = agg.reset_index()
    agg[x] = agg.pop("_x")
    agg["std"] = agg["std"].fillna(0.0)
    return agg.sort_values(by + [x]).reset_index(drop=True)


def plot_mean_spread(
    ax: Axes,
    agg: pd.DataFrame,
    x: str,
    *,
    color: str,
    label: str | None = None,
    spread: Spread = "minmax",
    scale_x: float = 1.0,
    **line_kw: object,
) -> None:
    """Draw the mean line of ``agg`` (from :func:`aggregate_over_seeds`) and a shaded spread.

    ``spread`` is ``"minmax"`` (range over seeds), ``"std"`` (mean ± one standard deviation)
    or ``None`` (line only). Exactly one line is added to ``ax``.
    """
    if spread not in ("minmax", "std", None):
        raise InputError(f"spread={spread!r} is not valid; expected 'minmax', 'std' or None.")
    xs = agg[x].to_numpy(dtype=float) * scale_x
    mean = agg["mean"].to_numpy(dtype=float)
    ax.plot(xs, mean, color=color, label=label, **line_kw)
    if spread is None or len(xs) == 0:
        return
    if spread == "minmax":
        lo, hi = agg["min"].to_numpy(dtype=float), agg["max"].to_numpy(dtype=float)
    else:
        sd = agg["std"].to_numpy(dtype=float)
        lo, hi = mean - sd, mean + sd
    if np.any(hi > lo):
        ax.fill_between(xs, lo, hi, color=color, alpha=0.18, linewidth=0)


def draw_ceiling(
    ax: Axes,
    ceiling: pd.DataFrame,
    metric: str,
    *,
    color: str = "black",
    label: str | None = "ceiling",
    linestyle: object = "--",
    spread: Spread = "minmax",
) -> None:
    """Draw the ceiling's mean over seeds as a horizontal dashed line (plus a faint band)."""
    vals = ceiling[metric].dropna().to_numpy(dtype=float)
    if vals.size == 0:
        return
    mean = float(vals.mean())
    ax.axhline(mean, color=color, linestyle=linestyle, linewidth=1.2, label=label)
    if spread == "minmax" and vals.max() > vals.min():
        ax.axhspan(vals.min(), vals.max(), color=color, alpha=0.07, linewidth=0)
    elif spread == "std" and vals.size > 1 and vals.std(ddof=1) > 0:
        sd = float(vals.std(ddof=1))
        ax.axhspan(mean - sd, mean + sd, color=color, alpha=0.07, linewidth=0)


def new_figure(nrows: int, ncols: int, *, panel: tuple[float, float] = (3.6, 2.8)) -> Figure:
    """A constrained-layout :class:`~matplotlib.figure.Figure` sized for a grid of panels.

    Figures are created without pyplot, so nothing depends on the interactive backend and
    nothing stays registered after the caller drops the figure.
    """
    width = min(panel[0] * ncols + 2.5, 40.0)
    height = min(panel[1] * nrows + 0.6, 40.0)
    return Figure(figsize=(width, height), layout="constrained")


def legend_outside(
    fig: Figure | SubFigure,
    handles: Sequence[object],
    labels: Sequence[str],
    *,
    title: str | None = None,
) -> None:
    """Put a figure legend to the right of all panels.

    A long legend wraps into as many columns as needed to fit the figure's height, so saving
    without ``bbox_inches="tight"`` never clips it.
    """
    if not handles:
        return
    height = fig.get_figure(root=True).get_figheight()
    rows_fit = max(6, int((height - 0.6) / 0.19))
    ncol = max(1, int(np.ceil(len(labels) / rows_fit)))
    fig.legend(
        handles,
        labels,
        loc="outside right upper",
        title=title,
        ncol=ncol,
        fontsize="small",
        frameon=False,
    )


def axes_legend_outside(ax: Axes, *, title: str | None = None) -> None:
    """Put the legend of ``ax`` to its right, outside the plotting area."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    ncol = max(1, int(np.ceil(len(labels) / 25)))
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        title=title,
        ncol=ncol,
        fontsize="small",
        frameon=False,
    )


def unique_handles(axes: Iterable[Axes]) -> tuple[list[object], list[str]]:
    """Legend handles and labels of several axes, first occurrence of each label kept."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if not lab.startswith("_") and lab not in seen:
                seen[lab] = h
    return list(seen.values()), list(seen.keys())
