"""``scactive.simulate``: the paper's experiment grid on any labeled AnnData."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import pandas as pd

from ._errors import InputError
from ._files import atomic_write, check_out_folder, is_empty, make_folder, run_lock
from ._hierarchy import Hierarchy, as_hierarchy, check_covers
from ._meta import progress_bar, versions
from .bench import (
    DataOptions,
    GridOptions,
    SeedData,
    build_grid,
    config_dict,
    prepare,
    split_sizes,
)
from .bench._execute import Task, run_tasks
from .strategies import DEFAULT_STRATEGIES

logger = logging.getLogger("scactive")

_OUTPUTS = ("results.csv", "picks.csv", "split.csv", "report.html")


def simulate(
    adata: ad.AnnData,
    *,
    label_key: str,
    out: str | Path | None = None,
    models: Sequence[str] = ("mlp2",),
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    batch_sizes: Sequence[int] = (9, 27, 81),
    seeds: int = 3,
    n_rounds: int = 10,
    initial: float = 0.2,
    stop_fraction: float | None = None,
    epochs: int | None = None,
    retrain: str = "scratch",
    use_pca: bool = True,
    ceiling: bool = True,
    hierarchy: Hierarchy | str | Path | None = None,
    report: bool = True,
    progress: bool = True,
    n_jobs: int = 1,
    scheduler: str | None = None,
    data_path: str | Path | None = None,
    transpose: bool = False,
    source: str | None = None,
    **preparation,
) -> pd.DataFrame:
    """Run the active-learning grid with a simulated oracle and return the results table.

    Every grid cell (model, strategy, batch size, seed) is an independent run: a held-out
    validation set (stratified, ``val_fraction``) never enters the pool; ``initial`` cells of
    the pool are labeled at the start (a fraction below 1, or a count); each round the strategy
    picks ``batch_size`` cells, the oracle reveals their labels and the learner retrains.

    Parameters
    ----------
    adata
        Cells x genes with labels in ``adata.obs[label_key]``: counts (normalised to 10,000
        per cell and log1p'd here) or log-normalised values. Not modified.
    out
        Output folder. Receives ``results.csv``, ``picks.csv``, ``split.csv``,
        ``config.json``, ``report.html`` and ``figures/``. Running again on the same folder
        with the same data and parameters resumes: finished grid cells are not run again.
    models, strategies, batch_sizes, seeds
        The grid: learner presets (:data:`scactive.models.PRESETS`), strategy names
        (:data:`scactive.strategies.STRATEGIES`), cells per round, and replicates.
    n_rounds
        Query rounds after round 0 (ignored when ``stop_fraction`` is set).
    stop_fraction
        Instead of a fixed number of rounds, query until this fraction of the pool is labeled.
    epochs
        Training epochs per round for the MLP presets (default: the preset's).
    retrain
        ``"scratch"``: a new learner every round; ``"continue"``: keep training the last one.
    use_pca
        Clustering strategies work on the pool's PCA (else on the scaled features).
    ceiling
        Also train each model on the whole pool (rows with strategy ``"ceiling"``).
    hierarchy
        A cell-type hierarchy (a :class:`~scactive._hierarchy.Hierarchy`, the path of a
        JSON/YAML tree or a ``type,parent`` table, or a nested tree ``{type: {subtype: {}}}``)
        whose finest level is the labels; labels it does not name are top-level types. Each
        round then also records ``macro_f1_level1`` ... ``macro_f1_levelN``: the truth rolled
        up to each level, against the learner's calls decoded top-down at that level
        (:func:`scactive.metrics.level_f1`). ``macro_f1`` stays the plain argmax over the
        labels, as without a hierarchy, so runs with and without one compare; at the finest
        level the decoded call may differ from it. A hierarchy naming none of the labels is
        refused; labels it leaves out are named in a warning. The report adds a per-level
        table and figure. Without one the results have no level columns.
    report
        Write ``report.html`` and figures (needs ``out``).
    progress
        Show a progress bar over the grid.
    n_jobs
        Grid cells run at once, each in its own process with one torch thread. On a machine
        with N cores, ``n_jobs=N`` is usually fastest. The numbers do not depend on it (up to
        floating-point rounding of multi-threaded sums).
    scheduler
        The address of a Dask scheduler (``"tcp://HOST:8786"``; needs
        ``pip install "scactive[distributed]"``): the grid cells run on that cluster's
        workers instead of in local processes (``n_jobs`` stays 1). The workers read the data
        from ``data_path`` themselves; the results come back here and are written to ``out``
        as cells finish, so an interrupted run resumes. See ``docs/distributed.md``.
    data_path, transpose
        Where ``adata`` was read from and how: the file (at a path every worker sees) or
        bundled dataset name, and the ``transpose`` given to :func:`scactive.io.read`.
        Needed with ``scheduler``; a worker refuses a file whose data differs from ``adata``.
    source
        A description of where the data came from, recorded in ``config.json``.
    preparation
        The data preparation, the same keywords as :func:`scactive.compare` takes
        (:class:`scactive.bench.DataOptions`): ``layer`` / ``use_raw`` (which matrix to read,
        default ``X``); ``remove_mito``, ``remove_ribo``, ``remove_hemoglobin``,
        ``min_genes`` (500), ``min_cells`` (10), ``n_top_genes`` (2000), ``n_pcs`` (50): the
        paper's QC and feature selection, with data-dependent steps fitted on the pool;
        ``val_fraction`` (0.2), the stratified validation set.

    Returns
    -------
    The results table: one row per model, strategy, batch size, seed and round.
    """
    out = check_out_folder(out) if out is not None else None
    cluster = None
    if scheduler is not None:
        from .bench._distributed import locate_data

        cluster = (scheduler, locate_data(scheduler, data_path, n_jobs), bool(transpose))
    options = DataOptions.from_keywords(caller=simulate, initial=initial, **preparation)
    grid_options = GridOptions(
        models=tuple(models),
        strategies=tuple(strategies),
        batch_sizes=tuple(int(b) for b in batch_sizes),
        seeds=seeds,
        n_rounds=n_rounds,
        stop_fraction=stop_fraction,
        epochs=epochs,
        retrain=retrain,
        use_pca=use_pca,
        ceiling=ceiling,
        hierarchy=None if hierarchy is None else as_hierarchy(hierarchy),
    )

    def run(run_dir: _RunDir | None) -> pd.DataFrame:
        settings = (options, grid_options, report, progress, n_jobs, cluster, source)
        return _run(adata, label_key, run_dir, *settings)

    if out is None:
        return run(None)
    run_dir = _RunDir(out)
    run_dir.check()  # before the lock, which would add its file to someone else's folder
    with run_lock(out, what="simulation"):
        try:
            return run(run_dir)
        except Exception:
            run_dir.undo()  # a refused or failed run leaves no config.json of its own
            raise


def _run(
    adata: ad.AnnData,
    label_key: str,
    run_dir: _RunDir | None,
    data_options: DataOptions,
    grid_options: GridOptions,
    report: bool,
    progress: bool,
    n_jobs: int,
    cluster: tuple[str, str, bool] | None,
    source: str | None,
) -> pd.DataFrame:
    seeds, ceiling = grid_options.seeds, grid_options.ceiling
    prepared = prepare(adata, label_key, data_options)
    if grid_options.tree is not None:
        check_covers(grid_options.tree, prepared.classes)
    n_pool, n_initial = split_sizes(prepared.adata.n_obs, data_options)
    too_big = [b for b in grid_options.batch_sizes if b > n_pool - n_initial]
    if too_big:
        raise InputError(
            f"Batch size {max(too_big)} is larger than the {n_pool - n_initial} unlabeled cells "
            f"of the pool ({n_pool} pool cells, {n_initial} labeled at the start). Use smaller "
            "--batch-sizes or a smaller --initial."
        )
    grid = build_grid(grid_options)
    if not grid.cells:
        raise InputError("No grid cell can run: " + "; ".join(grid.skipped))
    config = {
        "data": source or "AnnData",
        "label_key": label_key,
        "n_cells": int(adata.n_obs),
        "n_cells_used": int(prepared.adata.n_obs),
        "input_sha256": prepared.checksum,
        **config_dict(data_options, grid_options),
    }
    # the input's checksum identifies the data, not the path it was read from
    identity = {k: v for k, v in config.items() if k != "data"}
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    config.update(fingerprint=fingerprint, skipped=grid.skipped, versions=versions())
    seeds_data = {s: SeedData(prepared, s, data_options) for s in range(seeds)}
    for seed_data in seeds_data.values():
        seed_data.pool  # noqa: B018 - split every seed now: a bad split fails before any output
    if run_dir is not None:
        run_dir.open(config)

    tasks: list[tuple[str, Task]] = [(cell.key, cell) for cell in grid.cells]
    if ceiling:
        tasks += [
            (f"{m}__ceiling__s{s}", (m, s)) for m in grid_options.models for s in range(seeds)
        ]
    scheduler = data = None
    if cluster is not None:  # the workers read the data themselves, and check it is this one
        from .bench._distributed import DataSource

        scheduler, path, transpose = cluster
        data = DataSource(path, transpose, label_key, data_options, prepared.checksum)
    finished: dict[str, tuple] = {}
    with progress_bar(progress) as bar:
        task_id = bar.add_task("simulating", total=len(tasks))
        pending = []
        for key, task in tasks:
            loaded = run_dir.load(key) if run_dir is not None else None
            if loaded is None:
                pending.append((key, task))
            else:
                finished[key] = loaded
                bar.advance(task_id)
        for key, done in run_tasks(
            pending, seeds_data, grid_options, n_jobs=n_jobs, scheduler=scheduler, source=data
        ):
            if run_dir is not None:  # read back, so fresh and resumed runs agree exactly
                run_dir.save(key, *done)
                done = run_dir.load(key)
            finished[key] = done
            bar.update(task_id, advance=1, description=key.replace("__", " "))
    results = [finished[key][0] for key, _ in tasks]
    picks = [finished[key][1] for key, _ in tasks if finished[key][1] is not None]
    with warnings.catch_warnings():  # ceiling rows have no batch size
        warnings.simplefilter("ignore", FutureWarning)
        table = pd.concat(results, ignore_index=True)
    table["batch_size"] = table["batch_size"].astype("Int64")
    if run_dir is not None:
        split = pd.concat([sd.roles() for sd in seeds_data.values()], ignore_index=True)
        run_dir.write_table("split.csv", split)
        run_dir.write_table("picks.csv", pd.concat(picks, ignore_index=True))
        run_dir.write_table("results.csv", table)
        if report:
            from .report import write_report

            write_report(run_dir.path)
    return table


class _RunDir:
    """An output folder: refuses another run's results, keeps finished cells for resuming."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cells = path / "cells"
        self.config_path = path / "config.json"
        self._created: list[Path] = []  # what this run created, undone if it fails at once

    def check(self) -> None:
        """Refuse a folder that holds files but no scactive run."""
        if not self.config_path.exists() and not is_empty(self.path):
            raise InputError(
                f"The output folder '{self.path}' is not empty and holds no scactive run. "
                "Choose a new or empty --out folder."
            )

    def open(self, config: dict) -> None:
        self.check()
        if self.config_path.exists():
            try:
                previous = json.loads(self.config_path.read_text()).get("fingerprint")
            except (OSError, json.JSONDecodeError):
                previous = None
            if previous != config["fingerprint"]:
                raise InputError(
                    f"The output folder '{self.path}' holds the results of a different run "
                    "(other data or parameters). Choose a new --out folder, or delete that one "
                    "to start over."
                )
            logger.info("resuming the run in %s", self.path)
        if not self.cells.exists():
            make_folder(self.cells)
            self._created.append(self.cells)
        if not self.config_path.exists():
            atomic_write(self.config_path, json.dumps(config, indent=2, default=str))
            self._created.append(self.config_path)

    def undo(self) -> None:
        """Remove what :meth:`open` created, if no grid cell has finished since."""
        if self.cells.exists() and any(self.cells.iterdir()):
            return
        for path in reversed(self._created):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()
        self._created.clear()

    def load(self, key: str) -> tuple[pd.DataFrame, pd.DataFrame | None] | None:
        results = self.cells / f"{key}.results.csv"
        if not results.exists():
            return None
        picks = self.cells / f"{key}.picks.csv"
        return (
            pd.read_csv(results, keep_default_na=False, na_values=[""]),
            pd.read_csv(picks, keep_default_na=False, na_values=[""]) if picks.exists() else None,
        )

    def save(self, key: str, results: pd.DataFrame, picks: pd.DataFrame | None) -> None:
        # picks first: a cell counts as finished once its results file exists
        if picks is not None:
            atomic_write(self.cells / f"{key}.picks.csv", picks.to_csv(index=False))
        atomic_write(self.cells / f"{key}.results.csv", results.to_csv(index=False))

    def write_table(self, name: str, table: pd.DataFrame) -> None:
        atomic_write(self.path / name, table.to_csv(index=False))
