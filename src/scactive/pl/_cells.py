"""Cell-level plots: cell types of the data, composition and PCA of picks (figures 1, 5, 6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from scactive._errors import InputError, unknown_name
from scactive.pl._style import (
    batch_sizes_of,
    celltype_palette,
    legend_outside,
    natural_key,
    new_figure,
    order_strategies,
    pick_model,
    require_columns,
)

POOL_ROLES = ("pool", "initial")
"""Roles in ``split.csv`` that make up the pool (labeled at the start or picked later)."""

_BACKGROUND = "#d9d9d9"


def _check_seed(split: pd.DataFrame, seed: int) -> pd.DataFrame:
    seeds = sorted(int(s) for s in pd.unique(split["seed"].dropna()))
    if int(seed) not in seeds:
        raise InputError(f"seed={seed!r} is not in split; available seeds: {seeds}.")
    return split[split["seed"] == int(seed)]


def _subsample(df: pd.DataFrame, max_points: int | None, rng_seed: int = 0) -> pd.DataFrame:
    """Shuffle rows (so no class is drawn on top of all others) and keep at most max_points."""
    n = len(df) if max_points is None else min(len(df), int(max_points))
    order = np.random.default_rng(rng_seed).permutation(len(df))[:n]
    return df.iloc[order]


def _label_handles(palette: dict[str, str], labels: Sequence[str]) -> list[Line2D]:
    return [
        Line2D([], [], marker="o", linestyle="", markersize=6, color=palette[lab], label=lab)
        for lab in labels
    ]


def _target(fig: Figure | SubFigure | None, figsize: tuple[float, float]) -> Figure | SubFigure:
    if fig is None:
        return Figure(figsize=figsize, layout="constrained")
    if fig.axes:
        raise InputError("fig already has axes; pass an empty Figure (or SubFigure) or fig=None.")
    return fig


def celltype_overview(
    split: pd.DataFrame,
    seed: int = 0,
    *,
    palette: dict[str, str] | None = None,
    max_points: int | None = 50_000,
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Figure 1: cell-type frequencies and a PCA scatter coloured by cell type.

    Cells whose role is ``left_out`` are not shown.

    Parameters
    ----------
    split
        The ``split.csv`` table of ``scactive simulate``.
    seed
        Seed whose split and PCA to show.
    palette
        Cell type to colour; default :func:`~scactive.pl.celltype_palette` of all labels.
    max_points
        Most cells drawn in the scatter (a random subset); ``None`` draws all.
    fig
        Empty figure to draw into; default a new one.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: horizontal bars of cell counts, and the PCA scatter.
    """
    require_columns(split, ["seed", "role", "label", "pc1", "pc2"], arg="split")
    if palette is None:
        palette = celltype_palette(split["label"].dropna().astype(str))
    cells = _check_seed(split, seed)
    cells = cells[cells["role"] != "left_out"].dropna(subset=["label"])
    labels = cells["label"].astype(str)
    counts = labels.value_counts()
    n = len(counts)
    fig = _target(fig, (11.5, max(3.8, 0.24 * n + 1.2)))
    ax_bar, ax_pca = fig.subplots(1, 2, width_ratios=(1, 1.3))

    ypos = np.arange(n)
    ax_bar.barh(ypos, counts.to_numpy(), color=[palette.get(k, "grey") for k in counts.index])
    ax_bar.set_yticks(ypos, counts.index, fontsize="small" if n > 15 else None)
    ax_bar.invert_yaxis()
    total = max(int(counts.sum()), 1)
    for y, c in zip(ypos, counts.to_numpy(), strict=True):
        pct = 100 * c / total
        text = f" {pct:.1f}%" if pct >= 0.1 else " <0.1%"
        ax_bar.text(c, y, text, va="center", fontsize="x-small")
    ax_bar.set_xlabel("Cells")
    ax_bar.set_xmargin(0.15)
    ax_bar.set_title(f"Cell types ({total} cells)")

    shown = _subsample(cells.dropna(subset=["pc1", "pc2"]), max_points)
    ax_pca.scatter(
        shown["pc1"],
        shown["pc2"],
        c=[palette.get(str(k), "grey") for k in shown["label"]],
        s=max(1.0, min(12.0, 4e4 / max(len(shown), 1))),
        linewidths=0,
        rasterized=True,
    )
    ax_pca.set_xlabel("PC1")
    ax_pca.set_ylabel("PC2")
    ax_pca.set_title("PCA of the cells")
    ax_pca.set_aspect("auto")
    order = sorted(counts.index, key=natural_key)
    legend_outside(fig, _label_handles(palette, order), order, title="cell type")
    return fig


