"""Size and load time of a model file: the safetensors format against the earlier pickle.

    .venv/bin/python benchmarks/model_file.py                  # mlp2, logreg-ovr, knn-transfer
    .venv/bin/python benchmarks/model_file.py --models mlp2 --repeats 20

Each learner is trained the way the annotation app trains it (``prepare_cells``: normalised,
2,000 highly variable genes, the learner on its own input) on every pbmc3k cell passing the
QC of the other benchmarks (500 detected genes), then written with ``save_model`` (the
model file: safetensors arrays and a JSON document) and with ``joblib.dump`` of the same
objects (the earlier format, a pickle). ``load`` is ``load_model`` of the file (for the new
format: the document read, the objects built, a probe cell predicted); the median of
``--repeats`` loads in this process, after one untimed load. Measured in docs/predict.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np

import scactive
from scactive._meta import package_version
from scactive.app._prepare import prepare_cells
from scactive.bench import DataOptions, prepare
from scactive.io import select_matrix
from scactive.models import TrainedModel, learner_input, load_model, make_learner, save_model

ROOT = Path(__file__).resolve().parents[1]
PBMC3K = ROOT.parent / "shared" / "data" / "pbmc3k_seurat_labels.h5ad"


def timed(load, repeats: int) -> float:
    load()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp2,logreg-ovr,knn-transfer")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    scactive.set_threads(1)
    adata = scactive.read(PBMC3K)
    qc = prepare(adata, "cell_type", DataOptions(min_genes=500))  # the benchmarks' QC
    reference = adata[qc.adata.obs_names].copy()
    labels = qc.labels
    print("| learner | safetensors size | pickle size | safetensors load | pickle load |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            cells = prepare_cells(select_matrix(reference), 0, learner_input(name))
            learner = make_learner(name, cells.features, rng=0, given=cells.input)
            learner.fit(cells.X, labels)
            model = TrainedModel(learner, cells.features, package_version(), cells.input, name)
            new = save_model(model, Path(folder) / f"{name}.safetensors")
            old = Path(folder) / f"{name}.joblib"
            joblib.dump({"learner": learner, "features": cells.features, "input": cells.input}, old)
            check = load_model(new).predict_proba(reference[:50])
            np.testing.assert_array_equal(check, model.predict_proba(reference[:50]))
            t_new = timed(lambda path=new: load_model(path), args.repeats)
            t_old = timed(lambda path=old: load_model(path, trust_pickle=True), args.repeats)
            print(
                f"| {name} | {new.stat().st_size / 1e6:.2f} MB | {old.stat().st_size / 1e6:.2f} MB "
                f"| {t_new * 1e3:.0f} ms | {t_old * 1e3:.0f} ms |"
            )


if __name__ == "__main__":
    main()
