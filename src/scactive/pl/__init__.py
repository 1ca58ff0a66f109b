"""Plots of active-learning runs, drawn from the tidy tables of ``scactive simulate``.

Every function takes the table(s) plus keyword options, draws into a new
:class:`matplotlib.figure.Figure` (or the ``fig=`` / ``ax=`` given) and returns the figure;
none calls ``plt.show()``. Metrics are averaged over seeds with a shaded spread (min-max by
default, or ± one standard deviation with ``spread="std"``). Strategies and cell types keep one
colour across figures; pass the same ``palette=`` to share it across calls on subsets.
"""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    attributes={
        "._cells": ("batch_composition", "celltype_overview", "picks_pca"),
        "._compare": (
            "comparison_scores",
            "confusion_matrices",
            "method_palette",
            "per_class_heatmap",
        ),
        "._curves": ("curves_by_fraction", "learning_curves", "metric_grid"),
        "._labels": ("labels_curve",),
        "._levels": ("has_levels", "level_curves"),
        "._recall": ("rare_type_recall", "rarest_types"),
        "._stopping": ("has_stopping", "stop_points", "stop_summary", "stopping_curves"),
        "._style": ("aggregate_over_seeds", "celltype_palette", "strategy_palette"),
    },
)
