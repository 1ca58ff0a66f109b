"""Running grid tasks on a Dask cluster (``dask.distributed``), its workers reading the data
from a path.

The client sends every task with a :class:`DataSource`: where the data lies and how it is
read (what :func:`scactive.io.read` takes), the label key, the data preparation and the
checksum of the client's copy. A worker reads and prepares the data once per process, refuses
a file whose checksum differs from the client's, and keeps each seed's split and features for
the tasks that follow, as the local worker processes do. The results come back to the client,
which writes them to the output folder, so an interrupted run resumes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._errors import InputError
from ._data import PreparedData, prepare
from ._execute import Result, Task, WorkerData, hold_one_thread, register_here, registered_here
from ._grid import GridOptions
from ._options import DataOptions

#: How to install what a cluster run needs.
INSTALL = 'pip install "scactive[distributed]"'


@dataclass(frozen=True)
class DataSource:
    """The data as a cluster's workers read it: from a path every worker sees."""

    path: str
    transpose: bool
    label_key: str
    options: DataOptions
    checksum: str

    def read(self) -> PreparedData:
        """Read and prepare the data; refuse it if it is not the client's."""
        from ..io import read

        adata = read(self.path, transpose=self.transpose)
        prepared = prepare(adata, self.label_key, self.options)
        if prepared.checksum != self.checksum:
            raise InputError(
                f"The data a worker read from '{self.path}' (checksum {prepared.checksum[:12]}) "
                f"is not the data of the run (checksum {self.checksum[:12]}): the worker sees "
                "another file at that path, or data_path is not the file the AnnData was read "
                "from. Give every worker the same file at the same path."
            )
        return prepared


def locate_data(scheduler: str, data_path: str | Path | None, n_jobs: int) -> str:
    """Check the arguments of a cluster run; return the data's path as the workers get it
    (absolute, or a bundled dataset's name)."""
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise InputError(
            f"scheduler={scheduler!r}; expected the address of a Dask scheduler, such as "
            "'tcp://HOST:8786'."
        )
    check_dask()
    if data_path is None:
        raise InputError(
            f"scheduler={scheduler!r} runs the grid on a Dask cluster, whose workers read the "
            "data from a path: pass data_path= (the file, or bundled dataset name, that adata "
            "was read from with scactive.io.read, visible to every worker) and transpose= if "
            "it was read with it."
        )
    if n_jobs != 1:
        raise InputError(
            f"n_jobs={n_jobs} (--jobs) with scheduler={scheduler!r}: the cluster's workers run "
            "the grid cells; leave n_jobs at 1 and start as many workers as you want cells "
            "running at once."
        )
    from ..datasets import is_named

    if is_named(data_path):
        return str(data_path)
    path = Path(data_path).expanduser()
    if not path.exists():
        raise InputError(
            f"data_path='{path}' does not exist. Give the file the data was read from; every "
            "worker of the cluster reads it at that path."
        )
    return str(path.resolve())


def check_dask() -> None:
    """Refuse a cluster run when Dask is not installed, saying how to install it."""
    try:
        import distributed  # noqa: F401
    except ImportError as err:
        raise InputError(
            f"Running on a Dask cluster (scheduler=, --scheduler) needs Dask ({err}). "
            f"Install it with: {INSTALL}"
        ) from err


@dataclass(frozen=True)
class _Job:
    """What every task of one run carries to a worker besides the task itself."""

    source: DataSource
    options: GridOptions
    registered: bytes


def run_on_cluster(
    tasks: list[tuple[str, Task]], scheduler: str, source: DataSource, options: GridOptions
) -> Iterator[tuple[str, Result]]:
    """Yield ``(key, result)`` for every task, run on the workers of the Dask cluster whose
    scheduler is at ``scheduler``, as tasks finish."""
    check_dask()
    from distributed import Client, as_completed

    job = _Job(source, options, registered_here(options))
    try:
        client = Client(scheduler)
    except (OSError, TimeoutError, ValueError) as err:
        raise InputError(
            f"Cannot reach the Dask scheduler at {scheduler!r} ({err}). Start one with "
            "`dask scheduler`, its workers with `dask worker HOST:8786 --nthreads 1`, and "
            "give its address, such as tcp://HOST:8786."
        ) from err
    run = uuid.uuid4().hex[:8]  # one run's task names, apart from another client's
    with client:
        futures = {
            client.submit(_work, job, task, key=f"{key}-{run}", pure=False): key
            for key, task in tasks
        }
        try:
            for future in as_completed(list(futures)):
                result = future.result()
                future.release()  # the client writes it; the cluster need not keep it
                yield futures[future], result
        except BaseException:  # a failure, Ctrl-C or the caller stopping: cancel the rest
            client.cancel(list(futures))
            raise


#: In a worker process: the data of the last runs, by source (checksum and options).
_PREPARED: dict[DataSource, WorkerData] = {}
_KEEP = 2
_LOCK = threading.Lock()
_HELD = threading.Event()


def _work(job: _Job, task: Task) -> Result:
    """Run one task in a worker (one thread held, the client's registrations known)."""
    if not _HELD.is_set():
        hold_one_thread()
        _HELD.set()
    register_here(job.registered)
    with _LOCK:  # a worker with several threads reads the data once
        data = _PREPARED.get(job.source)
        if data is None:
            data = WorkerData(job.source.read(), job.source.options)
            while len(_PREPARED) >= _KEEP:
                _PREPARED.pop(next(iter(_PREPARED)))
            _PREPARED[job.source] = data
    return data.run(task, job.options)
