"""One row per run (model, strategy, batch size, seed): what the summary and the headline read.

The targets do not move between seeds: a level (e.g. 0.9) times the ceiling's macro-F1 of the
same model averaged over seeds, so a seed whose validation cells happen to be easy or hard
changes neither its own target nor the others'.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from scactive.metrics import curve_area, labels_to_reach, level_columns
from scactive.pl._style import CEILING, RUN_KEYS

LEVELS = (0.9, 0.95)
"""Fractions of the mean ceiling the report always gives labels for."""

FINAL_METRICS = ("accuracy", "macro_f1", "weighted_f1", "loss")


def levels_with(target: float) -> tuple[float, ...]:
    """:data:`LEVELS` plus ``target``, ascending, each once."""
    return tuple(sorted({*LEVELS, float(target)}))


def level_name(level: float) -> str:
    """Column suffix and percentage of a level: 0.9 -> ``"90"``, 0.975 -> ``"97.5"``."""
    return f"{100 * level:g}"


def fixed_targets(results: pd.DataFrame) -> pd.Series:
    """The ceiling's macro-F1 per model, averaged over seeds (missing: no ceiling run)."""
    ceiling = results[results["strategy"] == CEILING]
    return ceiling.groupby("model")["macro_f1"].mean()


def run_table(results: pd.DataFrame, levels: Iterable[float]) -> pd.DataFrame:
    """One row per run, the ceiling's included (with NaN curve values and targets).

    Columns: the run keys, ``final_round``, ``final_n_labeled``, the last round's value of each
    of :data:`FINAL_METRICS` present in ``results`` and of the per-level macro-F1 columns
    (:func:`~scactive.metrics.level_columns`; runs with a hierarchy), ``start_f1`` (macro-F1
    at the first round), ``auc_macro_f1`` (:func:`~scactive.metrics.curve_area` of macro-F1 against
    ``n_labeled``), ``has_ceiling`` and, per level, ``target_f1_<pct>`` (level x the mean
    ceiling) and ``labels_to_<pct>`` (first ``n_labeled`` reaching it; NaN if never or when
    the model has no ceiling).
    """
    levels = tuple(levels)
    targets = fixed_targets(results)
    metrics = [m for m in FINAL_METRICS if m in results.columns]
    metrics += level_columns(results.columns)
    records = []
    for key, run in results.groupby(RUN_KEYS, dropna=False, sort=False):
        run = run.sort_values("round", kind="stable")
        x, y = run["n_labeled"].to_numpy(), run["macro_f1"].to_numpy()
        last = run.iloc[-1]
        rec = dict(zip(RUN_KEYS, key, strict=True))
        rec.update(final_round=last["round"], final_n_labeled=last["n_labeled"])
        rec.update({m: last[m] for m in metrics})
        active = rec["strategy"] != CEILING
        rec.update(start_f1=float(y[0]), auc_macro_f1=curve_area(x, y) if active else math.nan)
        ceiling = float(targets.get(rec["model"], math.nan)) if active else math.nan
        rec["has_ceiling"] = not math.isnan(ceiling)
        for level in levels:
            goal = level * ceiling
            rec[f"target_f1_{level_name(level)}"] = goal
            rec[f"labels_to_{level_name(level)}"] = labels_to_reach(x, y, goal)
        records.append(rec)
    return pd.DataFrame.from_records(records)
