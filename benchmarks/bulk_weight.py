"""Should a bulk answer (a label given to a whole cluster or lasso) weigh less in training?

A simulated person labels cells one by one (the single answers, right) and gives the largest
clusters of the session's map a label in one action each: the cluster's most common type, so
every cell of another type inside the cluster gets a wrong label, as a person labelling a
cluster on the map would give it. The learner (``mlp2``, the app's default) trains on both,
the bulk answers weighted ``w`` (``sample_weight``), and is scored on the held-out cells
(macro-F1). Clusters: Leiden on the pool PCA at the app's resolution
(:data:`scactive.app._workbench.CLUSTER_RESOLUTION`), as the app's "select cluster N".

    .venv/bin/python benchmarks/bulk_weight.py [--seeds 5] [--singles 50] [--clusters 3]

Prints a markdown table (mean ± sd over seeds, and seeds where a weight beats weight 1) and
writes ``benchmarks/results/bulk_weight.csv``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

import scactive
from scactive.app._workbench import CLUSTER_RESOLUTION
from scactive.bench import DataOptions, SeedData, prepare
from scactive.models import learner_input, make_learner
from scactive.strategies._cold import leiden_clusters

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {
    "pbmc3k": (DATA / "pbmc3k_seurat_labels.h5ad", DataOptions(min_genes=500)),
    "Kang": (DATA / "kang2018_pbmc_muscat_refdata.h5ad", DataOptions(min_genes=200)),
}
MODEL = "mlp2"
#: Weights of a bulk answer (None: no bulk answers at all, the single answers alone).
WEIGHTS = (None, 1.0, 0.5, 0.2, 0.1)
OUT = Path(__file__).resolve().parent / "results" / "bulk_weight.csv"


def run(seeds: int, singles: int, n_clusters: int) -> pd.DataFrame:
    rows = []
    for name, (path, options) in DATASETS.items():
        prepared = prepare(scactive.read(path), "cell_type", options)
        for seed in range(seeds):
            data = SeedData(prepared, seed, options)
            X = data.pool_matrix(learner_input(MODEL))
            X_val = data.val_matrix(learner_input(MODEL))
            y, y_val = np.asarray(data.y_pool), np.asarray(data.y_val)
            rng = np.random.default_rng(seed)
            clusters = leiden_clusters(data.embedding, None, seed, resolution=CLUSTER_RESOLUTION)
            sizes = np.bincount(clusters)
            chosen = np.argsort(-sizes)[:n_clusters]
            bulk = np.flatnonzero(np.isin(clusters, chosen))
            bulk_labels = y[bulk].copy()
            for c in chosen:  # the cluster's most common type, for every cell in it
                inside = clusters[bulk] == c
                values, counts = np.unique(y[bulk][inside], return_counts=True)
                bulk_labels[inside] = values[counts.argmax()]
            wrong = float(np.mean(bulk_labels != y[bulk]))
            single = rng.choice(np.setdiff1d(np.arange(len(y)), bulk), singles, replace=False)
            for weight in WEIGHTS:
                if weight is None:
                    cells, labels, w = single, y[single], np.ones(len(single))
                else:
                    cells = np.concatenate([single, bulk])
                    labels = np.concatenate([y[single], bulk_labels])
                    w = np.concatenate([np.ones(len(single)), np.full(len(bulk), weight)])
                learner = make_learner(MODEL, data.features, rng=seed, given=learner_input(MODEL))
                learner.fit(X[cells], labels, sample_weight=w)
                called = learner.predict(X_val)
                rows.append(
                    dict(
                        data=name,
                        seed=seed,
                        weight="no bulk" if weight is None else f"{weight:g}",
                        n_single=len(single),
                        n_bulk=len(bulk),
                        bulk_wrong=wrong,
                        macro_f1=f1_score(y_val, called, average="macro", zero_division=0),
                        accuracy=float(np.mean(called == y_val)),
                    )
                )
            print(f"{name} seed {seed}: {len(bulk)} bulk cells, {wrong:.1%} wrong", flush=True)
    return pd.DataFrame(rows)


def report(rows: pd.DataFrame) -> None:
    print("\n| data | bulk weight | bulk cells (wrong) | macro-F1 | vs weight 1 (wins/losses) |")
    print("|---|---|---|---|---|")
    for name, part in rows.groupby("data", sort=False):
        base = part[part.weight == "1"].set_index("seed")["macro_f1"]
        for weight, sub in part.groupby("weight", sort=False):
            f1 = sub.set_index("seed")["macro_f1"]
            diff = (f1 - base).dropna()
            versus = (
                "-" if weight == "1"
                else f"{diff.mean():+.3f} ({(diff > 0).sum()}/{(diff < 0).sum()})"
            )  # fmt: skip
            print(
                f"| {name} | {weight} | {sub.n_bulk.mean():.0f} ({sub.bulk_wrong.mean():.1%}) | "
                f"{f1.mean():.3f} ± {f1.std():.3f} | {versus} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--singles", type=int, default=50)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.report_only:
        rows = pd.read_csv(OUT, dtype={"weight": str})
    else:
        rows = run(args.seeds, args.singles, args.clusters)
        rows.to_csv(OUT, index=False)
    report(rows)


if __name__ == "__main__":
    main()
