"""How far the app's accuracy estimate is from the truth, and where a call should become unknown.

Simulated sessions on pbmc3k and the Kang PBMC reference (``mlp2``, a 20-cell random start,
batch 9, 20 rounds, 5 seeds; ``random``, ``entropy`` (the app's default) and ``bald``). After
each round's training, on the pool cells nobody has labeled (the cells the app's estimate
speaks of):

- ``estimated_f1``: the estimate the app shows (:func:`scactive.loop.expected_macro_f1`, over
  the task's types), and the truth: the macro-F1 of the calls against the known labels;
- every cell's confidence (its most probable type's probability) and whether the call is right.

It prints markdown tables and writes:

- ``benchmarks/results/calibration_rounds.csv``: one row per round (estimate, truth, labels per
  type; fraction unknown and accuracy of the kept calls at each threshold);
- ``benchmarks/results/calibration_bins.csv``: calls and right calls per confidence bin;
- with ``--write-band``, ``src/scactive/data/estimate_band.json``: the 10% and 90% quantiles of
  truth minus estimate per labels-per-type bin, pooled over both datasets, which the app shows
  as the estimate's range (:mod:`scactive.app._estimate`).

The unknown threshold's default follows a rule fixed in advance: a call is kept when it is
more likely right than wrong, so the threshold is the lowest confidence from which every
confidence bin's calls are right at least half the time, in each dataset (the larger of the
two), rounded up to 0.05.

    .venv/bin/python benchmarks/calibration.py [--seeds 5] [--write-band]
    .venv/bin/python benchmarks/calibration.py --report-only [--write-band]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

import scactive
from scactive.bench import DataOptions, GridCell, GridOptions, SeedData, prepare
from scactive.bench._grid import run_cell
from scactive.loop._stopping import expected_macro_f1
from scactive.models import learner_input

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {
    "pbmc3k": (DATA / "pbmc3k_seurat_labels.h5ad", DataOptions(min_genes=500, initial=20)),
    "Kang": (DATA / "kang2018_pbmc_muscat_refdata.h5ad", DataOptions(min_genes=200, initial=20)),
}
STRATEGIES = ("random", "entropy", "bald")
MODEL, BATCH, ROUNDS = "mlp2", 9, 20
THRESHOLDS = np.round(np.arange(0.30, 0.91, 0.05), 2)
BIN_EDGES = np.round(np.arange(0.0, 1.0001, 0.05), 2)
#: Labels per type at which the band is cut (left edges; the last bin is open).
BAND_EDGES = (0, 3, 5, 10, 20)
RESULTS = Path(__file__).resolve().parent / "results"
BAND_FILE = Path(__file__).resolve().parents[1] / "src" / "scactive" / "data" / "estimate_band.json"


def run(seeds: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rounds, bins = [], []
    for name, (path, options) in DATASETS.items():
        prepared = prepare(scactive.read(path), "cell_type", options)
        classes = prepared.classes
        for seed in range(seeds):
            data = SeedData(prepared, seed, options)
            X, y = data.pool_matrix(learner_input(MODEL)), np.asarray(data.y_pool)
            for strategy in STRATEGIES:
                meta = dict(data=name, strategy=strategy, seed=seed)

                def read(round_, learner, state, meta=meta, X=X, y=y, n_types=len(classes)):
                    proba = np.asarray(learner.predict_proba(X))
                    left = ~state.labeled
                    p, truth = proba[left], y[left]
                    called = np.asarray(learner.classes_, dtype=object)[p.argmax(axis=1)]
                    confidence, right = p.max(axis=1), called == truth
                    present = np.unique(truth)
                    row = dict(
                        **meta,
                        round=round_,
                        n_labeled=state.n_labeled,
                        labels_per_type=state.n_labeled / n_types,
                        estimated_f1=expected_macro_f1(p, n_types=n_types),
                        true_f1=f1_score(
                            truth, called, labels=present, average="macro", zero_division=0
                        ),
                        true_accuracy=right.mean(),
                    )
                    for t in THRESHOLDS:
                        kept = confidence >= t
                        row[f"unknown_{t:.2f}"] = 1 - kept.mean()
                        row[f"kept_accuracy_{t:.2f}"] = right[kept].mean() if kept.any() else np.nan
                    rounds.append(row)
                    which = np.clip(np.digitize(confidence, BIN_EDGES) - 1, 0, len(BIN_EDGES) - 2)
                    for b in np.unique(which):
                        inside = which == b
                        bins.append(
                            dict(
                                **meta,
                                round=round_,
                                n_labeled=state.n_labeled,
                                low=BIN_EDGES[b],
                                n=int(inside.sum()),
                                right=int(right[inside].sum()),
                            )
                        )

                cell = GridCell(MODEL, strategy, BATCH, seed)
                grid = GridOptions(models=(MODEL,), strategies=(strategy,), batch_sizes=(BATCH,),
                                   seeds=seeds, n_rounds=ROUNDS, ceiling=False)  # fmt: skip
                run_cell(cell, data, grid, on_fit=read)
                print(f"{name} seed {seed} {strategy}: done", flush=True)
    return pd.DataFrame(rounds), pd.DataFrame(bins)


def band_bin(labels_per_type: np.ndarray) -> np.ndarray:
    return np.digitize(labels_per_type, BAND_EDGES) - 1


def band_names() -> list[str]:
    """The bins of :func:`band_bin` as text: ``0-3`` ... ``>=20``."""
    edges = [*BAND_EDGES, np.inf]
    pairs = zip(edges, edges[1:], strict=False)
    return [f"{a}-{b}" if np.isfinite(b) else f">={a}" for a, b in pairs]


def band(rows: pd.DataFrame) -> pd.DataFrame:
    """10% / 90% quantiles of truth minus estimate per labels-per-type bin."""
    rows = rows.dropna(subset=["estimated_f1"])
    error = rows["true_f1"] - rows["estimated_f1"]
    grouped = error.groupby(band_bin(rows["labels_per_type"].to_numpy()))
    return pd.DataFrame(
        {"low": grouped.quantile(0.1), "high": grouped.quantile(0.9), "n": grouped.size()}
    )


def coverage(rows: pd.DataFrame, fitted: pd.DataFrame) -> float:
    rows = rows.dropna(subset=["estimated_f1"])
    b = band_bin(rows["labels_per_type"].to_numpy())
    low, high = fitted["low"].reindex(b).to_numpy(), fitted["high"].reindex(b).to_numpy()
    error = (rows["true_f1"] - rows["estimated_f1"]).to_numpy()
    return float(np.mean((error >= low) & (error <= high)))


def corrected_error(rows: pd.DataFrame, fitted_on: pd.DataFrame) -> float:
    """Mean absolute error on ``rows`` of the estimate plus ``fitted_on``'s median error
    (truth - estimate) of the same labels-per-type bin: a fixed bias correction."""
    fitted_on = fitted_on.dropna(subset=["estimated_f1"])
    error = fitted_on["true_f1"] - fitted_on["estimated_f1"]
    shift = error.groupby(band_bin(fitted_on["labels_per_type"].to_numpy())).median()
    rows = rows.dropna(subset=["estimated_f1"])
    shifted = (
        rows["estimated_f1"].to_numpy()
        + shift.reindex(band_bin(rows["labels_per_type"].to_numpy())).to_numpy()
    )
    return float(np.nanmean(np.abs(rows["true_f1"].to_numpy() - shifted)))


def threshold(bins: pd.DataFrame) -> tuple[float, dict]:
    """The rule of the module docstring: per dataset, the lowest bin edge from which every bin
    (with at least 50 calls) is right at least half the time; the larger over datasets."""
    found = {}
    for name, part in bins.groupby("data"):
        table = part.groupby("low")[["n", "right"]].sum()
        table = table[table["n"] >= 50]
        accuracy = table["right"] / table["n"]
        below = accuracy.index[accuracy < 0.5]
        found[name] = (
            float(accuracy.index[accuracy.index > below.max()].min())
            if len(below)
            else float(accuracy.index.min())
        )
    return float(np.ceil(max(found.values()) / 0.05 - 1e-9) * 0.05), found


def report(rows: pd.DataFrame, bins: pd.DataFrame, write_band: bool) -> None:
    names = band_names()
    print("\n## Estimate against truth (unlabeled pool cells), by labels per type\n")
    print("| data | strategy | labels/type | rounds | bias (est-truth) | mean abs. error |")
    print("|---|---|---|---|---|---|")
    for (name, strategy), part in rows.groupby(["data", "strategy"], sort=False):
        part = part.dropna(subset=["estimated_f1"])
        b = band_bin(part["labels_per_type"].to_numpy())
        for k in np.unique(b):
            sub = part[b == k]
            err = sub["estimated_f1"] - sub["true_f1"]
            print(f"| {name} | {strategy} | {names[k]} | {len(sub)} | {err.mean():+.3f} | "
                  f"{err.abs().mean():.3f} |")  # fmt: skip
    pooled = band(rows)
    print("\n## The band (truth - estimate, 10% and 90% quantiles, both datasets)\n")
    print("| labels/type | rounds | low | high |")
    print("|---|---|---|---|")
    for k, r in pooled.iterrows():
        print(f"| {names[k]} | {r.n:.0f} | {r.low:+.3f} | {r.high:+.3f} |")
    print("\nCoverage of the 80% band (fitted on one dataset, checked on the other):")
    for name in rows["data"].unique():
        held_out = coverage(rows[rows["data"] == name], band(rows[rows["data"] != name]))
        print(f"- fitted without {name}, on {name}: {held_out:.2f}")
    print(f"- pooled band on both (in-sample): {coverage(rows, pooled):.2f}")
    print("\nMean absolute error with the median bias of one dataset's bins subtracted:")
    for name in rows["data"].unique():
        here, other = rows[rows["data"] == name], rows[rows["data"] != name]
        raw = (here["true_f1"] - here["estimated_f1"]).abs().mean()
        own, others = corrected_error(here, here), corrected_error(here, other)
        print(f"- on {name}: raw {raw:.3f}, less its own bias {own:.3f}, "
              f"less the other's {others:.3f}")  # fmt: skip
    default, found = threshold(bins)
    print("\n## Calls by confidence (pooled over strategies, seeds and rounds)\n")
    table = bins.groupby(["data", "low"])[["n", "right"]].sum().reset_index()
    table["accuracy"] = table["right"] / table["n"]
    pivot = table.pivot(index="low", columns="data", values="accuracy")
    print("| confidence from | " + " | ".join(pivot.columns) + " |")
    print("|---|" + "---|" * len(pivot.columns))
    for low, r in pivot.iterrows():
        print(f"| {low:.2f} | " + " | ".join(f"{v:.3f}" for v in r) + " |")
    print(f"\nLowest confidence from which calls are right at least half the time: {found}; "
          f"default threshold {default:.2f}")  # fmt: skip
    print("\n## Unknown calls and kept-call accuracy at each threshold (mean over rounds)\n")
    cols = []
    for t in THRESHOLDS:
        cols += [f"unknown_{t:.2f}", f"kept_accuracy_{t:.2f}"]
    for n_labeled in (47, 101, 200):
        at = rows[rows["n_labeled"] == n_labeled]
        if len(at):
            means = at.groupby("data")[cols].mean()
            print(f"\n{n_labeled} labels:\n")
            print("| data | " + " | ".join(f"{t:.2f}" for t in THRESHOLDS) + " |")
            print("|---|" + "---|" * len(THRESHOLDS))
            for name, r in means.iterrows():
                cells = [f"{r[f'unknown_{t:.2f}']:.2f} / {r[f'kept_accuracy_{t:.2f}']:.3f}"
                         for t in THRESHOLDS]  # fmt: skip
                print(f"| {name} | " + " | ".join(cells) + " |")
    if write_band:
        BAND_FILE.write_text(
            json.dumps(
                {
                    "about": "truth minus estimate of the expected macro-F1 on unlabeled cells, "
                    "10% and 90% quantiles per labels-per-type bin; simulated sessions of "
                    f"{MODEL} on {' and '.join(DATASETS)} ({', '.join(STRATEGIES)}; "
                    f"{rows['seed'].nunique()} seeds), benchmarks/calibration.py",
                    "model": MODEL,
                    "labels_per_type_from": [float(BAND_EDGES[k]) for k in pooled.index],
                    "low": [round(float(v), 4) for v in pooled["low"]],
                    "high": [round(float(v), 4) for v in pooled["high"]],
                    "rounds": [int(v) for v in pooled["n"]],
                    "unknown_below": round(default, 2),
                },
                indent=1,
            )
            + "\n"
        )
        print(f"\nwrote {BAND_FILE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--write-band", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    paths = RESULTS / "calibration_rounds.csv", RESULTS / "calibration_bins.csv"
    if args.report_only:
        rows, bins = (pd.read_csv(p) for p in paths)
    else:
        rows, bins = run(args.seeds)
        rows.to_csv(paths[0], index=False)
        bins.to_csv(paths[1], index=False)
    report(rows, bins, args.write_band)


if __name__ == "__main__":
    main()
