"""The report's headline: which strategy saves how many labels against random, seed by seed.

Each strategy is paired with ``random`` on the same model, batch size and seed (the same
split and the same start), so the differences are paired. The target is one number per model:
90%, 95% and ``target`` times the ceiling's macro-F1 averaged over seeds, so it does not
move with a seed whose validation cells happen to be easy or hard.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scactive import pl
from scactive.pl._style import CEILING
from scactive.report._runs import RUN_KEYS, level_name, levels_with, run_table

BASELINE = "random"


def headline_table(results: pd.DataFrame, target: float = 0.95) -> pd.DataFrame:
    """One row per model, batch size and strategy (other than random), paired with random.

    Columns: ``model``, ``batch_size``, ``strategy``, ``n_seeds`` (seeds both ran),
    ``start_f1`` (mean macro-F1 at the first round), and for each level ``pct`` of 90, 95 and
    ``target``: ``target_f1_<pct>`` (pct% of the ceiling averaged over seeds),
    ``labels_<pct>`` and ``labels_random_<pct>`` (mean labels to reach it over the seeds where
    both did), ``seeds_reached_<pct>`` / ``seeds_reached_random_<pct>``, ``seeds_both_<pct>``,
    ``labels_saved_<pct>`` (mean paired difference there, random minus strategy) and
    ``labels_saved_std_<pct>``; then ``auc_gain`` (mean paired difference of the normalised
    curve area) and ``auc_gain_std``, ``wins`` / ``losses`` (seeds with the larger / smaller
    area), and ``verdict``: ``"better"`` or ``"worse"`` when every seed agrees or the mean area
    difference is more than twice its standard error, else ``"no clear difference"``.
    """
    levels = levels_with(target)
    runs = run_table(results, levels)
    if runs.empty or BASELINE not in set(runs["strategy"]):
        return pd.DataFrame()
    runs = runs[runs["strategy"] != CEILING].set_index(RUN_KEYS)
    base = runs.xs(BASELINE, level="strategy")
    base = {key: group.droplevel([0, 1]) for key, group in base.groupby(level=[0, 1])}
    rows = []
    others = runs.drop(index=BASELINE, level="strategy")
    for (model, strategy, batch), mine in others.groupby(level=[0, 1, 2], sort=False):
        if (model, batch) not in base:
            continue
        mine = mine.droplevel([0, 1, 2])
        paired = base[(model, batch)].reindex(mine.index)
        keep = paired["auc_macro_f1"].notna()
        mine, paired = mine[keep], paired[keep]
        if mine.empty:
            continue
        gain = (mine["auc_macro_f1"] - paired["auc_macro_f1"]).to_numpy()
        row = {
            "model": model,
            "batch_size": batch,
            "strategy": strategy,
            "n_seeds": len(mine),
            "start_f1": float(mine["start_f1"].mean()),
        }
        for level in levels:
            row.update(_reach(mine, paired, level_name(level)))
        row.update(
            auc_gain=gain.mean(),
            auc_gain_std=gain.std(ddof=1) if len(gain) > 1 else math.nan,
            wins=int((gain > 0).sum()),
            losses=int((gain < 0).sum()),
            verdict=_verdict(gain),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _reach(mine: pd.DataFrame, base: pd.DataFrame, pct: str) -> dict[str, object]:
    """Labels to one level, strategy and random paired by seed."""
    a, b = mine[f"labels_to_{pct}"], base[f"labels_to_{pct}"]
    both = a.notna() & b.notna()
    saved = (b - a)[both].to_numpy()
    return {
        f"target_f1_{pct}": float(mine[f"target_f1_{pct}"].iloc[0]),
        f"labels_{pct}": a[both].mean() if both.any() else math.nan,
        f"labels_random_{pct}": b[both].mean() if both.any() else math.nan,
        f"seeds_reached_{pct}": int(a.notna().sum()),
        f"seeds_reached_random_{pct}": int(b.notna().sum()),
        f"seeds_both_{pct}": int(both.sum()),
        f"labels_saved_{pct}": saved.mean() if len(saved) else math.nan,
        f"labels_saved_std_{pct}": saved.std(ddof=1) if len(saved) > 1 else math.nan,
    }


def _verdict(gain: np.ndarray) -> str:
    n = len(gain)
    if n > 1 and (gain > 0).all():
        return "better"
    if n > 1 and (gain < 0).all():
        return "worse"
    if n > 2:
        se = gain.std(ddof=1) / math.sqrt(n)
        if se > 0 and abs(gain.mean()) > 2 * se:
            return "better" if gain.mean() > 0 else "worse"
    return "no clear difference"


def headline_text(
    table: pd.DataFrame, target: float, stops: pd.DataFrame | None = None
) -> list[str]:
    """Plain sentences, one per model and batch size: the best strategy against random with
    the labels it needs to 90% and 95% of the mean ceiling, or a warning when the start already
    reaches ``target`` (so that no strategy can save labels); and, given ``stops``
    (:func:`scactive.pl.stop_summary`), where the stopping rule would have stopped for the
    best strategy (random when none is clearly better)."""
    if table.empty:
        return [f"No `{BASELINE}` runs to compare with: add {BASELINE} to --strategies."]
    lines = []
    main = level_name(float(target))
    levels = [level_name(level) for level in levels_with(target)]
    for (model, batch), group in table.groupby(["model", "batch_size"], sort=False):
        best = group.sort_values("auc_gain", ascending=False).iloc[0]
        where = f"{model}, batch {int(batch)}"
        chosen = best["strategy"] if best["verdict"] == "better" else BASELINE
        if (group["start_f1"] >= group[f"target_f1_{main}"]).all():
            line = (
                f"{where}: the start already reaches {main}% of the ceiling "
                f"(macro-F1 {group['start_f1'].mean():.3f}), so no strategy can save labels "
                "here; start from fewer labeled cells (e.g. --initial 20) to tell them apart."
            )
        elif best["verdict"] != "better":
            line = f"{where}: no strategy is clearly better than random."
        else:
            reach = "".join(_reach_text(best, pct) for pct in levels)
            line = (
                f"{where}: {best['strategy']} gains most over random: curve area "
                f"{best['auc_gain']:+.3f} (sd {best['auc_gain_std']:.3f}), better in "
                f"{best['wins']} of {best['n_seeds']} seeds.{reach}"
            )
        lines.append(line + _stop_text(stops, model, batch, chosen))
    return lines


def _reach_text(row: pd.Series, pct: str) -> str:
    """`` To 90% of the mean ceiling (macro-F1 0.720): ...`` ("" without a ceiling)."""
    if math.isnan(row[f"target_f1_{pct}"]):
        return ""
    saved = row[f"labels_saved_{pct}"]
    both = (
        f"; where both do ({_seeds(row[f'seeds_both_{pct}'])}) it needs "
        f"{row[f'labels_{pct}']:.0f} labels, random {row[f'labels_random_{pct}']:.0f}: "
        f"{abs(saved):.0f} {'fewer' if saved >= 0 else 'more'} on average"
        if row[f"seeds_both_{pct}"]
        else ""
    )
    return (
        f" {pct}% of the mean ceiling (macro-F1 {row[f'target_f1_{pct}']:.3f}): reached in "
        f"{row[f'seeds_reached_{pct}']} of {row['n_seeds']} seeds, random in "
        f"{row[f'seeds_reached_random_{pct}']}{both}."
    )


def _seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _stop_text(stops: pd.DataFrame | None, model: str, batch: object, strategy: str) -> str:
    """Where the stopping rule would have stopped ``strategy`` ("" without stopping data)."""
    if stops is None or stops.empty:
        return ""
    row = stops[
        (stops["model"] == model) & (stops["batch_size"] == batch) & (stops["strategy"] == strategy)
    ]
    if row.empty:
        return ""
    row = row.iloc[0]
    if not row["seeds_stopped"]:
        return f" With {strategy}, the stopping rule did not say stop in any seed."
    value = row["estimated_f1"]
    estimate = "no estimate" if pd.isna(value) else f"estimate {value:.3f}"
    return (
        f" With {strategy}, the stopping rule would have stopped at {row['n_labeled']:.0f} "
        f"labels (macro-F1 there {row['macro_f1']:.3f}, {estimate}; "
        f"{int(row['seeds_stopped'])} of {int(row['n_seeds'])} seeds stopped)."
    )


def headline_html(results: pd.DataFrame, target: float) -> str:
    """The report's first section: the sentences and the paired table."""
    from . import _html

    table = headline_table(results, target)
    stops = pl.stop_summary(results) if pl.has_stopping(results) else None
    parts = ["<h2>Headline</h2>"]
    parts += [f"<p><b>{_html.esc(line)}</b></p>" for line in headline_text(table, target, stops)]
    if table.empty:
        return "\n".join(parts)

    def num(value, digits=0):
        return "–" if pd.isna(value) else f"{value:.{digits}f}"

    def with_sd(value, sd, digits=0, sign=""):
        text = "–" if pd.isna(value) else f"{value:{sign}.{digits}f}"
        return text if pd.isna(sd) else f"{text} ({sd:.{digits}f})"

    levels = [level_name(level) for level in levels_with(target)]
    parts.append(
        "<p>Each strategy against random on the same seeds (same split, same start). Targets: "
        f"{', '.join(f'{pct}%' for pct in levels)} of the ceiling's macro-F1 averaged over "
        "seeds. Labels: mean over the seeds where both reached it (in brackets: seeds that "
        "reached it). Area: the mean macro-F1 over the learning curve; its gain is paired by "
        "seed.</p>"
    )
    header = ["model", "batch", "strategy"]
    for pct in levels:
        header += [f"labels to {pct}%", f"random to {pct}%", "labels saved (sd)"]
    header += ["area gain (sd)", "wins / losses", "verdict"]
    rows = []
    for r in table.to_dict("records"):
        row = [r["model"], int(r["batch_size"]), r["strategy"]]
        for pct in levels:
            row += [
                f"{num(r[f'labels_{pct}'])} ({r[f'seeds_reached_{pct}']}/{r['n_seeds']})",
                f"{num(r[f'labels_random_{pct}'])} "
                f"({r[f'seeds_reached_random_{pct}']}/{r['n_seeds']})",
                with_sd(r[f"labels_saved_{pct}"], r[f"labels_saved_std_{pct}"]),
            ]
        row += [
            with_sd(r["auc_gain"], r["auc_gain_std"], 3, sign="+"),
            f"{r['wins']} / {r['losses']}",
            r["verdict"],
        ]
        rows.append(row)
    parts.append(_html.table(header, rows, numeric=set(range(3, len(header) - 2))))
    return "\n".join(parts)
