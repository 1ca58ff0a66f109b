"""``scactive simulate`` and ``compare`` on bad input: one paragraph, exit 2, nothing changed.

Also a run started from one labeled cell, two runs on one folder, and Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_counts, without_root_override
from scactive._files import folder_lock
from scactive.cli import app

QUICK = ["--seeds", "1", "--min-genes", "0", "--n-top-genes", "100", "--n-pcs", "10",
         "--no-progress"]  # fmt: skip
SIMULATE = ["--strategies", "random,entropy", "--batch-sizes", "6", "--rounds", "1",
            "--initial", "12", "--no-report", *QUICK]  # fmt: skip
COMPARE = ["--budgets", "18", "--strategies", "entropy", "--methods", "scmap-cluster,logreg-ovr",
           "--initial", "12", "--batch-size", "6", *QUICK]  # fmt: skip
ARGS = {"simulate": SIMULATE, "compare": COMPARE}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cells.h5ad"
    make_counts(n_cells=150, n_genes=300).write_h5ad(path)
    return path


def invoke(command, data_file, out, *extra):
    args = [command, str(data_file), "--label-key", "cell_type", *ARGS[command], *extra]
    return CliRunner().invoke(app, [*args, "--out", str(out)])


def refused(result, message):
    """Exit 2 with ``message`` in one paragraph and no traceback."""
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert message in text, text
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("command", ["simulate", "compare"])
def test_out_an_existing_file_is_refused_and_kept(command, data_file, tmp_path):
    out = tmp_path / "notes.txt"
    out.write_bytes(b"my notes\n")
    refused(invoke(command, data_file, out), "is an existing file, not a folder")
    assert out.read_bytes() == b"my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("command", ["simulate", "compare"])
def test_out_under_a_file_is_refused(command, data_file, tmp_path):
    blocker = tmp_path / "results"
    blocker.write_bytes(b"\x00data")
    refused(invoke(command, data_file, blocker / "run"), "which is a file, not a folder")
    assert blocker.read_bytes() == b"\x00data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


@pytest.mark.parametrize("command", ["simulate", "compare"])
@pytest.mark.parametrize("inside", [False, True])
def test_out_in_an_unwritable_place_is_refused(command, inside, data_file, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        out = locked / "run" if inside else locked
        args = [command, str(data_file), "--label-key", "cell_type", *ARGS[command]]
        result = subprocess.run(
            [*without_root_override(), sys.executable, "-m", "scactive", *args, "--out", str(out)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        text = " ".join(result.stderr.split())
        assert result.returncode == 2 and "no write permission" in text, result.stderr
        assert "Traceback" not in result.stderr
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("value", ["1.5", "12.7", "0", "-3", "nan", "inf"])
def test_initial_must_be_a_fraction_or_a_whole_count(value, data_file, tmp_path):
    out = tmp_path / "run"
    refused(invoke("simulate", data_file, out, "--initial", value), f"initial={value}")
    assert not out.exists()


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--n-top-genes", "0", "n_top_genes=0"),
        ("--n-top-genes", "-5", "n_top_genes=-5"),
        ("--n-pcs", "0", "n_pcs=0"),
        ("--min-cells", "-1", "min_cells=-1"),
        ("--min-genes", "-1", "min_genes=-1"),
    ],
)
@pytest.mark.parametrize("command", ["simulate", "compare"])
def test_feature_counts_must_be_valid(command, option, value, message, data_file, tmp_path):
    out = tmp_path / "run"
    refused(invoke(command, data_file, out, option, value), message)
    assert not out.exists()


@pytest.mark.parametrize("model", ["logreg", "logreg-pca", "mlp2", "knn-transfer"])
def test_a_run_can_start_from_one_labeled_cell(model, data_file, tmp_path):
    out = tmp_path / "run"
    result = invoke("simulate", data_file, out, "--initial", "1", "--models", model)
    assert result.exit_code == 0, result.output
    results = pd.read_csv(out / "results.csv")
    start = results[(results["round"] == 0) & (results["strategy"] != "ceiling")]
    assert (start["n_labeled"] == 1).all()
    # one labeled type: every validation cell is called that type
    assert start["accuracy"].between(0.2, 0.5).all()
    assert (results.loc[results["round"] == 1, "n_labeled"] == 7).all()


def test_a_refused_run_leaves_no_folder_or_lock_file(data_file, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(invoke("simulate", data_file, empty, "--batch-sizes", "500"), "larger than")
    assert list(empty.iterdir()) == []
    out = tmp_path / "new"
    refused(invoke("compare", data_file, out, "--initial", "200"), "initial=200")
    assert not out.exists()


@pytest.mark.parametrize("command, what", [("simulate", "simulation"), ("compare", "comparison")])
def test_a_second_run_on_one_folder_is_refused(command, what, data_file, tmp_path):
    out = tmp_path / "run"
    with folder_lock(out, what="test"):  # the run holding the folder
        result = invoke(command, data_file, out)
    refused(result, f"Another scactive {what} is writing into")
    assert [p.name for p in out.iterdir()] == [".scactive.lock"]
    # the lock file is no one's data: the folder counts as empty, and the run goes ahead
    assert invoke(command, data_file, out).exit_code == 0
    assert (out / "config.json").exists()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "scactive", *args]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(cmd: list[str], ready, *, group: bool) -> subprocess.CompletedProcess:
    """Run ``cmd``, send SIGINT once ``ready()`` holds, and return the finished process."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,
        env={**os.environ, "COLUMNS": "200"},
        # as from a terminal: Ctrl-C not ignored, whatever the test process inherited
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 180
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before it was interrupted:\n{proc.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("the run did not finish a grid cell within 180 s")
            time.sleep(0.05)
        if group:  # as Ctrl-C in a terminal: every process of the group
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


#: a quick first grid cell, and many more to run after it
LONG = ["--models", "logreg", "--strategies", "random,entropy", "--batch-sizes", "3",
        "--rounds", "40", "--initial", "12", *QUICK, "--seeds", "10"]  # fmt: skip


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_keeps_the_finished_cells_and_says_how_to_resume(jobs, data_file, tmp_path):
    out = tmp_path / "run"
    cmd = _cli("simulate", str(data_file), "--label-key", "cell_type", *LONG, "--jobs", jobs,
               "--out", str(out))  # fmt: skip
    proc = _interrupt(cmd, lambda: any((out / "cells").glob("*.results.csv")), group=jobs == "2")
    assert proc.returncode == 130, proc.stderr
    text = " ".join(proc.stderr.split())
    assert "Interrupted" in text and "kept" in text and "run the same command again" in text
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr
    assert (out / "config.json").exists() and list((out / "cells").glob("*.results.csv"))


def test_ctrl_c_during_compare(data_file, tmp_path):
    out = tmp_path / "cmp"
    cmd = _cli("compare", str(data_file), "--label-key", "cell_type", *QUICK, "--seeds", "3",
               "--budgets", "120", "--batch-size", "3", "--strategies", "random,entropy",
               "--model", "logreg", "--methods", "logreg-ovr", "--out", str(out))  # fmt: skip
    proc = _interrupt(cmd, lambda: any((out / "cells").glob("*.results.csv")), group=False)
    assert proc.returncode == 130, proc.stderr
    assert "Interrupted" in proc.stderr and "Traceback" not in proc.stderr
    assert list((out / "cells").glob("*.results.csv"))


@pytest.mark.parametrize("command", ["simulate", "compare"])
def test_ctrl_c_wrapped_by_a_library_is_still_an_interrupt(
    command, data_file, tmp_path, monkeypatch
):
    import scactive.bench._execute as execute

    def numba_like(*args, **kwargs):  # numba turns a Ctrl-C into a SystemError
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as err:
            raise SystemError("returned a result with an exception set") from err

    monkeypatch.setattr(execute, "run_task", numba_like)
    result = invoke(command, data_file, tmp_path / "run")
    assert result.exit_code == 130, result.output
    assert "Interrupted" in result.output and "Traceback" not in result.output


def _planted_low_genes(tmp_path) -> Path:
    """Two types of whole transcriptomes and one whose cells detect few genes (a panel)."""
    import anndata as ad
    import numpy as np

    adata = make_counts(n_cells=150, n_genes=1500, fold=3.0)
    X = adata.X.toarray()
    low = (adata.obs["cell_type"] == "type2").to_numpy()
    keep = np.zeros(1500, bool)
    keep[:150] = True
    X[np.ix_(low, ~keep)] = 0  # type2 cells: at most 150 genes detected
    path = tmp_path / "panel.h5ad"
    ad.AnnData(X, obs=adata.obs, var=adata.var).write_h5ad(path)
    return path


@pytest.mark.parametrize("command", ["simulate", "compare"])
def test_the_paper_gene_filter_is_refused_when_it_removes_a_whole_type(command, tmp_path):
    path = _planted_low_genes(tmp_path)
    quick = [a for a in ARGS[command] if a not in ("--min-genes", "0")]
    base = [command, str(path), "--label-key", "cell_type", *quick]
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a")])
    refused(result, "all but at most one cell of 'type2'")
    assert "--min-genes" in result.output and not (tmp_path / "a").exists()
    # a filter given explicitly is the user's choice: the run goes on without type2
    given = CliRunner().invoke(app, [*base, "--min-genes", "500", "--out", str(tmp_path / "b")])
    assert given.exit_code == 0, given.output
    kept = CliRunner().invoke(app, [*base, "--min-genes", "100", "--out", str(tmp_path / "c")])
    assert kept.exit_code == 0, kept.output


def test_simulate_without_data_says_it_runs_the_demo(tmp_path):
    args = ["simulate", "--strategies", "uncertainty", "--batch-sizes", "9", "--rounds", "1",
            "--seeds", "1", "--no-report", "--no-ceiling", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "No DATA given: running the bundled demo pbmc68k_reduced" in text
    results = pd.read_csv(tmp_path / "demo" / "results.csv")
    assert set(results["strategy"]) == {"entropy"}  # the paper's name for it
