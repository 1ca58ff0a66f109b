"""A model trained on pbmc3k carried to Kang's PBMCs with ``scactive.predict``.

    .venv/bin/python benchmarks/predict_transfer.py             # 3 seeds, 2.5 minutes
    .venv/bin/python benchmarks/predict_transfer.py --seeds 1

The default learner (``mlp2``) is trained the way the annotation app trains it
(``prepare_cells``: normalised, 2,000 highly variable genes, the learner on their PCA) on every
pbmc3k cell passing the QC of the other benchmarks (500 detected genes), saved with
``save_model``, and read back by ``scactive.predict`` on all of Kang's cells (counts; their
genes are Ensembl IDs, matched through Kang's ``symbol`` column). Two models:

- ``all genes``: trained on pbmc3k's whole transcriptome. Kang holds only 2,511 genes, so most
  of the model's genes are missing; ``predict`` refuses that by default, and is run here with
  ``min_shared_genes`` lowered, the missing genes set to 0.
- ``shared genes``: trained on the genes the two datasets share, as ``scactive compare`` does
  (and as CellTypist advises for data holding a gene subset).

The calls are mapped to Kang's types with ``docs/examples/pbmc3k_to_kang.csv`` and scored
(``scactive.metrics.evaluate_labels``: accuracy, macro-F1 over Kang's types, calls outside
them counting as wrong) as the raw prediction, the label thresholded at ``unknown_below``
(0.5: "unknown" below) and the majority vote of the labels over the over-clustering; on
every Kang cell and on the 8,472 that pass ``compare``'s QC (200 genes), the cells of
docs/comparison.md. Writes ``runs/predict_transfer.csv`` (one row per model, call, cells and
seed) and the confusion matrices of the first seed's ``shared genes`` model,
``docs/figures/predict_pbmc3k_to_kang.png``. Measured in docs/predict.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

import scactive
from scactive._meta import package_version
from scactive._predict import CALL, CLUSTERS, MAJORITY, PREDICTION
from scactive._predict_options import UNKNOWN
from scactive.app._prepare import prepare_cells
from scactive.bench import DataOptions, prepare
from scactive.cli._compare import read_label_map
from scactive.io import select_matrix
from scactive.metrics import evaluate_labels
from scactive.models import TrainedModel, learner_input, make_learner, save_model
from scactive.pl import confusion_matrices
from scactive.pp import gene_symbols

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PBMC3K = DATA / "pbmc3k_seurat_labels.h5ad"
KANG = DATA / "kang2018_pbmc_muscat_refdata.h5ad"
LABEL_MAP = ROOT / "docs" / "examples" / "pbmc3k_to_kang.csv"
FIGURE = ROOT / "docs" / "figures" / "predict_pbmc3k_to_kang.png"
MODEL = "mlp2"
#: ``min_shared_genes`` of the model on all of pbmc3k's genes (the default refuses Kang).
ALL_GENES_MIN_SHARED = 0.1
#: What is scored: the obs columns of ``scactive.predict``, by name in the tables.
CALLS = {PREDICTION: "prediction", CALL: "label", MAJORITY: "majority vote"}


def train(reference, labels, seed: int, out: Path) -> Path:
    """The app's model of ``reference`` (counts), saved to ``out``."""
    cells = prepare_cells(select_matrix(reference), seed, learner_input(MODEL))
    learner = make_learner(MODEL, cells.features, rng=seed, given=cells.input).fit(cells.X, labels)
    return save_model(TrainedModel(learner, cells.features, package_version(), cells.input), out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "predict_transfer.csv")
    args = parser.parse_args()
    scactive.set_threads(1)  # one thread, as the command line holds it
    warnings.filterwarnings("ignore", category=FutureWarning)
    reference, query = scactive.read(PBMC3K), scactive.read(KANG)
    label_map = read_label_map(LABEL_MAP)
    qc = prepare(reference, "cell_type", DataOptions(min_genes=500))  # the benchmarks' QC
    reference = reference[qc.adata.obs_names]
    truth = query.obs["cell_type"].astype(str)
    kang_types = truth.unique()
    scored_cells = {
        "all Kang cells": query.obs_names,
        "Kang cells with >= 200 genes": prepare(
            query, "cell_type", DataOptions(min_genes=200), query=True
        ).adata.obs_names,
    }
    shared = reference.var_names.intersection(gene_symbols(query), sort=False)
    models = {"all genes": reference, "shared genes": reference[:, shared]}
    print(f"pbmc3k: {reference.n_obs} cells; Kang: {query.n_obs} cells, {len(shared)} shared genes")
    rows, figure_rows = [], []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            for name, cells in models.items():
                start = time.perf_counter()
                path = train(cells, qc.labels, seed, Path(folder) / f"{name}-{seed}.safetensors")
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", UserWarning)
                    result = scactive.predict(
                        query,
                        path,
                        majority_vote=True,
                        min_shared_genes=ALL_GENES_MIN_SHARED if name == "all genes" else 0.5,
                        rng=seed,
                    )
                info = result.uns["scactive_predict"]
                for column, call in CALLS.items():
                    mapped = result.obs[column].astype(str).map(lambda v: label_map.get(v, v))
                    for subset, cells_scored in scored_cells.items():
                        summary, _ = evaluate_labels(
                            truth[cells_scored], mapped[cells_scored], kang_types
                        )
                        rows.append(
                            {
                                "model": name,
                                "call": call,
                                "cells": subset,
                                "seed": seed,
                                "n_cells": len(cells_scored),
                                "model_genes": info["n_model_genes"],
                                "shared_genes": info["n_shared_genes"],
                                "clusters": result.obs[CLUSTERS].nunique(),
                                **summary,
                                # frac_unassigned counts every call outside Kang's types
                                "frac_called_unknown": float(
                                    (mapped[cells_scored] == UNKNOWN).mean()
                                ),
                            }
                        )
                    if seed == 0 and name == "shared genes":
                        figure_rows.append(
                            pd.DataFrame(
                                {
                                    "method": call,
                                    "training_set": "reference",
                                    "budget": reference.n_obs,
                                    "seed": seed,
                                    "true": truth.to_numpy(),
                                    "predicted": mapped.to_numpy(),
                                }
                            )
                        )
                print(
                    f"seed {seed}, {name}: {info['n_shared_genes']} of {info['n_model_genes']} "
                    f"model genes in Kang, {time.perf_counter() - start:.0f} s"
                    + "".join(f"\n  warning: {w.message}" for w in caught),
                    flush=True,
                )
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    summary = table.groupby(["cells", "model", "call"], sort=False)[
        ["accuracy", "macro_f1", "frac_unassigned", "frac_called_unknown"]
    ].agg(lambda v: f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}")
    print(summary.to_string())
    fig = confusion_matrices(
        pd.concat(figure_rows), CALLS.values(), training_set="reference", budget=reference.n_obs
    )
    fig.suptitle(f"{MODEL} trained on pbmc3k (shared genes), predicted on Kang", fontsize="medium")
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=150, bbox_inches="tight")
    print(f"Wrote {args.out} and {FIGURE}")


if __name__ == "__main__":
    main()
