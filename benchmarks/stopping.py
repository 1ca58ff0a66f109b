"""How well the estimate without held-out labels tracks the truth, and where the rule stops.

Reads the ``results.csv`` of ``scactive simulate`` runs and prints markdown tables:

1. ``estimated_f1`` (the model's expected macro-F1 on the unlabeled pool) against the true
   validation ``macro_f1``, over every round of every seed: mean absolute error, bias
   (estimate minus truth) and Pearson correlation; also over the rounds where every type of
   the data had a label (the estimate cannot count a type nobody labeled).
2. The stopping rule (Cohen's kappa between consecutive rounds' predictions >= kappa over
   3 rounds), recomputed from the ``agreement`` column for several thresholds: in how many
   seeds it stops within the run, at which labeled count (mean over the seeds that stop),
   the true macro-F1 there, and the final round's.

The runs (2 CPU cores; pbmc3k with the paper's 500-gene filter, Kang with 200):

    scactive simulate ../shared/data/pbmc3k_seurat_labels.h5ad --label-key cell_type \\
        --initial 20 --batch-sizes 9 --rounds 20 --seeds 3 --strategies random,bald \\
        --out runs/stop_pbmc3k
    scactive simulate ../shared/data/kang2018_pbmc_muscat_refdata.h5ad --label-key cell_type \\
        --min-genes 200 --initial 20 --batch-sizes 9 --rounds 20 --seeds 3 \\
        --strategies random,bald --out runs/stop_kang
    .venv/bin/python benchmarks/stopping.py pbmc3k=runs/stop_pbmc3k kang=runs/stop_kang
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from scactive.loop._stopping import STOP_KAPPA, STOP_WINDOW, StoppingRule

#: Agreement thresholds the rule is recomputed with (the first is the shipped one).
KAPPAS = (STOP_KAPPA, 0.98, 0.95, 0.9)
#: Labeled counts the estimate is shown at (the last round at or below each).
BUDGETS = (20, 50, 100, 200)


def read_runs(folders: dict[str, Path]) -> pd.DataFrame:
    """Every round of every run, with ``data`` naming the folder and ``all_types`` whether
    every type of the data (as the whole-pool ceiling knows them) had a label."""
    tables = []
    for name, folder in folders.items():
        table = pd.read_csv(Path(folder) / "results.csv")
        ceiling = table[table.strategy == "ceiling"]
        n_types = int(ceiling["n_types_found"].max()) if len(ceiling) else np.nan
        runs = table[table.strategy != "ceiling"].copy()
        runs["data"] = name
        runs["all_types"] = runs["n_types_found"] >= n_types
        runs["ceiling_f1"] = float(ceiling["macro_f1"].mean()) if len(ceiling) else np.nan
        tables.append(runs)
    return pd.concat(tables, ignore_index=True)


def _errors(rows: pd.DataFrame) -> dict:
    rows = rows.dropna(subset=["estimated_f1", "macro_f1"])
    error = rows["estimated_f1"] - rows["macro_f1"]
    spread = rows["estimated_f1"].std() > 0 and rows["macro_f1"].std() > 0
    return {
        "rounds": len(rows),
        "MAE": error.abs().mean(),
        "bias": error.mean(),
        "r": rows["estimated_f1"].corr(rows["macro_f1"]) if spread else np.nan,
    }


def accuracy_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Estimate against truth per data and strategy: all rounds, and with every type."""
    out = []
    for (data, strategy), rows in runs.groupby(["data", "strategy"], sort=False):
        every = _errors(rows)
        typed = _errors(rows[rows["all_types"]])
        out.append(
            {
                "data": data,
                "strategy": strategy,
                **every,
                "MAE, every type labeled": typed["MAE"],
                "bias, every type labeled": typed["bias"],
                "rounds with every type": typed["rounds"],
            }
        )
    return pd.DataFrame(out)


def budget_table(runs: pd.DataFrame, budgets=BUDGETS) -> pd.DataFrame:
    """Mean estimate and truth over seeds at the last round with at most each budget."""
    out = []
    for (data, strategy), rows in runs.groupby(["data", "strategy"], sort=False):
        for budget in budgets:
            below = rows[rows["n_labeled"] <= budget]
            at = below[below["n_labeled"] == below["n_labeled"].max()]
            out.append(
                {
                    "data": data,
                    "strategy": strategy,
                    "labels": int(at["n_labeled"].max()),
                    "estimated_f1": at["estimated_f1"].mean(),
                    "macro_f1": at["macro_f1"].mean(),
                    "estimate - truth (sd over seeds)": (at["estimated_f1"] - at["macro_f1"]).std(),
                }
            )
    return pd.DataFrame(out)


