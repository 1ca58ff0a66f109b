"""Plots of active-learning runs, drawn from the tidy tables of ``scactive simulate``.

Every function takes the table(s) plus keyword options, draws into a new
:class:`matplotlib.figure.Figure` (or the ``fig=`` / ``ax=`` given) and returns the figure;
none calls ``plt.show()``. Metrics are averaged over seeds with a shaded spread (min-max by
default, or ± one standard deviation with ``spread="std"``). Strategies and cell types keep one
colour across figures; pass the same ``palette=`` to share it across calls on subsets.
"""

from scactive.pl._cells import batch_composition, celltype_overview, picks_pca
from scactive.pl._compare import (
    comparison_scores,
    confusion_matrices,
    method_palette,
    per_class_heatmap,
)
from scactive.pl._curves import curves_by_fraction, learning_curves, metric_grid
from scactive.pl._labels import labels_curve
from scactive.pl._style import aggregate_over_seeds, celltype_palette, strategy_palette

__all__ = [
    "aggregate_over_seeds",
    "batch_composition",
    "celltype_overview",
    "celltype_palette",
    "comparison_scores",
    "confusion_matrices",
    "curves_by_fraction",
    "labels_curve",
    "learning_curves",
    "method_palette",
    "metric_grid",
    "per_class_heatmap",
    "picks_pca",
    "strategy_palette",
]
