"""Learning curves from a small start on real data, for the docs.

Runs (or resumes) ``scactive simulate`` on pbmc3k and the Kang PBMC reference: a 20-cell start,
batch 9, 20 rounds (to 200 labels), 5 seeds, every strategy, the default learner ``mlp2`` and
``logreg``. Then draws macro-F1 against labeled cells (mean and ± one standard deviation over
seeds) into
``docs/figures/learning_curves.png`` and prints a markdown table of macro-F1 at 50, 100 and
200 labels (the nearest round at or below) and the labels needed to reach 95% of the whole-pool
logistic regression.

    .venv/bin/python benchmarks/learning_curves.py [--runs runs/curves] [--jobs 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scactive.metrics import labels_to_reach
from scactive.pl import labels_curve, strategy_palette

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {
    "pbmc3k": (DATA / "pbmc3k_seurat_labels.h5ad", ["--min-genes", "500"]),
    # the Kang reference holds 2,511 genes only: its median cell has 389 detected
    "Kang PBMC": (DATA / "kang2018_pbmc_muscat_refdata.h5ad", ["--min-genes", "200"]),
}
STRATEGIES = "random,entropy,margin,qbc,bald,diversity,wkmc,typiclust,coreset,probcover,maxherding"
MODELS = ("mlp2", "logreg")
BUDGETS = (50, 100, 200)


def run(path: Path, extra: list[str], out: Path, jobs: int) -> pd.DataFrame:
    command = [
        sys.executable,
        "-m",
        "scactive",
        "simulate",
        str(path),
        "--label-key",
        "cell_type",
        "--out",
        str(out),
        "--models",
        ",".join(MODELS),
        "--strategies",
        STRATEGIES,
        "--batch-sizes",
        "9",
        "--rounds",
        "20",
        "--seeds",
        "5",
        "--initial",
        "20",
        "--no-report",
        "--no-progress",
        "--jobs",
        str(jobs),
        *extra,
    ]
    subprocess.run(command, check=True)
    return pd.read_csv(out / "results.csv")


def at_budget(results: pd.DataFrame, budget: int) -> pd.Series:
    rows = results[(results.strategy != "ceiling") & (results.n_labeled <= budget)]
    last = rows.loc[rows.groupby(["model", "strategy", "seed"])["n_labeled"].idxmax()]
    return last.groupby(["model", "strategy"])["macro_f1"].mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/curves"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/learning_curves.png"))
    args = parser.parse_args()
    tables = {
        name: run(path, extra, args.runs / name.split()[0].lower(), args.jobs)
        for name, (path, extra) in DATASETS.items()
    }
    strategies = STRATEGIES.split(",")
    palette = strategy_palette(strategies)
    fig = Figure(figsize=(13, 8.5), layout="constrained")
    axes = fig.subplots(len(tables), len(MODELS), squeeze=False)
    for row, (name, table) in enumerate(tables.items()):
        for col, model in enumerate(MODELS):
            ax = axes[row, col]
            present = set(table.loc[table.model == model, "strategy"])
            ran = [s for s in strategies if s in present]  # logreg has no MC dropout
            labels_curve(table, model=model, strategies=ran, palette=palette, ax=ax, spread="std")
            ax.set_title(f"{name}: {model}")
            ax.set_ylim(0, 1)
            if ax.get_legend() is not None:
                ax.get_legend().remove()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", title="strategy")
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)

    for name, table in tables.items():
        print(markdown_summary(name, table))


def ceiling_f1(table: pd.DataFrame, model: str) -> float:
    rows = table[(table.strategy == "ceiling") & (table.model == model)]
    return float(rows["macro_f1"].mean())


def markdown_summary(name: str, table: pd.DataFrame) -> str:
    """Macro-F1 at each budget and labels to reach 95% of logreg's whole-pool macro-F1."""
    target = 0.95 * ceiling_f1(table, "logreg")
    columns = [at_budget(table, b).rename(f"F1 @ {b}") for b in BUDGETS]
    runs = table[table.strategy != "ceiling"].sort_values("round")
    reach = runs.groupby(["model", "strategy", "seed"])[["n_labeled", "macro_f1"]].apply(
        lambda g: labels_to_reach(g["n_labeled"], g["macro_f1"], target)
    )
    columns.append(
        reach.groupby(["model", "strategy"])
        .agg(
            lambda v: (
                f"{np.nanmean(v):.0f} ({v.notna().sum()}/{len(v)})"
                if v.notna().any()
                else "not reached"
            )
        )
        .rename("labels to 95%")
    )
    summary = pd.concat(columns, axis=1).reset_index()
    ceilings = ", ".join(f"{m} {ceiling_f1(table, m):.3f}" for m in MODELS)
    lines = [
        f"### {name}: whole-pool macro-F1 {ceilings}; 95% of logreg's = {target:.3f}",
        "",
        "| " + " | ".join(summary.columns) + " |",
        "|" + "---|" * len(summary.columns),
    ]
    for _, row in summary.iterrows():
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
