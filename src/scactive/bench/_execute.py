"""Running grid tasks, one after another, in local worker processes or on a Dask cluster.

Each task depends only on its own parameters and its seed's split, so tasks can run in any
order and on any worker and give the same numbers. The local processes receive the prepared
data pickled; a cluster's workers read it from a path (``_distributed.py``).
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING

import pandas as pd

from .._errors import InputError
from .._threads import set_threads
from ..models._registry import PRESETS, user_learners
from ..strategies._registry import register_strategy, user_strategies
from ._data import PreparedData, SeedData
from ._grid import GridCell, GridOptions, run_ceiling, run_cell
from ._options import DataOptions

if TYPE_CHECKING:
    from ._distributed import DataSource

#: A task is a grid cell or, for the ceiling, a (model, seed) pair.
Task = GridCell | tuple[str, int]
Result = tuple[pd.DataFrame, pd.DataFrame | None]


def run_task(task: Task, seed_data: SeedData, options: GridOptions) -> Result:
    """Run one grid cell, or train one model on the whole pool (the ceiling)."""
    if isinstance(task, GridCell):
        return run_cell(task, seed_data, options)
    return run_ceiling(task[0], seed_data, options), None


def task_seed(task: Task) -> int:
    return task.seed if isinstance(task, GridCell) else task[1]


def run_tasks(
    tasks: list[tuple[str, Task]],
    seeds_data: dict[int, SeedData],
    options: GridOptions,
    *,
    n_jobs: int = 1,
    scheduler: str | None = None,
    source: DataSource | None = None,
) -> Iterator[tuple[str, Result]]:
    """Yield ``(key, result)`` for every task, as tasks finish.

    With ``n_jobs > 1`` tasks run in that many worker processes, each with one torch thread
    (small networks gain nothing from more threads, and threads of several processes
    competing for the cores slow every one of them down). With ``scheduler`` (the address of
    a Dask scheduler) they run on that cluster's workers, which read the data from
    ``source``.
    """
    if scheduler is not None and tasks:
        from ._distributed import run_on_cluster

        if source is None:
            raise ValueError("a cluster's workers read the data from a source; none given")
        yield from run_on_cluster(tasks, scheduler, source, options)
        return
    if n_jobs <= 1 or len(tasks) <= 1:
        for key, task in tasks:
            yield key, run_task(task, seeds_data[task_seed(task)], options)
        return
    first = next(iter(seeds_data.values()))
    context = multiprocessing.get_context("spawn")
    registered = registered_here(options)
    with ProcessPoolExecutor(
        max_workers=n_jobs,
        mp_context=context,
        initializer=_init_worker,
        initargs=(first.prepared, first.options, options, registered),
    ) as pool:
        futures = {pool.submit(_work, task): key for key, task in tasks}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:  # a failure or Ctrl-C: stop the workers now, not after their cells
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            raise


def registered_here(options: GridOptions) -> bytes:
    """The strategies and learners of the grid registered at run time in this process (by
    a script or a ``--plugin`` module), pickled for the workers; shipped ones and entry
    points are known to every process already."""
    strategies = {n: v for n, v in user_strategies().items() if n in options.strategies}
    learners = {n: p for n, p in user_learners().items() if n in options.models}
    try:
        return pickle.dumps((strategies, learners))
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        names = ", ".join(map(repr, [*strategies, *learners]))
        raise InputError(
            f"The registered strategy or learner {names} cannot be sent to worker processes "
            f"({err}): register a class or a function defined at module level (not a lambda "
            "or a local function), or run them in this process (n_jobs=1, no scheduler)."
        ) from err


def hold_one_thread() -> None:
    """Hold torch, the BLAS/OpenMP pools and numba at one thread in this worker process."""
    import torch  # noqa: F401 - loaded first, so its threads are held from the start

    set_threads(1)


def register_here(registered: bytes) -> None:
    """Register in this process what :func:`registered_here` pickled in the client."""
    strategies, learners = pickle.loads(registered)
    for name, (factory, color) in strategies.items():
        register_strategy(name, factory, color=color, replace=True)
    for name, preset in learners.items():
        PRESETS[name] = preset


class WorkerData:
    """The prepared data in a worker process and each seed's split, made on first use."""

    def __init__(self, prepared: PreparedData, options: DataOptions) -> None:
        self.prepared, self.options = prepared, options
        self._seeds: dict[int, SeedData] = {}

    def run(self, task: Task, options: GridOptions) -> Result:
        seed = task_seed(task)
        if seed not in self._seeds:
            self._seeds[seed] = SeedData(self.prepared, seed, self.options)
        return run_task(task, self._seeds[seed], options)


_WORKER: dict = {}


def _init_worker(
    prepared: PreparedData, data_options: DataOptions, options: GridOptions, registered: bytes
):
    import signal

    # Ctrl-C reaches every process of the terminal; the main process alone answers it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    hold_one_thread()
    register_here(registered)
    _WORKER.update(data=WorkerData(prepared, data_options), options=options)


def _work(task: Task) -> Result:
    return _WORKER["data"].run(task, _WORKER["options"])
