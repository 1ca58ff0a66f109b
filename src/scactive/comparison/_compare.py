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
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch

from .._errors import InputError
from .._files import atomic_write, check_out_folder, is_empty, make_folder, run_lock
from .._meta import progress_bar
from .._simulate import simulate
from ..bench import DataOptions
from ._methods import methods, resolve_methods, run_method, tool_version
from ._sets import SimulationRun
from ._units import REFERENCE as REFERENCE  # the cross-dataset training set, as before
from ._units import _cross_units, _simulation_units, _Unit

logger = logging.getLogger("scactive")

COMPARISON = "comparison.csv"
PER_CLASS = "comparison_per_class.csv"
PREDICTIONS = "predictions.csv"


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
    progress: bool = True,
    n_jobs: int = 1,
    source: str | None = None,
    **preparation,
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
    preparation
        The data preparation, the same keywords as :func:`scactive.simulate` takes
        (``layer``, ``use_raw``, ``remove_mito``, ``remove_ribo``, ``remove_hemoglobin``,
        ``min_genes``, ``min_cells``, ``n_top_genes``, ``n_pcs``, ``val_fraction``; ignored
        with ``from_simulation``).
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
    options = DataOptions.from_keywords(caller=compare, **preparation)
    _check_out(out)  # before the lock, which would add its file to someone else's folder
    with run_lock(out, what="comparison"):
        if query is not None:
            units, scoring, settings, left_out = _cross_units(
                adata, query, label_key, query_label_key, label_map, options, chosen
            )
            make_folder(out)
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
                    report=False,
                    progress=progress,
                    n_jobs=n_jobs,
                    source=source,
                    **preparation,
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


def _check_out(out: Path) -> None:
    """Refuse a folder holding files of something else than a comparison or a simulation."""
    ours = any((out / name).exists() for name in ("comparison.json", "config.json"))
    if not ours and not is_empty(out):
        raise InputError(
            f"The output folder '{out}' is not empty and holds no scactive run. Choose a new "
            "or empty --out folder."
        )


def _run_units(units, scoring, out, settings, progress, n_jobs):
    """Run (or read back) every unit; ``n_jobs`` units at once, in threads.

    Threads suit the units: the real tools run in their own processes, and the learners and
    baselines spend their time in numpy, scikit-learn and torch, which release the GIL.
    """
    identity = {k: v for k, v in settings.items() if k not in {"notes", "simulation"}}
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    cells = out / "compare_cells" / fingerprint.hexdigest()[:16]
    make_folder(cells)

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
