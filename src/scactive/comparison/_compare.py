"""``scactive.comparison``: every method on the same cells, splits and labeled sets."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
import warnings
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch

from .._errors import InputError
from .._files import atomic_write, check_out_folder, is_empty, run_lock
from .._meta import progress_bar
from .._simulate import simulate
from ..bench import DataOptions, SeedData, prepare
from ..metrics import evaluate_labels
from ..pp import FeatureSpace, gene_symbols
from ._methods import CellSet, methods, resolve_methods, run_method, tool_version
from ._sets import POOL, SimulationRun, TrainingSet

logger = logging.getLogger("scactive")

COMPARISON = "comparison.csv"
PER_CLASS = "comparison_per_class.csv"
PREDICTIONS = "predictions.csv"
#: The training set of the cross-dataset mode: every usable reference cell.
REFERENCE = "reference"


@dataclass
class _Unit:
    """One method trained on one training set and evaluated on one test set."""

    method: str
    training: TrainingSet
    train: CellSet
    test: CellSet

    @property
    def key(self) -> str:
        return f"{self.method}__{self.training.key}"


def compare(
    adata: ad.AnnData,
    *,
    label_key: str,
    out: str | Path,
    methods: Sequence[str] | None = None,
    from_simulation: str | Path | None = None,
    budgets: Sequence[int] = (100, 300),
    strategies: Sequence[str] = ("random", "entropy"),
    model: str | None = None,
    batch_size: int | None = None,
    initial: int = 20,
    seeds: int = 3,
    query: ad.AnnData | None = None,
    query_label_key: str | None = None,
    label_map: dict[str, str] | None = None,
    data_options: DataOptions | None = None,
    progress: bool = True,
    n_jobs: int = 1,
    source: str | None = None,
) -> pd.DataFrame:
    """Train every chosen method on the same labeled sets and score it on the same cells.

    Within one dataset (no ``query``), the training sets are the whole pool and, for each
    strategy and budget, the first ``budget`` cells an active-learning run labeled; every
    method is scored on the held-out validation cells of the same seed. The run is read from
    ``from_simulation`` (the ``--out`` folder of :func:`scactive.simulate`), or one is run
    into ``out`` first (``initial`` labeled cells, ``batch_size`` per round, until the largest
    budget).

    With ``query``, the methods are trained on every usable cell of ``adata`` (the reference)
    and annotate ``query``; only the genes the two share are used (a warning says how many).

    Parameters
    ----------
    adata
        Labeled cells x genes, counts or log-normalised (see :func:`scactive.simulate`).
    label_key
        obs column of ``adata`` with the cell types.
    out
        Output folder: ``comparison.csv`` (one row per method, training set and seed),
        ``comparison_per_class.csv``, ``predictions.csv``, ``figures/compare_*.png`` and
        ``report.html``. Finished method runs are kept in ``out/compare_cells/`` so a
        re-run resumes.
    methods
        Method names (see :func:`scactive.comparison.methods`); default: the MLP, every baseline
        and every real tool installed here.
    from_simulation
        A simulation folder to read the split and labeled sets from; its data options are
        used. Without it, a simulation runs into ``out``.
    budgets, strategies
        Labeled-set sizes and the strategies whose labeled sets are used. Random sets of the
        same sizes (strategy ``"random"``) show how much of a method's score at a budget is
        owed to the cells active learning chose.
    model, batch_size, initial, seeds
        The simulation's learner, cells per round, initially labeled cells and replicates
        when it runs here (default ``"mlp2"`` and 9). From a simulation folder, ``model`` and
        ``batch_size`` choose which of its runs to read (default: its first model and its
        smallest batch size).
    query, query_label_key
        Cross-dataset mode: the cells to annotate, and their labels if known.
    label_map
        Cross-dataset mode: reference label -> query label, for scoring when the two datasets
        name types differently (several reference types may map to one query type).
    data_options
        QC and feature selection (ignored with ``from_simulation``).
    n_jobs
        Method runs at once (threads; the real tools run in their own processes), and worker
        processes of the simulation when it runs here.

    Returns
    -------
    The comparison table (``comparison.csv``).
    """
    out = check_out_folder(out)
    chosen, notes = resolve_methods(methods)
    for note in notes:
        logger.warning(note)
    budgets = sorted({int(b) for b in budgets})
    if any(b < 1 for b in budgets):
        raise InputError(f"budgets={budgets}; each must be a whole number >= 1.")
    options = data_options or DataOptions()
    _check_out(out)  # before the lock, which would add its file to someone else's folder
    with run_lock(out, what="comparison"):
        if query is not None:
            units, scoring, settings, left_out = _cross_units(
                adata, query, label_key, query_label_key, label_map, options, chosen
            )
            out.mkdir(parents=True, exist_ok=True)
            atomic_write(out / "left_out.csv", left_out.to_csv(index=False))
            sim_dir = None
        else:
            if from_simulation is None:
                sim_dir = out
                model, batch_size = model or "mlp2", batch_size or 9
                n_rounds = max(0, math.ceil((max(budgets, default=initial) - initial) / batch_size))
                simulate(
                    adata,
                    label_key=label_key,
                    out=out,
                    models=(model,),
                    strategies=tuple(strategies),
                    batch_sizes=(batch_size,),
                    seeds=seeds,
                    n_rounds=n_rounds,
                    initial=initial,
                    val_fraction=options.val_fraction,
                    report=False,
                    progress=progress,
                    n_jobs=n_jobs,
                    source=source,
                    **_simulate_options(options),
                )
            else:
                sim_dir = Path(from_simulation)
            run = SimulationRun.load(sim_dir)
            units, scoring, settings, more_notes = _simulation_units(
                adata, run, chosen, strategies, budgets, model, batch_size, label_key
            )
            notes += more_notes
        settings.update(methods=chosen, budgets=budgets, strategies=list(strategies), notes=notes)
        table, per_class, predictions = _run_units(units, scoring, out, settings, progress, n_jobs)
        _write(out, table, per_class, predictions, settings, chosen)
        from ..report import write_comparison

        write_comparison(out, simulation=sim_dir)
        return table


def _simulate_options(options: DataOptions) -> dict:
    keep = (
        "layer", "use_raw", "remove_mito", "remove_ribo", "remove_hemoglobin", "min_genes",
        "min_cells", "n_top_genes", "n_pcs",
    )  # fmt: skip
    return {k: getattr(options, k) for k in keep}


def _check_out(out: Path) -> None:
    """Refuse a folder holding files of something else than a comparison or a simulation."""
    ours = any((out / name).exists() for name in ("comparison.json", "config.json"))
    if not ours and not is_empty(out):
        raise InputError(
            f"The output folder '{out}' is not empty and holds no scactive run. Choose a new "
            "or empty --out folder."
        )


def _simulation_units(adata, run, chosen, strategies, budgets, model, batch_size, given_key):
    config = run.config
    label_key = config["label_key"]
    if label_key not in adata.obs:
        raise InputError(
            f"The simulation in '{run.path}' used label_key={label_key!r}, which is not an obs "
            f"column of this data; obs columns: {list(adata.obs.columns)}."
        )
    if given_key not in (None, label_key):
        raise InputError(
            f"label_key={given_key!r}, but the simulation in '{run.path}' used "
            f"{label_key!r}; the comparison scores the same labels as the simulation."
        )
    model = model or config["models"][0]
    batch_size = batch_size or min(config["batch_sizes"])
    options = run.data_options
    prepared = prepare(adata, label_key, options)
    if prepared.checksum != config.get("input_sha256"):
        raise InputError(
            f"This data is not the data the simulation in '{run.path}' ran on (their checksums "
            "differ). Pass the same file, or run the comparison without --from-simulation."
        )
    units, notes = [], []
    for seed in run.seeds:
        seed_data = SeedData(prepared, seed, options)
        run.check_split(seed_data)
        pool = CellSet(
            prepared.adata[seed_data.pool], seed_data.features, seed_data.y_pool.astype(str)
        )
        val = CellSet(prepared.adata[seed_data.val], seed_data.features, seed_data.y_val)
        sets, more = run.training_sets(
            seed_data,
            strategies=list(strategies),
            budgets=budgets,
            model=model,
            batch_size=batch_size,
        )
        notes += more
        for training in sets:
            train = pool if training.name == POOL else pool.subset(training.positions)
            units += [_Unit(name, training, train, val) for name in chosen]
    for note in dict.fromkeys(notes):
        logger.warning("no labeled set for %s", note)
    settings = {
        "mode": "simulation",
        "simulation": str(run.path),
        "simulation_fingerprint": config.get("fingerprint"),
        "model": model,
        "batch_size": batch_size,
        "label_key": label_key,
        "input_sha256": prepared.checksum,
    }
    return units, _Scoring(prepared.classes), settings, list(dict.fromkeys(notes))


def _cross_units(adata, query, label_key, query_label_key, label_map, options, chosen):
    reference = _by_symbol(adata)
    query = _by_symbol(query)
    shared = reference.var_names.intersection(query.var_names, sort=False)
    if len(shared) == 0:
        raise InputError(
            "The reference and the query share no gene names; check that both use gene "
            "symbols (or Ensembl IDs with a symbol column in var)."
        )
    warnings.warn(
        f"Cross-dataset comparison on the {len(shared)} genes the two datasets share "
        f"(reference: {reference.n_vars}, query: {query.n_vars}).",
        UserWarning,
        stacklevel=3,
    )
    ref = prepare(reference[:, shared], label_key, options)
    if query_label_key is None:
        query_data = query[:, shared].copy()
        query_data.obs["_unlabeled"] = "query"
        qry = prepare(query_data, "_unlabeled", options, query=True)
        query_labels = None
    else:
        qry = prepare(query[:, shared], query_label_key, options, query=True)
        query_labels = qry.labels
        if not label_map and not np.isin(query_labels, ref.classes).any():
            warnings.warn(
                "No query cell type has the name of a reference type, so every call counts as "
                "wrong. Pass a label map (reference type -> query type) to score the calls.",
                UserWarning,
                stacklevel=3,
            )
    features = FeatureSpace(
        n_top_genes=options.n_top_genes, min_cells=options.min_cells, n_pcs=options.n_pcs
    ).fit(ref.adata)
    train = CellSet(ref.adata, features, ref.labels)
    test = CellSet(qry.adata, features, query_labels)
    training = TrainingSet(REFERENCE, ref.adata.n_obs, 0, np.arange(ref.adata.n_obs))
    units = [_Unit(name, training, train, test) for name in chosen]
    settings = {
        "mode": "cross-dataset",
        "label_key": label_key,
        "query_label_key": query_label_key,
        "shared_genes": len(shared),
        "label_map": label_map or {},
        "input_sha256": ref.checksum,
        "query_sha256": qry.checksum,
    }
    classes = None if query_labels is None else np.unique(query_labels)
    left_out = pd.concat(
        [ref.left_out.assign(dataset="reference"), qry.left_out.assign(dataset="query")],
        ignore_index=True,
    )
    return units, _Scoring(classes, label_map or {}), settings, left_out


def _by_symbol(adata: ad.AnnData) -> ad.AnnData:
    symbols = gene_symbols(adata)
    if symbols is adata.var_names:
        return adata
    renamed = adata.copy()
    renamed.var_names = symbols
    renamed.var_names_make_unique()
    return renamed


def _run_units(units, scoring, out, settings, progress, n_jobs):
    """Run (or read back) every unit; ``n_jobs`` units at once, in threads.

    Threads suit the units: the real tools run in their own processes, and the learners and
    baselines spend their time in numpy, scikit-learn and torch, which release the GIL.
    """
    identity = {k: v for k, v in settings.items() if k not in {"notes", "simulation"}}
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    cells = out / "compare_cells" / fingerprint.hexdigest()[:16]
    cells.mkdir(parents=True, exist_ok=True)

    def run(unit: _Unit) -> pd.DataFrame:
        path = cells / f"{unit.key}.csv"
        if path.exists():
            return pd.read_csv(path, keep_default_na=False, na_values=[""])
        done = _run_unit(unit)
        atomic_write(path, done.to_csv(index=False))
        return done

    done_units: dict[str, pd.DataFrame] = {}
    threads = torch.get_num_threads()
    if n_jobs > 1:  # units share the cores: one torch thread each
        torch.set_num_threads(1)
    with (
        progress_bar(progress) as bar,
        ThreadPoolExecutor(max(1, n_jobs)) as pool,
        contextlib.ExitStack() as restore,
    ):
        restore.callback(torch.set_num_threads, threads)
        task = bar.add_task("comparing", total=len(units))
        futures = {pool.submit(run, unit): unit for unit in units}
        try:
            for future in as_completed(futures):
                unit = futures[future]
                done_units[unit.key] = future.result()
                bar.update(task, advance=1, description=unit.key.replace("__", " "))
        except BaseException:  # a failure or an interrupt: start nothing more
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    kinds = {name: m.kind for name, m in methods().items()}
    rows, per_class = [], []
    for unit in units:
        done = done_units[unit.key]
        done["predicted"] = done["predicted"].astype(str)
        keys = {
            "method": unit.method,
            "training_set": unit.training.name,
            "budget": unit.training.budget,
            "seed": unit.training.seed,
        }
        metrics, f1 = scoring.score(done["true"], done["predicted"])
        rows.append(
            {
                **keys,
                "kind": kinds[unit.method],
                "n_train": len(unit.train),
                **metrics,
                "seconds": float(done["seconds"].iloc[0]) if len(done) else math.nan,
            }
        )
        per_class += [{**keys, "cell_type": c, "f1": v} for c, v in f1.items()]
    table = pd.DataFrame(rows)
    predictions = pd.concat([done_units[unit.key] for unit in units], ignore_index=True)
    return table, pd.DataFrame(per_class, columns=[*keys, "cell_type", "f1"]), predictions


def _run_unit(unit: _Unit) -> pd.DataFrame:
    seed = [zlib.crc32(p.encode()) for p in (unit.method, unit.training.name)]
    rng = np.random.default_rng([unit.training.seed, unit.training.budget, *seed])
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted, score = run_method(unit.method, unit.train, unit.test, rng=rng)
    seconds = time.perf_counter() - start
    return pd.DataFrame(
        {
            "method": unit.method,
            "training_set": unit.training.name,
            "budget": unit.training.budget,
            "seed": unit.training.seed,
            "cell": unit.test.adata.obs_names.to_numpy(),
            "true": unit.test.labels if unit.test.labels is not None else "",
            "predicted": np.asarray(predicted).astype(str),
            "score": np.asarray(score, dtype=float),
            "seconds": seconds,
        }
    )


@dataclass(frozen=True)
class _Scoring:
    """How calls are scored: against which types, after mapping reference names."""

    classes: np.ndarray | None  # None: the test cells have no labels
    label_map: dict[str, str] = field(default_factory=dict)

    def score(self, true: pd.Series, predicted: pd.Series):
        if self.classes is None:
            return {}, {}
        if self.label_map:
            predicted = predicted.map(lambda p: self.label_map.get(p, p))
        return evaluate_labels(true, predicted, self.classes)


def _write(out, table, per_class, predictions, settings, chosen):
    versions = {}
    for name in chosen:
        if methods()[name].kind == "tool":
            try:
                versions[name] = tool_version(name)
            except Exception as err:  # noqa: BLE001 - a version is informative only
                versions[name] = f"unknown ({err})"
    settings = {**settings, "tool_versions": versions}
    atomic_write(out / COMPARISON, table.to_csv(index=False))
    atomic_write(out / PER_CLASS, per_class.to_csv(index=False))
    atomic_write(out / PREDICTIONS, predictions.to_csv(index=False))
    atomic_write(out / "comparison.json", json.dumps(settings, indent=2, default=str))
