"""``simulate(..., scheduler=)`` and ``--scheduler``: the grid on a real Dask cluster.

A two-worker ``LocalCluster`` (processes, one thread each) runs the same grid as one local
process and must give the same tables; a run that lost a finished cell runs that cell alone;
the workers read the data from its path and refuse another file.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import make_counts
from scactive import InputError, io, simulate
from scactive.strategies import STRATEGIES
from scactive.strategies._registry import STRATEGY_COLORS, register_strategy
from test_simulate import FAST, _tables

pytest.importorskip("distributed")

#: A strategy registered at run time: the workers know it only from the client.
AGAIN = "entropy-again"
OPTIONS = dict(FAST, seeds=2, strategies=["random", AGAIN], label_key="cell_type", report=False)
#: A one-cell grid, for the errors.
ONE_CELL = dict(OPTIONS, strategies=["random"], seeds=1, ceiling=False)


@pytest.fixture(scope="module")
def cluster(request):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    request.addfinalizer(cluster.close)
    with Client(cluster.scheduler_address) as client:
        client.wait_for_workers(2, timeout=120)
    return cluster


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "counts.h5ad"
    make_counts(n_cells=150, n_genes=300).write_h5ad(path)
    return path, io.read(path)


@pytest.fixture(scope="module")
def registered():
    register_strategy(AGAIN, STRATEGIES["entropy"], color="#17becf")
    yield
    STRATEGIES.pop(AGAIN, None)
    STRATEGY_COLORS.pop(AGAIN, None)


@pytest.fixture(scope="module")
def local(data, registered, tmp_path_factory):
    """The grid run in this process, the reference for every cluster run."""
    out = tmp_path_factory.mktemp("local") / "run"
    simulate(data[1], out=out, n_jobs=1, **OPTIONS)
    return out


def _cells(out):
    """Every finished cell's file, with what changes when it is written again."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "cells").iterdir()}


def test_cluster_run_gives_the_local_tables_and_resumes(cluster, data, local, tmp_path):
    path, adata = data
    out = tmp_path / "run"
    remote = dict(scheduler=cluster.scheduler_address, data_path=path)
    table = simulate(adata, out=out, **remote, **OPTIONS)
    assert set(table["strategy"]) == {"random", AGAIN, "ceiling"}
    assert sorted(table["seed"].unique()) == [0, 1]
    expected = _tables(local)
    for name, frame in _tables(out).items():
        pd.testing.assert_frame_equal(frame, expected[name])

    # an interrupted run: one finished cell is gone; only that cell runs again
    lost = f"mlp2__{AGAIN}__b6__s1"
    for suffix in ("results", "picks"):
        (out / "cells" / f"{lost}.{suffix}.csv").unlink()
    before = _cells(out)
    simulate(adata, out=out, **remote, **OPTIONS)
    after = _cells(out)
    changed = sorted(name for name in after if after[name] != before.get(name))
    assert changed == [f"{lost}.picks.csv", f"{lost}.results.csv"]
    for name, frame in _tables(out).items():
        pd.testing.assert_frame_equal(frame, expected[name])


def test_command_line_runs_on_the_cluster(cluster, data, local, tmp_path):
    path, _ = data
    out = tmp_path / "cli"
    command = [
        sys.executable, "-m", "scactive", "simulate", str(path), "--label-key", "cell_type",
        "--out", str(out), "--strategies", "random", "--batch-sizes", "6", "--seeds", "1",
        "--rounds", "2", "--initial", "12", "--min-genes", "0", "--n-top-genes", "100",
        "--n-pcs", "10", "--no-report", "--no-progress", "--scheduler", cluster.scheduler_address,
    ]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    # each cell depends on nothing but itself: the same rows as in the larger local grid
    results = _tables(out)["results.csv"]
    reference = _tables(local)["results.csv"]
    reference = reference[reference.strategy.isin(["random", "ceiling"]) & (reference.seed == 0)]
    pd.testing.assert_frame_equal(results, reference.reset_index(drop=True))


def test_workers_refuse_another_file_at_the_path(cluster, data, tmp_path):
    other = tmp_path / "other.h5ad"
    make_counts(n_cells=150, n_genes=300, seed=1).write_h5ad(other)
    with pytest.raises(InputError, match="is not the data of the run"):
        simulate(data[1], scheduler=cluster.scheduler_address, data_path=other, **ONE_CELL)


def test_scheduler_needs_a_data_path_and_one_job(data):
    path, adata = data
    address = "tcp://127.0.0.1:8786"
    with pytest.raises(InputError, match="pass data_path="):
        simulate(adata, scheduler=address, **ONE_CELL)
    with pytest.raises(InputError, match="n_jobs=2"):
        simulate(adata, scheduler=address, data_path=path, n_jobs=2, **ONE_CELL)
    with pytest.raises(InputError, match="does not exist"):
        simulate(adata, scheduler=address, data_path=path.with_name("no.h5ad"), **ONE_CELL)


def test_an_unreachable_scheduler_is_a_clear_error(data, tmp_path):
    import dask

    path, adata = data
    out = tmp_path / "run"
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        with pytest.raises(InputError, match="Cannot reach the Dask scheduler"):
            simulate(adata, out=out, scheduler="tcp://127.0.0.1:9", data_path=path, **ONE_CELL)
    assert not out.exists()  # a run that could not start leaves nothing behind


def test_without_dask_the_error_says_what_to_install(data, monkeypatch):
    path, adata = data
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    with pytest.raises(InputError, match=r'pip install "scactive\[distributed\]"'):
        simulate(adata, scheduler="tcp://127.0.0.1:8786", data_path=path, **ONE_CELL)
