"""Summary table of a simulation: final metrics, curve area and labels needed per run."""

from __future__ import annotations

import math
from numbers import Real

import pandas as pd

from scactive._errors import InputError
from scactive.metrics import curve_area, labels_to_reach
from scactive.pl._style import CEILING, order_strategies, require_columns

FINAL_METRICS = ("accuracy", "macro_f1", "weighted_f1", "loss")
_RUN_KEYS = ["model", "strategy", "batch_size", "seed"]
NOT_REACHED = "not reached"


def _labels_text(mean: float, reached: int, with_ceiling: int) -> str:
    if with_ceiling == 0:
        return "no ceiling"
    if reached == 0:
        return NOT_REACHED
    return f"{mean:.0f} ({reached}/{with_ceiling} seeds)"


def _per_run(results: pd.DataFrame, target: float) -> pd.DataFrame:
    """One row per run (model, strategy, batch size, seed) with its final values."""
    ceiling = results[results["strategy"] == CEILING]
    ceiling_f1 = ceiling.groupby(["model", "seed"])["macro_f1"].mean()
    records = []
    for key, run in results.groupby(_RUN_KEYS, dropna=False, sort=False):
        run = run.sort_values("round", kind="stable")
        last = run.iloc[-1]
        rec = dict(zip(_RUN_KEYS, key, strict=True))
        rec["final_round"] = last["round"]
        rec["final_n_labeled"] = last["n_labeled"]
        for m in FINAL_METRICS:
            rec[m] = last[m]
        if rec["strategy"] == CEILING:
            rec["auc_macro_f1"] = math.nan
            rec["labels_to_target"] = math.nan
            rec["has_ceiling"] = False
        else:
            x, y = run["n_labeled"].to_numpy(), run["macro_f1"].to_numpy()
            rec["auc_macro_f1"] = curve_area(x, y)
            ceil = ceiling_f1.get((rec["model"], rec["seed"]), math.nan)
            rec["has_ceiling"] = not pd.isna(ceil)
            rec["labels_to_target"] = labels_to_reach(x, y, target * float(ceil))
        records.append(rec)
    return pd.DataFrame.from_records(records)


def summary_table(results: pd.DataFrame, target: float = 0.95) -> pd.DataFrame:
    """Summarise each model, strategy and batch size over seeds.

    Parameters
    ----------
    results
        The ``results.csv`` table of ``scactive simulate`` (ceiling rows included).
    target
        Fraction of the ceiling's macro-F1 (same model and seed) a run must reach.

    Returns
    -------
    pandas.DataFrame
        One row per model, strategy and batch size (ceiling rows last within each model, with
        ``batch_size`` NaN), with columns:

        - ``model``, ``strategy``, ``batch_size``, ``n_seeds``;
        - ``final_round``, ``final_n_labeled``: mean over seeds of the last round's values;
        - ``<metric>_mean`` and ``<metric>_std`` for accuracy, macro_f1, weighted_f1 and loss
          at the last round (std over seeds, NaN for one seed);
        - ``auc_macro_f1_mean`` / ``_std``: area under the macro-F1 curve against
          ``n_labeled``, divided by the ``n_labeled`` range (the curve's mean macro-F1);
        - ``labels_to_target``: mean over the seeds that reached it of the first
          ``n_labeled`` with macro-F1 >= ``target`` x the ceiling's macro-F1 (NaN if none);
        - ``seeds_reached``: how many seeds reached it; ``seeds_with_ceiling``: how many seeds
          had a ceiling to compare with;
        - ``labels_to_target_text``: e.g. ``"340 (2/3 seeds)"``, ``"not reached"`` or
          ``"no ceiling"`` (empty for ceiling rows).
    """
    cols = [*_RUN_KEYS, "round", "n_labeled", *FINAL_METRICS]
    require_columns(results, cols, arg="results")
    if not isinstance(target, Real) or not target > 0:
        raise InputError(f"target={target!r} is not valid; expected a number > 0, e.g. 0.95.")
    if results.empty:
        raise InputError("results is empty; run `scactive simulate` first.")
    runs = _per_run(results, float(target))
    grouped = runs.groupby(["model", "strategy", "batch_size"], dropna=False, sort=False)
    out = grouped.agg(
        n_seeds=("seed", "nunique"),
        final_round=("final_round", "mean"),
        final_n_labeled=("final_n_labeled", "mean"),
        **{f"{m}_{s}": (m, s) for m in (*FINAL_METRICS, "auc_macro_f1") for s in ("mean", "std")},
        labels_to_target=("labels_to_target", "mean"),
        seeds_reached=("labels_to_target", "count"),
        seeds_with_ceiling=("has_ceiling", "sum"),
    ).reset_index()
    out["seeds_with_ceiling"] = out["seeds_with_ceiling"].astype(int)
    out["batch_size"] = out["batch_size"].round().astype("Int64")  # <NA> for the ceiling
    out["labels_to_target_text"] = [
        "" if s == CEILING else _labels_text(m, int(r), int(c))
        for s, m, r, c in zip(
            out["strategy"],
            out["labels_to_target"],
            out["seeds_reached"],
            out["seeds_with_ceiling"],
            strict=True,
        )
    ]
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
