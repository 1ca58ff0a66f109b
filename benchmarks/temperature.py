"""Would a temperature fitted on the labeled cells make the accuracy estimate honest?

The app's estimate (:func:`scactive.loop.expected_macro_f1`) reads the model's probabilities
as they are, and on pbmc3k it runs high (``docs/annotate.md``). The textbook remedy is
temperature scaling: divide the log-probabilities by ``T`` fitted to minimise the negative
log-likelihood of held-out predictions. Without held-out labels the only ones available are
out-of-fold predictions of the labeled cells, and the labeled cells are chosen by the strategy
(an uncertainty strategy picks the hard ones), so the fitted ``T`` may be biased.

Simulated sessions as in ``benchmarks/calibration.py`` (``mlp2``, a 20-cell random start, batch
9); after each round's training: 3-fold out-of-fold probabilities of the labeled cells (one
``mlp2`` per fold; a cell whose type its fold's training cells lack is left out of the fit),
``T`` fitted in [0.05, 20] and, separately, bounded below by 1 (never sharper than the model);
the estimate on the unlabeled pool cells raw and with each ``T``, against the truth there.

    .venv/bin/python benchmarks/temperature.py [--seeds 2] [--rounds 10] [--jobs 2]
    .venv/bin/python benchmarks/temperature.py --report-only

Writes ``benchmarks/results/temperature_rounds.csv`` and prints the bias and mean absolute
error of each estimate per dataset and strategy and per labels-per-type bin.
"""

from __future__ import annotations

import argparse
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import BATCH, DATASETS, MODEL, band_bin, band_names
from scipy.optimize import minimize_scalar
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold

import scactive
from scactive.bench import GridCell, GridOptions, SeedData, prepare
from scactive.bench._grid import run_cell
from scactive.loop._stopping import expected_macro_f1
from scactive.models import learner_input, make_learner

RESULTS = Path(__file__).resolve().parent / "results" / "temperature_rounds.csv"
FOLDS = 3
ESTIMATES = ("raw", "temperature", "temperature_at_least_1")


def tempered(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / temperature)`` row by row."""
    z = np.log(np.clip(proba, 1e-12, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(pairs: list[tuple[np.ndarray, int]], low: float = 0.05) -> float:
    """The ``T`` in ``[low, 20]`` of least negative log-likelihood of the true types
    (``pairs``: out-of-fold probabilities and the true type's column); 1 without pairs."""
    if not pairs:
        return 1.0

    def nll(t: float) -> float:
        return -float(np.mean([np.log(tempered(p[None], t)[0, k] + 1e-12) for p, k in pairs]))

    return float(minimize_scalar(nll, bounds=(low, 20.0), method="bounded").x)


def out_of_fold(data: SeedData, X: np.ndarray, y: np.ndarray, labeled: np.ndarray, seed: int):
    """Out-of-fold (probabilities, true column) of the labeled cells, ``FOLDS`` folds."""
    pairs = []
    split = KFold(min(FOLDS, len(labeled)), shuffle=True, random_state=seed)
    for k, (fit, held) in enumerate(split.split(labeled)):
        learner = make_learner(MODEL, data.features, rng=seed + k, given=learner_input(MODEL))
        learner.fit(X[labeled[fit]], y[labeled[fit]])
        columns = {c: i for i, c in enumerate(learner.classes_)}
        proba = np.asarray(learner.predict_proba(X[labeled[held]]))
        pairs += [(p, columns[t]) for p, t in zip(proba, y[labeled[held]], strict=True)
                  if t in columns]  # fmt: skip
    return pairs


def run_one(job: tuple[str, int, str, int]) -> list[dict]:
    name, seed, strategy, rounds = job
    warnings.filterwarnings("ignore")
    path, options = DATASETS[name]
    prepared = prepare(scactive.read(path), "cell_type", options)
    n_types = len(prepared.classes)
    data = SeedData(prepared, seed, options)
    X, y = data.pool_matrix(learner_input(MODEL)), np.asarray(data.y_pool)
    out = []

    def read(round_, learner, state):
        labeled = np.flatnonzero(state.labeled)
        proba = np.asarray(learner.predict_proba(X))[~state.labeled]
        truth = y[~state.labeled]
        called = np.asarray(learner.classes_, dtype=object)[proba.argmax(axis=1)]
        pairs = out_of_fold(data, X, y, labeled, 1000 * seed + round_)
        free, bounded = fit_temperature(pairs), fit_temperature(pairs, low=1.0)
        out.append(
            dict(
                data=name, strategy=strategy, seed=seed, round=round_,
                n_labeled=len(labeled), labels_per_type=len(labeled) / n_types,
                true_f1=f1_score(truth, called, labels=np.unique(truth), average="macro",
                                 zero_division=0),
                T=free, T_at_least_1=bounded,
                raw=expected_macro_f1(proba, n_types=n_types),
                temperature=expected_macro_f1(tempered(proba, free), n_types=n_types),
                temperature_at_least_1=expected_macro_f1(tempered(proba, bounded),
                                                         n_types=n_types),
            )
        )  # fmt: skip

    grid = GridOptions(models=(MODEL,), strategies=(strategy,), batch_sizes=(BATCH,),
                       seeds=seed + 1, n_rounds=rounds, ceiling=False)  # fmt: skip
    run_cell(GridCell(MODEL, strategy, BATCH, seed), data, grid, on_fit=read)
    print(f"{name} seed {seed} {strategy}: done", flush=True)
    return out


def report(rows: pd.DataFrame) -> None:
    names = band_names()
    rows = rows.assign(bin=[names[k] for k in band_bin(rows["labels_per_type"].to_numpy())])

    def cells(part: pd.DataFrame) -> str:
        errors = [part[e] - part["true_f1"] for e in ESTIMATES]
        return " | ".join(f"{err.mean():+.3f} / {err.abs().mean():.3f}" for err in errors)

    head = " | ".join(f"{e}: bias / MAE" for e in ESTIMATES)
    for keys in (["data", "strategy"], ["data", "bin"]):
        print(f"\n| {' | '.join(keys)} | rounds | median T | {head} |")
        print("|---" * (len(keys) + 2 + len(ESTIMATES)) + "|")
        for key, part in rows.groupby(keys, sort=False):
            print(f"| {' | '.join(map(str, key))} | {len(part)} | {part['T'].median():.2f} | "
                  f"{cells(part)} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--strategies", default="random,entropy,bald")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if not args.report_only:
        strategies = args.strategies.split(",")
        jobs = [(name, seed, strategy, args.rounds) for name in DATASETS
                for seed in range(args.seeds) for strategy in strategies]  # fmt: skip
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = pd.DataFrame([r for part in pool.map(run_one, jobs) for r in part])
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        rows.to_csv(RESULTS, index=False)
    report(pd.read_csv(RESULTS))


if __name__ == "__main__":
    main()
