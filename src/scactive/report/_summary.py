"""Summary table of a simulation: final metrics, curve area and labels needed, over seeds."""

from __future__ import annotations

from numbers import Real

import pandas as pd

from scactive._errors import InputError
from scactive.metrics import level_columns
from scactive.pl._stopping import has_stopping, stop_summary
from scactive.pl._style import CEILING, order_strategies, require_columns
from scactive.report._runs import FINAL_METRICS, RUN_KEYS, level_name, levels_with, run_table

NOT_REACHED = "not reached"
STOP_VALUES = ("n_labeled", "macro_f1", "estimated_f1")


def _labels_text(mean: float, reached: int, with_ceiling: int) -> str:
    if with_ceiling == 0:
        return "no ceiling"
    if reached == 0:
        return NOT_REACHED
    return f"{mean:.0f} ({reached}/{with_ceiling} seeds)"


def summary_table(results: pd.DataFrame, target: float = 0.95) -> pd.DataFrame:
    """Summarise each model, strategy and batch size over seeds.

    Parameters
    ----------
    results
        The ``results.csv`` table of ``scactive simulate`` (ceiling rows included).
    target
        Fraction of the target macro-F1 a run must reach for ``labels_to_target``; the table
        also gives 90% and 95% (``labels_to_90``, ``labels_to_95``).

    Returns
    -------
    pandas.DataFrame
        One row per model, strategy and batch size (ceiling rows last within each model, with
        ``batch_size`` NaN), with columns:

        - ``model``, ``strategy``, ``batch_size``, ``n_seeds``;
        - ``final_round``, ``final_n_labeled``: mean over seeds of the last round's values;
        - ``<metric>_mean`` and ``<metric>_std`` for accuracy, macro_f1, weighted_f1 and loss
          at the last round (std over seeds, NaN for one seed);
        - with a hierarchy, ``macro_f1_level<k>_mean`` and ``_std`` for each level ``k``
          (1 the top) at the last round, as for the metrics above;
        - ``auc_macro_f1_mean`` / ``_std``: area under the macro-F1 curve against
          ``n_labeled``, divided by the ``n_labeled`` range (the curve's mean macro-F1);
        - ``labels_to_<pct>`` for 90, 95 and ``target`` (e.g. ``labels_to_90``): mean over the
          seeds that reached it of the first ``n_labeled`` with macro-F1 >= pct% of the
          ceiling's macro-F1 averaged over seeds (a target that does not move between seeds;
          NaN if no seed reached it), ``seeds_reached_<pct>`` and ``labels_to_<pct>_text``
          (e.g. ``"340 (2/3 seeds)"``, ``"not reached"`` or ``"no ceiling"``; empty for
          ceiling rows);
        - ``labels_to_target``, ``seeds_reached``, ``labels_to_target_text``: the same for
          ``target``; ``seeds_with_ceiling``: how many seeds had a ceiling to compare with.
        - when ``results`` has the stopping rule's columns (``estimated_f1``, ``stop``):
          ``seeds_stopped`` and, averaged over those seeds, ``n_labeled_at_stop``,
          ``macro_f1_at_stop`` and ``estimated_f1_at_stop`` (see
          :func:`scactive.pl.stop_summary`).
    """
    cols = [*RUN_KEYS, "round", "n_labeled", *FINAL_METRICS]
    require_columns(results, cols, arg="results")
    if not isinstance(target, Real) or not target > 0:
        raise InputError(f"target={target!r} is not valid; expected a number > 0, e.g. 0.95.")
    if results.empty:
        raise InputError("results is empty; run `scactive simulate` first.")
    levels = levels_with(target)
    runs = run_table(results, levels)
    grouped = runs.groupby(["model", "strategy", "batch_size"], dropna=False, sort=False)
    reach = {}
    for level in levels:
        col = f"labels_to_{level_name(level)}"
        reach[col] = (col, "mean")
        reach[f"seeds_reached_{level_name(level)}"] = (col, "count")
    out = grouped.agg(
        n_seeds=("seed", "nunique"),
        final_round=("final_round", "mean"),
        final_n_labeled=("final_n_labeled", "mean"),
        **{
            f"{m}_{s}": (m, s)
            for m in (*FINAL_METRICS, *level_columns(results.columns), "auc_macro_f1")
            for s in ("mean", "std")
        },
        **reach,
        seeds_with_ceiling=("has_ceiling", "sum"),
    ).reset_index()
    out["seeds_with_ceiling"] = out["seeds_with_ceiling"].astype(int)
    if has_stopping(results):
        stops = stop_summary(results).drop(columns="n_seeds")
        stops = stops.rename(columns={c: f"{c}_at_stop" for c in STOP_VALUES})
        out = out.merge(stops, on=["model", "strategy", "batch_size"], how="left")
    out["batch_size"] = out["batch_size"].round().astype("Int64")  # <NA> for the ceiling
    for level in levels:
        pct = level_name(level)
        out[f"labels_to_{pct}_text"] = [
            "" if s == CEILING else _labels_text(m, int(r), int(c))
            for s, m, r, c in zip(
                out["strategy"],
                out[f"labels_to_{pct}"],
                out[f"seeds_reached_{pct}"],
                out["seeds_with_ceiling"],
                strict=True,
            )
        ]
    main = level_name(float(target))
    out["labels_to_target"] = out[f"labels_to_{main}"]
    out["seeds_reached"] = out[f"seeds_reached_{main}"]
    out["labels_to_target_text"] = out[f"labels_to_{main}_text"]
    # Order: models as they appear, strategies with random first, batch sizes ascending.
    model_rank = {m: i for i, m in enumerate(pd.unique(results["model"]))}
    strat_rank = {s: i for i, s in enumerate(order_strategies(out["strategy"]))}
    strat_rank[CEILING] = len(strat_rank)
    out = out.sort_values(
        ["model", "strategy", "batch_size"],
        key=lambda c: (
            c.map(model_rank)
            if c.name == "model"
            else c.map(strat_rank)
            if c.name == "strategy"
            else c
        ),
    ).reset_index(drop=True)
    return out