def _grid_keys(
    picks: pd.DataFrame,
    strategies: Sequence[str] | None,
    batch_sizes: Sequence[int] | None,
) -> tuple[list[str], list[int]]:
    present = order_strategies(picks["strategy"].dropna().unique())
    if strategies is None:
        strategies = present
    for s in strategies:
        if s not in present:
            raise unknown_name("strategy", s, present, plural="strategies")
    sizes = batch_sizes_of(picks)
    if batch_sizes is None:
        batch_sizes = sizes
    for b in batch_sizes:
        if int(b) not in sizes:
            raise InputError(f"batch_sizes contains {b!r}, not in picks; available: {sizes}.")
    if not strategies or not batch_sizes:
        raise InputError("picks has no picked cells to plot (no strategy or batch size).")
    return list(strategies), [int(b) for b in batch_sizes]


def batch_composition(
    picks: pd.DataFrame,
    split: pd.DataFrame | None = None,
    *,
    model: str | None = None,
    seed: int | None = None,
    strategies: Sequence[str] | None = None,
    batch_sizes: Sequence[int] | None = None,
    palette: dict[str, str] | None = None,
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Figure 5: cell-type proportions of the picked batches, per round.

    Panels are batch sizes (rows) by strategies (columns); each has one stacked bar per round
    and, when ``split`` is given, a reference bar ``pool`` with the proportions of the whole
    pool (roles ``pool`` and ``initial``).

    Parameters
    ----------
    picks
        The ``picks.csv`` table of ``scactive simulate``.
    split
        The ``split.csv`` table, for the reference bar; optional.
    model
        Model whose picks to show; default the first model in ``picks``.
    seed
        Seed to show; default all seeds pooled (counts summed over seeds).
    strategies, batch_sizes
        Panels to draw; default all present.
    palette
        Cell type to colour; default :func:`~scactive.pl.celltype_palette` of all labels.
    fig
        Empty figure to draw into; default a new one.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(batch_sizes) * len(strategies)`` axes.
    """
    require_columns(
        picks, ["model", "strategy", "batch_size", "seed", "round", "label"], arg="picks"
    )
    model = pick_model(picks, model, arg="picks")
    rows = picks[picks["model"] == model]
    ref = None
    if split is not None:
        require_columns(split, ["seed", "role", "label"], arg="split")
        ref = split[split["role"].isin(POOL_ROLES)]
    if seed is not None:
        if int(seed) not in set(rows["seed"].astype(int)):
            raise InputError(f"seed={seed!r} is not in picks for model {model!r}.")
        rows = rows[rows["seed"] == int(seed)]
        ref = None if ref is None else ref[ref["seed"] == int(seed)]
    elif ref is not None:
        ref = ref[ref["seed"].isin(rows["seed"].unique())]
    strategies, batch_sizes = _grid_keys(rows, strategies, batch_sizes)
    if palette is None:
        all_labels = pd.concat([picks["label"], split["label"] if split is not None else None])
        palette = celltype_palette(all_labels.dropna().astype(str))
    seen = set(rows["label"].astype(str))
    if ref is not None:
        seen |= set(ref["label"].astype(str))
    labels = [lab for lab in palette if lab in seen]

    nr, nc = len(batch_sizes), len(strategies)
    n_rounds = int(rows["round"].nunique())
    fig = (
        fig if fig is not None else new_figure(nr, nc, panel=(max(3.0, 0.16 * n_rounds + 1.2), 2.6))
    )
    if fig.axes:
        raise InputError("fig already has axes; pass an empty Figure (or SubFigure) or fig=None.")
    axes = fig.subplots(nr, nc, squeeze=False, sharey=True)
    for i, size in enumerate(batch_sizes):
        for j, strategy in enumerate(strategies):
            ax = axes[i, j]
            sub = rows[(rows["batch_size"] == size) & (rows["strategy"] == strategy)]
            table = pd.crosstab(sub["round"], sub["label"].astype(str))
            table = table.reindex(columns=labels, fill_value=0)
            xticks: list[str] = [str(r) for r in table.index]
            if ref is not None:
                pool = ref["label"].astype(str).value_counts().reindex(labels, fill_value=0)
                table = pd.concat([pool.to_frame("pool").T, table])
                xticks = ["pool", *xticks]
            props = table.div(table.sum(axis=1).replace(0, 1), axis=0).to_numpy(dtype=float)
            xs = np.arange(len(table))
            bottom = np.zeros(len(table))
            for k, lab in enumerate(labels):
                ax.bar(xs, props[:, k], bottom=bottom, color=palette[lab], width=0.85)
                bottom += props[:, k]
            step = max(1, int(np.ceil(len(xs) / 12)))
            ax.set_xticks(xs[::step], xticks[::step], fontsize="small")
            if ref is not None:
                ax.axvline(0.5, color="black", linewidth=0.8)
            ax.set_ylim(0, 1)
            ax.set_xlim(-0.6, max(len(xs), 1) - 0.4)
            if i == 0:
                ax.set_title(strategy)
            if i == nr - 1:
                ax.set_xlabel("Round")
            if j == 0:
                ax.set_ylabel(f"batch {size}\nproportion")
    handles = [Patch(color=palette[lab], label=lab) for lab in labels]
    legend_outside(fig, handles, labels, title="cell type")
    who = "all seeds" if seed is None else f"seed {seed}"
    fig.suptitle(f"{model}: cell types of the picked batches ({who})")
    return fig


def picks_pca(
    picks: pd.DataFrame,
    split: pd.DataFrame,
    *,
    model: str | None = None,
    seed: int = 0,
    color_by: Literal["round", "label"] = "round",
    strategies: Sequence[str] | None = None,
    batch_sizes: Sequence[int] | None = None,
    palette: dict[str, str] | None = None,
    max_background: int | None = 20_000,
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Figure 6: picked cells on the pool PCA, strategies (columns) by batch sizes (rows).

    Parameters
    ----------
    picks
        The ``picks.csv`` table of ``scactive simulate``.
    split
        The ``split.csv`` table; its pool cells of ``seed`` are drawn in grey behind the picks.
    model
        Model whose picks to show; default the first model in ``picks``.
    seed
        Seed to show (the PCA differs between seeds).
    color_by
        ``"round"`` (sequential colours and a colour bar) or ``"label"`` (cell-type colours).
    strategies, batch_sizes
        Panels to draw; default all present.
    palette
        Cell type to colour, for ``color_by="label"``.
    max_background
        Most background cells drawn (a random subset); ``None`` draws all.
    fig
        Empty figure to draw into; default a new one.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(batch_sizes) * len(strategies)`` panel axes (plus a colour-bar axes when
        ``color_by="round"``).
    """
    if color_by not in ("round", "label"):
        raise InputError(f"color_by={color_by!r} is not valid; expected 'round' or 'label'.")
    cols = ["model", "strategy", "batch_size", "seed", "round", "label", "pc1", "pc2"]
    require_columns(picks, cols, arg="picks")
    require_columns(split, ["seed", "role", "label", "pc1", "pc2"], arg="split")
    model = pick_model(picks, model, arg="picks")
    background = _check_seed(split, seed)
    background = background[background["role"].isin(POOL_ROLES)].dropna(subset=["pc1", "pc2"])
    background = _subsample(background, max_background)
    rows = picks[(picks["model"] == model) & (picks["seed"] == int(seed))]
    if rows.empty:
        raise InputError(f"picks has no rows for model {model!r} and seed={seed!r}.")
    strategies, batch_sizes = _grid_keys(rows, strategies, batch_sizes)
    if palette is None:
        palette = celltype_palette(pd.concat([split["label"], picks["label"]]).dropna().astype(str))
    nr, nc = len(batch_sizes), len(strategies)
    fig = fig if fig is not None else new_figure(nr, nc, panel=(3.0, 2.8))
    if fig.axes:
        raise InputError("fig already has axes; pass an empty Figure (or SubFigure) or fig=None.")
    axes = fig.subplots(nr, nc, squeeze=False, sharex=True, sharey=True)
    norm = Normalize(vmin=float(rows["round"].min()), vmax=float(max(rows["round"].max(), 1)))
    mappable = None
    bg_size = max(0.5, min(6.0, 2e4 / max(len(background), 1)))
    for i, size in enumerate(batch_sizes):
        for j, strategy in enumerate(strategies):
            ax = axes[i, j]
            ax.scatter(
                background["pc1"], background["pc2"], s=bg_size, c=_BACKGROUND,
                linewidths=0, rasterized=True,
            )  # fmt: skip
            sub = rows[(rows["batch_size"] == size) & (rows["strategy"] == strategy)]
            sub = sub.sort_values("round")
            size_pt = max(3.0, min(14.0, 1500.0 / max(len(sub), 1)))
            if color_by == "round":
                mappable = ax.scatter(
                    sub["pc1"], sub["pc2"], c=sub["round"], cmap="viridis", norm=norm,
                    s=size_pt, linewidths=0.2, edgecolors="black", rasterized=True,
                )  # fmt: skip
            else:
                ax.scatter(
                    sub["pc1"], sub["pc2"], c=[palette.get(str(k), "grey") for k in sub["label"]],
                    s=size_pt, linewidths=0.2, edgecolors="black", rasterized=True,
                )  # fmt: skip
            if i == 0:
                ax.set_title(strategy)
            if i == nr - 1:
                ax.set_xlabel("PC1")
            if j == 0:
                ax.set_ylabel(f"batch {size}\nPC2")
    if color_by == "round" and mappable is not None:
        cbar = fig.colorbar(mappable, ax=axes, label="round", shrink=0.8)
        cbar.locator = MaxNLocator(integer=True)
        cbar.update_ticks()
    elif color_by == "label":
        order = sorted(set(rows["label"].astype(str)), key=natural_key)
        legend_outside(fig, _label_handles(palette, order), order, title="cell type")
    fig.suptitle(f"{model}: picked cells on the pool PCA (seed {seed}; grey = pool)")
    return fig
