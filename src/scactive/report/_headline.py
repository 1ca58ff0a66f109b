"""The report's headline: which strategy saves how many labels against random, seed by seed.

Each strategy is paired with ``random`` on the same model, batch size and seed (the same
split and the same start), so the differences are paired. The target is one number per model:
``target`` times the ceiling's macro-F1 averaged over seeds, so it does not move with a seed
whose validation cells happen to be easy or hard.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scactive.metrics import curve_area, labels_to_reach
from scactive.pl._style import CEILING

BASELINE = "random"


def headline_table(results: pd.DataFrame, target: float = 0.95) -> pd.DataFrame:
    """One row per model, batch size and strategy (other than random), paired with random.

    Columns: ``model``, ``batch_size``, ``strategy``, ``n_seeds`` (seeds both ran),
    ``target_f1`` (the fixed target), ``labels`` and ``labels_random`` (mean labels to the
    target over the seeds where both reached it), ``seeds_reached`` / ``seeds_reached_random``,
    ``seeds_both`` (seeds where both reached it), ``labels_saved`` (mean paired difference there,
    random minus strategy) and ``labels_saved_std``,
    ``auc_gain`` (mean paired difference of the normalised curve area) and ``auc_gain_std``,
    ``wins`` / ``losses`` (seeds with the larger / smaller area), and ``verdict``: ``"better"``
    or ``"worse"`` when every seed agrees or the mean area difference is more than twice its
    standard error, else ``"no clear difference"``.
    """
    runs = results[results["strategy"] != CEILING]
    if BASELINE not in set(runs["strategy"]):
        return pd.DataFrame()
    ceilings = results[results["strategy"] == CEILING].groupby("model")["macro_f1"].mean()
    per_run = {}
    for key, run in runs.groupby(["model", "batch_size", "strategy", "seed"], sort=False):
        run = run.sort_values("round", kind="stable")
        x, y = run["n_labeled"].to_numpy(), run["macro_f1"].to_numpy()
        goal = target * ceilings.get(key[0], math.nan)
        per_run[key] = (curve_area(x, y), labels_to_reach(x, y, goal), goal, y[0])
    rows = []
    paired = dict.fromkeys((m, b, st) for (m, b, st, _) in per_run if st != BASELINE)
    for model, batch, strategy in paired:
        seeds = [
            s
            for (m, b, st, s) in per_run
            if (m, b, st) == (model, batch, strategy) and (m, b, BASELINE, s) in per_run
        ]
        if not seeds:
            continue
        mine = [per_run[(model, batch, strategy, s)] for s in seeds]
        base = [per_run[(model, batch, BASELINE, s)] for s in seeds]
        gain = np.array([a[0] - b[0] for a, b in zip(mine, base, strict=True)])
        both = [(a[1], b[1]) for a, b in zip(mine, base, strict=True)]
        both = [(a, b) for a, b in both if not (math.isnan(a) or math.isnan(b))]
        saved = np.array([b - a for a, b in both])
        rows.append(
            {
                "model": model,
                "batch_size": batch,
                "strategy": strategy,
                "n_seeds": len(seeds),
                "target_f1": mine[0][2],
                "start_f1": float(np.mean([m[3] for m in mine])),
                "labels": np.mean([a for a, _ in both]) if both else math.nan,
                "labels_random": np.mean([b for _, b in both]) if both else math.nan,
                "seeds_reached": sum(not math.isnan(m[1]) for m in mine),
                "seeds_reached_random": sum(not math.isnan(b[1]) for b in base),
                "seeds_both": len(saved),
                "labels_saved": saved.mean() if len(saved) else math.nan,
                "labels_saved_std": saved.std(ddof=1) if len(saved) > 1 else math.nan,
                "auc_gain": gain.mean(),
                "auc_gain_std": gain.std(ddof=1) if len(gain) > 1 else math.nan,
                "wins": int((gain > 0).sum()),
                "losses": int((gain < 0).sum()),
                "verdict": _verdict(gain),
            }
        )
    return pd.DataFrame(rows)


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


def headline_text(table: pd.DataFrame, target: float) -> list[str]:
    """Plain sentences: the best strategy against random, and a warning when the start
    already reaches the target (so that no strategy can save labels)."""
    if table.empty:
        return [f"No `{BASELINE}` runs to compare with: add {BASELINE} to --strategies."]
    lines = []
    for (model, batch), group in table.groupby(["model", "batch_size"], sort=False):
        best = group.sort_values("auc_gain", ascending=False).iloc[0]
        where = f"{model}, batch {int(batch)}"
        if (group["start_f1"] >= group["target_f1"]).all():
            lines.append(
                f"{where}: the start already reaches {100 * target:g}% of the ceiling "
                f"(macro-F1 {group['start_f1'].mean():.3f}), so no strategy can save labels "
                "here; start from fewer labeled cells (e.g. --initial 20) to tell them apart."
            )
            continue
        if best["verdict"] != "better":
            lines.append(f"{where}: no strategy is clearly better than random.")
            continue
        saved = best["labels_saved"]
        both = (
            f"; where both do ({best['seeds_both']} seeds) it needs {abs(saved):.0f} "
            f"{'fewer' if saved >= 0 else 'more'} labels on average"
            if best["seeds_both"]
            else ""
        )
        reach = (
            ""
            if math.isnan(best["target_f1"])  # no ceiling run: no target
            else f" It reaches macro-F1 {best['target_f1']:.3f} in {best['seeds_reached']} of "
            f"{best['n_seeds']} seeds, random in {best['seeds_reached_random']}{both}."
        )
        lines.append(
            f"{where}: {best['strategy']} gains most over random: curve area "
            f"{best['auc_gain']:+.3f} (sd {best['auc_gain_std']:.3f}), better in {best['wins']} "
            f"of {best['n_seeds']} seeds.{reach}"
        )
    return lines


def headline_html(results: pd.DataFrame, target: float) -> str:
    """The report's first section: the sentences and the paired table."""
    from . import _html

    table = headline_table(results, target)
    parts = ["<h2>Headline</h2>"]
    parts += [f"<p><b>{_html.esc(line)}</b></p>" for line in headline_text(table, target)]
    if table.empty:
        return "\n".join(parts)

    def num(value, digits=0):
        return "" if pd.isna(value) else f"{value:.{digits}f}"

    parts.append(
        f"<p>Each strategy against random on the same seeds (same split, same start). Target: "
        f"{100 * target:g}% of the ceiling's macro-F1 averaged over seeds. Labels: mean over "
        "the seeds where both reached it. Area: the mean macro-F1 over the learning curve; "
        "its gain is paired by seed.</p>"
    )
    parts.append(
        _html.table(
            [
                "model",
                "batch",
                "strategy",
                "labels to target",
                "random",
                "labels saved (sd)",
                "area gain (sd)",
                "wins / losses",
                "verdict",
            ],  # fmt: skip
            [
                [
                    r.model,
                    r.batch_size,
                    r.strategy,
                    f"{num(r.labels)} ({r.seeds_reached}/{r.n_seeds})",
                    f"{num(r.labels_random)} ({r.seeds_reached_random}/{r.n_seeds})",
                    f"{num(r.labels_saved)} ({num(r.labels_saved_std)})",
                    f"{r.auc_gain:+.3f} ({num(r.auc_gain_std, 3)})",
                    f"{r.wins} / {r.losses}",
                    r.verdict,
                ]
                for r in table.itertuples()
            ],
            numeric={3, 4, 5, 6},
        )
    )
    return "\n".join(parts)
