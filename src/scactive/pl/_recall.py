"""Recall of the rarest cell types against labeled cells (figure 8).

Rounds record one recall column per cell type of the validation cells (``recall:<type>``, from
:func:`scactive.metrics.evaluate`). The rarest types are those with the fewest cells in the
pool (roles ``pool`` and ``initial`` of ``split.csv``, averaged over seeds): the types a
strategy must find and learn from a handful of cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure, SubFigure

from scactive._errors import InputError, unknown_name
from scactive.pl._cells import POOL_ROLES
from scactive.pl._curves import (
    _prepare,
    _resolve_batch_size,
    panel_grid,
    set_x_axis,
    strategy_lines,
)
from scactive.pl._style import (
    Spread,
    active_rows,
    draw_ceiling,
    legend_outside,
    natural_key,
    require_columns,
    unique_handles,
)

RECALL_PREFIX = "recall:"


def recall_types(results: pd.DataFrame) -> list[str]:
    """Cell types with a recall column holding at least one value in the active rows."""
    runs = active_rows(results)
    return [
        c[len(RECALL_PREFIX) :]
        for c in results.columns
        if c.startswith(RECALL_PREFIX) and runs[c].notna().any()
    ]


def pool_counts(split: pd.DataFrame) -> pd.Series:
    """Cells per type in the pool (roles ``pool`` and ``initial``), averaged over seeds."""
    require_columns(split, ["seed", "role", "label"], arg="split")
    pool = split[split["role"].isin(POOL_ROLES)]
    counts = pd.crosstab(pool["label"].astype(str), pool["seed"])
    seeds = pd.unique(split["seed"].dropna())
    return counts.reindex(columns=seeds, fill_value=0).mean(axis=1)


def rarest_types(results: pd.DataFrame, split: pd.DataFrame, n_types: int = 4) -> pd.Series:
    """The ``n_types`` cell types with a recall column and the fewest pool cells.

    Returns
    -------
    pandas.Series
        Type to its mean pool cell count over seeds, rarest first (ties by natural name
        order); a type with a recall column and no pool cell counts 0.
    """
    if not isinstance(n_types, int) or n_types < 1:
        raise InputError(f"n_types={n_types!r} is not valid; expected a whole number >= 1.")
    types = recall_types(results)
    if not types:
        raise InputError(
            "results has no per-class recall columns ('recall:<type>'); nothing to plot."
        )
    counts = pool_counts(split).reindex(types, fill_value=0.0)
    order = sorted(types, key=lambda t: (counts[t], natural_key(t)))
    return counts[order[:n_types]]


def rare_type_recall(
    results: pd.DataFrame,
    split: pd.DataFrame | None = None,
    model: str | None = None,
    *,
    types: Sequence[str] | None = None,
    n_types: int = 4,
    batch_size: int | None = None,
    strategies: Sequence[str] | None = None,
    palette: dict[str, str] | None = None,
    spread: Spread = "minmax",
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Figure 8: recall of the rarest cell types against labeled cells, one panel per type.

    Parameters
    ----------
    results
        The ``results.csv`` table of ``scactive simulate`` (with ``recall:<type>`` columns).
    split
        The ``split.csv`` table, to rank the types by their pool cells; needed unless
        ``types`` is given.
    model
        Model to show; default the first model in ``results``.
    types
        Cell types to show, in this order; default the ``n_types`` rarest
        (:func:`rarest_types`).
    n_types
        How many of the rarest types to show when ``types`` is not given.
    batch_size, strategies, palette, spread
        As in :func:`~scactive.pl.learning_curves`.
    fig
        Empty figure to draw into; default a new one.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per type, titled with its name (and pool cells when ``split`` is given), one
        line per strategy (mean over seeds, spread shaded) plus the dashed ceiling.
    """
    counts = None
    if types is None:
        if split is None:
            raise InputError(
                "split is None and types is None; pass the split.csv table to rank the cell "
                "types by their pool cells, or the types to show."
            )
        counts = rarest_types(results, split, n_types)
        types = list(counts.index)
    else:
        types = [str(t) for t in types]
        known = recall_types(results)
        for t in types:
            if t not in known:
                raise unknown_name("cell type", t, known)
        if split is not None:
            counts = pool_counts(split).reindex(types, fill_value=0.0)
    columns = [f"{RECALL_PREFIX}{t}" for t in types]
    model, runs, ceiling, strategies, palette = _prepare(
        results, model, ["n_labeled", *columns], strategies, palette
    )
    batch_size = _resolve_batch_size(runs, batch_size)
    runs = runs[runs["batch_size"] == batch_size]
    fig, axes = panel_grid(fig, len(types))
    for ax, cell_type, column in zip(axes, types, columns, strict=True):
        strategy_lines(ax, runs, column, strategies, palette, spread)
        draw_ceiling(ax, ceiling, column, spread=spread)
        title = cell_type
        if counts is not None:
            title += f" ({counts[cell_type]:.0f} pool cells)"
        ax.set_title(title, fontsize="medium")
        ax.grid(alpha=0.3)
        set_x_axis(ax, "n_labeled")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("Recall")
    axes[0].set_ylim(-0.03, 1.03)
    handles, labels = unique_handles(axes)
    legend_outside(fig, handles, labels, title="strategy")
    fig.suptitle(f"{model}: recall of the rarest cell types (batch size {batch_size})")
    return fig
