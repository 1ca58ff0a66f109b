"""One thread count for torch, the BLAS/OpenMP pools and numba, held for the whole run.

On a machine with few cores, pools that each start as many threads as there are cores fight
for them: a training thread of torch waits at a barrier whenever another thread holds a core,
and a 300-step fit of the default MLP runs several times slower beside a second job
(``docs/benchmarks.md``). Worse, a count set once does not stay set: numba's OpenMP layer,
started by scanpy's first numba call, puts torch back to its default. :func:`set_threads`
holds all of them:

- the environment (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``), for
  the libraries not loaded yet, and worker processes started later;
- ``threadpoolctl``, for the BLAS and OpenMP libraries loaded already;
- numba's ``workqueue`` threading layer (no OpenMP pool of its own) and its thread count;
- torch's intra-op threads, set again by :func:`hold` before every fit and prediction of the
  MLP, should anything have changed them since.
"""

from __future__ import annotations

import os
import sys

__all__ = ["get_threads", "hold", "set_threads"]

#: The variables read by OpenMP, OpenBLAS and MKL when they load.
_ENVIRONMENT = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_held: int | None = None


def set_threads(n: int | None) -> None:
    """Hold torch, the BLAS/OpenMP pools and numba at ``n`` threads in this process (and in
    the processes it starts); ``None`` stops holding (the libraries keep what they have).

    The command line holds 1 thread per process (``--threads``); :func:`scactive.simulate`
    with ``n_jobs`` holds 1 in each worker.
    """
    global _held
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        from ._errors import InputError

        raise InputError(f"threads={n!r}; expected a whole number >= 1 (or None).")
    _held = n
    if n is None:
        return
    for name in _ENVIRONMENT:
        os.environ[name] = str(n)
    os.environ["NUMBA_THREADING_LAYER"] = "workqueue"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)  # the pools of the libraries loaded so far
    if "numba" in sys.modules:
        _hold_numba(n)
    hold()


def get_threads() -> int | None:
    """The thread count held by :func:`set_threads` (None: none held)."""
    return _held


def hold() -> None:
    """Set torch's intra-op threads back to the held count if something changed them."""
    if _held is None or "torch" not in sys.modules:
        return
    import torch

    if torch.get_num_threads() != _held:
        torch.set_num_threads(_held)


def _hold_numba(n: int) -> None:
    import numba

    try:
        numba.config.THREADING_LAYER = "workqueue"  # before its first parallel launch
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except (ValueError, RuntimeError):  # its pool has started already: leave it as it is
        pass