def stopping_table(runs: pd.DataFrame, kappas=KAPPAS) -> pd.DataFrame:
    """Where the rule stops, for each agreement threshold, per data and strategy."""
    out = []
    keys = ["data", "strategy", "batch_size", "seed"]
    for kappa in kappas:
        rule = StoppingRule(kappa=kappa, window=STOP_WINDOW)
        stops = []
        for (data, strategy, _, seed), run in runs.groupby(keys, sort=False):
            run = run.sort_values("round")
            said = rule.stops(run["agreement"].tolist())
            hit = int(np.argmax(said)) if any(said) else None
            stops.append(
                {
                    "data": data,
                    "strategy": strategy,
                    "seed": seed,
                    "stopped": hit is not None,
                    "labels at stop": run["n_labeled"].iloc[hit] if hit is not None else np.nan,
                    "F1 at stop": run["macro_f1"].iloc[hit] if hit is not None else np.nan,
                    "estimate at stop": run["estimated_f1"].iloc[hit]
                    if hit is not None
                    else np.nan,
                    "final labels": run["n_labeled"].iloc[-1],
                    "final F1": run["macro_f1"].iloc[-1],
                    "ceiling F1": run["ceiling_f1"].iloc[0],
                }
            )
        per_seed = pd.DataFrame(stops)
        for (data, strategy), rows in per_seed.groupby(["data", "strategy"], sort=False):
            out.append(
                {
                    "kappa": kappa,
                    "data": data,
                    "strategy": strategy,
                    "stopped": f"{int(rows['stopped'].sum())}/{len(rows)}",
                    "labels at stop": rows["labels at stop"].mean(),
                    "F1 at stop": rows["F1 at stop"].mean(),
                    "estimate at stop": rows["estimate at stop"].mean(),
                    "final labels": rows["final labels"].mean(),
                    "final F1": rows["final F1"].mean(),
                    "ceiling F1": rows["ceiling F1"].mean(),
                }
            )
    return pd.DataFrame(out)


def agreement_table(runs: pd.DataFrame, every: int = 4) -> pd.DataFrame:
    """The agreement with the previous round (mean over seeds) every ``every`` rounds and at
    the last: rows labeled cells, columns data and strategy."""
    rows = runs.dropna(subset=["agreement"])
    last = rows["round"].max()
    rows = rows[(rows["round"] % every == 1) | (rows["round"] == last)]
    rows = rows.assign(run=rows["data"] + " " + rows["strategy"])
    return rows.groupby(["n_labeled", "run"])["agreement"].mean().unstack("run")


def markdown(table: pd.DataFrame, *, index: bool = False) -> str:
    """A markdown table; numbers with three decimals, NaN as a dash."""
    if index:
        table = table.reset_index()

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return "-" if np.isnan(value) else f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |"]
    lines.append("|" + "---|" * len(table.columns))
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="name=folder of a simulate run")
    args = parser.parse_args()
    folders = dict(item.split("=", 1) if "=" in item else (item, item) for item in args.runs)
    runs = read_runs({name: Path(folder) for name, folder in folders.items()})
    shipped = StoppingRule().stops
    check = [
        shipped(run["agreement"].tolist()) == run["stop"].astype(bool).tolist()
        for _, run in runs.sort_values("round").groupby(["data", "strategy", "batch_size", "seed"])
    ]
    print(f"recorded `stop` matches the shipped rule in {sum(check)}/{len(check)} runs\n")
    print("## The estimate against the validation macro-F1\n")
    print(markdown(accuracy_table(runs)))
    print("\n## At a few budgets (mean over seeds)\n")
    print(markdown(budget_table(runs)))
    print(f"\n## The stopping rule (kappa >= threshold over {STOP_WINDOW} rounds)\n")
    print(markdown(stopping_table(runs)))
    print("\n## Agreement with the previous round (mean over seeds)\n")
    print(markdown(agreement_table(runs), index=True))


if __name__ == "__main__":
    main()
