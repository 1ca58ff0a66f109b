"""Learner accuracy against the number of labeled cells, on real data.

For each dataset: a stratified 80/20 split (as in ``scactive simulate``), features fitted on the
pool, then each learner trained on random labeled subsets of the pool (and on the whole pool)
and scored on the validation cells. Prints a markdown table of macro-F1 (mean and standard
deviation over seeds); with the whole pool (``all``) in ``--sizes``, also writes every wrong
whole-pool call (truth, call, cells) to ``<out>_errors.csv`` and prints the most common.

    .venv/bin/python benchmarks/learners.py            # pbmc3k and Kang PBMC, 5 seeds
    .venv/bin/python benchmarks/learners.py --seeds 2 --sizes 20,100
    .venv/bin/python benchmarks/learners.py --datasets pbmc3k,kang,pbmc68k,kang-example,xin,wang,\
        dropseq,celseq2 --models mlp2,mlp2-hvg,logreg-ovr,knn-transfer --whole-pool-seeds 5
    .venv/bin/python benchmarks/learners.py --datasets ... --models mlp2,mlp2+ovr,mlp2/ovr \
        --sizes all --seeds 5 --whole-pool-seeds 5   # the blends of docs/learners.md
    .venv/bin/python benchmarks/learners.py --datasets kang,pbmc3k --models mlp2,mlp2-20-epochs,\
        mlp2-unweighted,mlp2x5,logreg-ovr --sizes all --seeds 5 --whole-pool-seeds 5
    .venv/bin/python benchmarks/learners.py --datasets kang,pbmc3k --models mlp2,\
        mlp2-tuned-pca-3,mlp2-tuned-pca-10,mlp2-tuned-pca-30,logreg-ovr --sizes 20,50,200,all \
        --seeds 5 --whole-pool-seeds 5 --out benchmarks/results/learners_tuned_pca.csv
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

import scactive
from scactive.bench import DataOptions, SeedData, prepare
from scactive.models import PRESETS, make_learner
from scactive.models._classifier import MLPClassifier
from scactive.models._one_class import fit_learner, uses_unlabeled

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# name: (file, label key, data options)
DATASETS = {
    "pbmc3k": (DATA / "pbmc3k_seurat_labels.h5ad", "cell_type", DataOptions(min_genes=500)),
    "kang": (DATA / "kang2018_pbmc_muscat_refdata.h5ad", "cell_type", DataOptions(min_genes=200)),
    # X is scaled; .raw holds the log-normalised values
    "pbmc68k": (
        DATA / "scanpy_pbmc68k_reduced.h5ad",
        "bulk_labels",
        DataOptions(min_genes=0, use_raw=True),
    ),
    "kang-example": (
        DATA / "kang2018_pbmc_ifnb_muscat_example.h5ad",
        "cell_type",
        DataOptions(min_genes=200),
    ),
    "xin": (DATA / "pancreas_xin2016_scclassify.h5ad", "cell_type", DataOptions(min_genes=0)),
    "wang": (DATA / "pancreas_wang2016_scclassify.h5ad", "cell_type", DataOptions(min_genes=0)),
    "dropseq": (
        DATA / "ding2020_pbmc1_dropseq_scannotate.h5ad",
        "CellType",
        DataOptions(min_genes=0),
    ),
    "celseq2": (DATA / "ding2020_pbmc1_celseq2_scmoo.h5ad", "CellType", DataOptions(min_genes=0)),
    # FACS-sorted populations: the labels are the sorting, not a tool's calls
    "sorted": (
        DATA / "zheng2017_sorted_pbmc_mudan.h5ad",
        "sorted_population",
        DataOptions(min_genes=200),
    ),
}
# Not a preset: the default learner's network and training on the 2,000 scaled HVGs, no PCA.
HVG_MLP = "mlp2-hvg"
# Not presets: the default learner with one setting changed (docs/learners.md, the whole pool).
VARIANTS = {
    "mlp2-20-epochs": dict(max_batch_size=None),  # 20 full epochs at any size, not 300 steps
    "mlp2-unweighted": dict(class_weight=None),
}
ENSEMBLE, ENSEMBLE_SIZE = "mlp2x5", 5
# Not presets: mlp2 reading the scaled HVGs through its PCA projection made trainable, pulled
# back to the PCA by alpha / (labeled cells) x ||W - W_pca||^2 (the pull fades as labels grow).
TUNED_PCA = {"mlp2-tuned-pca-3": 3.0, "mlp2-tuned-pca-10": 10.0, "mlp2-tuned-pca-30": 30.0}


class TunedProjection:
    """Not a preset: ``mlp2`` whose first layer, the pool's PCA, also learns (see ``TUNED_PCA``).

    The rest is ``mlp2``'s: its network, schedule, optimiser and class weights; the projection
    has no weight decay, only the pull to where it started.
    """

    def __init__(self, features, seed: int, alpha: float) -> None:
        self.base = make_learner("mlp2", features, rng=seed)
        self.seed, self.alpha = seed, alpha

    def fit(self, X, y):
        import torch
        from sklearn.utils.class_weight import compute_class_weight

        from scactive.models._classifier import _loss
        from scactive.models._network import MLP

        base, X = self.base, np.asarray(X, dtype=np.float32)
        self.classes_, codes = np.unique(y, return_inverse=True)
        torch.manual_seed(self.seed)
        net = MLP(X.shape[1], len(self.classes_), tuple(base.hidden), base.dropout,
                  base.layer_norm, base.projection, base.projection_offset)  # fmt: skip
        net.project.requires_grad_(True)
        start = net.project.weight.detach().clone()
        rest = [p for name, p in net.named_parameters() if not name.startswith("project")]
        groups = [{"params": rest, "weight_decay": base.weight_decay},
                  {"params": list(net.project.parameters()), "weight_decay": 0.0}]  # fmt: skip
        optimiser = torch.optim.AdamW(groups, lr=base.lr)
        weight = compute_class_weight("balanced", classes=np.arange(len(self.classes_)), y=codes)
        loss_fn = _loss(torch.as_tensor(weight, dtype=torch.float32), None, codes)
        n = len(codes)
        batch, n_steps = base._schedule(n)
        X_t, y_t = torch.from_numpy(X), torch.from_numpy(codes.astype(np.int64))
        generator, step = torch.Generator().manual_seed(self.seed), 0
        net.train()
        while step < n_steps:
            order = torch.randperm(n, generator=generator)
            for first in range(0, n, batch):
                idx = order[first : first + batch]
                optimiser.zero_grad(set_to_none=True)
                pull = self.alpha / n * ((net.project.weight - start) ** 2).sum()
                (loss_fn(net(X_t[idx]), y_t[idx], idx) + pull).backward()
                optimiser.step()
                step += 1
                if step >= n_steps:
                    break
        self.network_ = net.eval()
        return self

    def predict(self, X) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits = self.network_(torch.from_numpy(np.asarray(X, dtype=np.float32)))
        return self.classes_[logits.argmax(1).numpy()]


class SeedEnsemble:
    """Not a preset: ``mlp2`` trained from ``ENSEMBLE_SIZE`` seeds, probabilities averaged."""

    def __init__(self, features, seed: int) -> None:
        self.features, self.seed = features, seed

    def fit(self, X, y):
        self.members_ = [
            make_learner("mlp2", self.features, rng=1000 * k + self.seed).fit(X, y)
            for k in range(ENSEMBLE_SIZE)
        ]
        self.classes_ = self.members_[0].classes_
        return self

    def predict(self, X) -> np.ndarray:
        proba = np.mean([member.predict_proba(X) for member in self.members_], axis=0)
        return self.classes_[proba.argmax(1)]


class Blend:
    """Not a preset: ``mlp2`` and the CellTypist-style ``logreg-ovr`` on the same cells.

    ``choose=False``: the equal-weight average of their probabilities (``mlp2+ovr``).
    ``choose=True`` (``mlp2/ovr``): 3-fold cross-validation on the labeled cells picks
    ``mlp2``, ``logreg-ovr`` or their average by macro-F1 (``mlp2`` when a type has fewer
    than 3 labeled cells), then that choice is fitted on every labeled cell.
    """

    PARTS = ("mlp2", "logreg-ovr")

    def __init__(self, features, seed: int, choose: bool) -> None:
        self.features, self.seed, self.choose = features, seed, choose

    def _fit_parts(self, X, y):
        parts = [make_learner(m, self.features, rng=self.seed) for m in self.PARTS]
        return [part.fit(X, y) for part in parts]

    @staticmethod
    def _proba(parts, X, use: str) -> np.ndarray:
        probas = [part.predict_proba(X) for part in parts]
        return {"mlp2": probas[0], "logreg-ovr": probas[1]}.get(use, (probas[0] + probas[1]) / 2)

    def fit(self, X, y):
        self.use_ = "average"
        if self.choose and pd.Series(y).value_counts().min() >= 3:
            folds = StratifiedKFold(3, shuffle=True, random_state=self.seed).split(X, y)
            scores = {use: [] for use in (*self.PARTS, "average")}
            for train, test in folds:
                parts = self._fit_parts(X[train], y[train])
                for use, values in scores.items():
                    picked = parts[0].classes_[self._proba(parts, X[test], use).argmax(1)]
                    values.append(f1_score(y[test], picked, average="macro"))
            self.use_ = max(scores, key=lambda use: np.mean(scores[use]))
        elif self.choose:
            self.use_ = "mlp2"
        self.parts_ = self._fit_parts(X, y)
        self.classes_ = self.parts_[0].classes_
        return self

    def predict(self, X) -> np.ndarray:
        return self.classes_[self._proba(self.parts_, X, self.use_).argmax(1)]


def build(model: str, data: SeedData, seed: int):
    """The learner named ``model``: a preset, ``mlp2-hvg``, ``mlp2+ovr``, ``mlp2/ovr``,
    ``mlp2x5``, one of ``VARIANTS`` or of ``TUNED_PCA``."""
    if model == HVG_MLP:
        return MLPClassifier(**PRESETS["mlp2"].params, random_state=seed)
    if model in VARIANTS:
        return make_learner("mlp2", data.features, rng=seed, **VARIANTS[model])
    if model == ENSEMBLE:
        return SeedEnsemble(data.features, seed)
    if model in TUNED_PCA:
        return TunedProjection(data.features, seed, TUNED_PCA[model])
    if model in ("mlp2+ovr", "mlp2/ovr"):
        return Blend(data.features, seed, choose=model == "mlp2/ovr")
    return make_learner(model, data.features, rng=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="pbmc3k,kang")
    parser.add_argument("--models", default="mlp2,mlp3,mlp3-ln,mlp2-paper,logreg,logreg-pca")
    parser.add_argument("--sizes", default="20,50,100,200,all")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--whole-pool-seeds", type=int, default=1, help="seeds of the 'all' column (default 1)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/learners.csv"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows, mistakes = [], []
    for name in args.datasets.split(","):
        path, key, options = DATASETS[name]
        prepared = prepare(scactive.read(path), key, options)
        for seed in range(args.seeds):
            data = SeedData(prepared, seed, options)
            rng = np.random.default_rng(seed)
            for size in args.sizes.split(","):
                n = len(data.pool) if size == "all" else min(int(size), len(data.pool))
                if size == "all" and seed >= args.whole_pool_seeds:
                    continue
                subset = rng.choice(len(data.pool), n, replace=False)
                for model in args.models.split(","):
                    learner = build(model, data, seed)
                    start = time.perf_counter()
                    # a semi-supervised learner also gets the pool's other cells, unlabeled
                    fit_learner(
                        learner,
                        data.X_pool[subset],
                        data.y_pool[subset],
                        unlabeled=data.X_pool[np.setdiff1d(np.arange(len(data.pool)), subset)]
                        if uses_unlabeled(learner)
                        else None,
                    )
                    seconds = time.perf_counter() - start
                    predicted = learner.predict(data.X_val)
                    rows.append(
                        {
                            "dataset": name,
                            "model": model,
                            "n_labeled": size,
                            "seed": seed,
                            "macro_f1": f1_score(data.y_val, predicted, average="macro"),
                            "seconds": seconds,
                        }
                    )
                    print(rows[-1], flush=True)
                    if size == "all":
                        wrong = predicted != data.y_val
                        mistakes += [{"dataset": name, "model": model, "seed": seed,
                                      "truth": t, "called": c}
                                     for t, c in zip(data.y_val[wrong], predicted[wrong],
                                                     strict=True)]  # fmt: skip
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    summary = table.groupby(["dataset", "model", "n_labeled"], sort=False)["macro_f1"].agg(
        lambda v: f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}"
    )
    print(summary.unstack("n_labeled").to_string())
    if mistakes:  # the whole pool's wrong calls, truth -> call, summed over seeds
        errors = pd.DataFrame(mistakes).groupby(["dataset", "model", "truth", "called"]).size()
        errors = errors.rename("cells").reset_index()
        errors.to_csv(args.out.with_name(f"{args.out.stem}_errors.csv"), index=False)
        print("\nWhole pool, wrong calls summed over seeds (the five most common):")
        for (name, model), part in errors.groupby(["dataset", "model"], sort=False):
            top = part.nlargest(5, "cells")
            calls = ", ".join(
                f"{t} -> {c} {n}" for t, c, n in top[["truth", "called", "cells"]].values
            )
            print(f"- {name} {model} ({part['cells'].sum()} cells): {calls}")


if __name__ == "__main__":
    main()
