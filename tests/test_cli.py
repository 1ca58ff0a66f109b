"""The ``scactive`` command line: a good run, and every bad input with a clear message."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import corrupt, make_counts
from scactive.cli import app

FAST = [
    "--strategies",
    "random,entropy",
    "--batch-sizes",
    "6",
    "--seeds",
    "1",
    "--rounds",
    "1",
    "--initial",
    "12",
    "--min-genes",
    "0",
    "--n-top-genes",
    "100",
    "--n-pcs",
    "10",
    "--no-progress",
]


def invoke(*args):
    return CliRunner().invoke(app, ["simulate", *map(str, args)])


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cells.h5ad"
    make_counts(n_cells=150, n_genes=300).write_h5ad(path)
    return path


def test_simulate_writes_results_and_report(data_file, tmp_path):
    out = tmp_path / "run"
    result = invoke(data_file, "--label-key", "cell_type", "--out", out, *FAST)
    assert result.exit_code == 0, result.output
    assert {"results.csv", "picks.csv", "split.csv", "config.json", "report.html", "figures"} <= {
        p.name for p in out.iterdir()
    }
    again = invoke(data_file, "--label-key", "cell_type", "--out", out, *FAST)
    assert again.exit_code == 0  # the same command resumes (nothing left to run)


def _bad_data(tmp_path, problem):
    adata = corrupt(make_counts(n_cells=150, n_genes=300), problem)
    path = tmp_path / f"{problem}.h5ad"
    adata.write_h5ad(path)
    return path


@pytest.mark.parametrize(
    "problem, extra, message",
    [
        ("nan", [], "NaN or infinite"),
        ("inf", [], "NaN or infinite"),
        ("negative", [], "negative values"),
        ("one_class", [], "at least two"),
        ("duplicates", [], "more than once"),
        ("empty", [], "empty"),
        ("ok", ["--label-key", "celltype"], "not in adata.obs; available"),
        ("ok", ["--batch-sizes", "500"], "larger than"),
        ("ok", ["--strategies", "random,uncertainty"], "Unknown strategy 'uncertainty'"),
        ("ok", ["--models", "mlp9"], "Unknown model 'mlp9'"),
        ("ok", ["--batch-sizes", "9,x"], "comma-separated"),
        ("ok", ["--initial", "1000"], "initial="),
    ],
)
def test_bad_input_exits_2_without_output(tmp_path, data_file, problem, extra, message):
    path = data_file if problem == "ok" else _bad_data(tmp_path, problem)
    out = tmp_path / "out"
    args = [path, "--label-key", "cell_type", "--out", out, *FAST, *extra]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not out.exists()


def test_missing_and_truncated_files(tmp_path, data_file):
    out = tmp_path / "out"
    result = invoke(tmp_path / "absent.h5ad", "--label-key", "x", "--out", out)
    assert result.exit_code == 2 and "not found" in result.output
    broken = tmp_path / "broken.h5ad"
    broken.write_bytes(data_file.read_bytes()[:3000])
    result = invoke(broken, "--label-key", "cell_type", "--out", out)
    assert result.exit_code == 2 and "truncated" in " ".join(result.output.split())
    assert not out.exists()


def test_folder_of_another_run_is_left_alone(tmp_path, data_file):
    out = tmp_path / "run"
    assert (
        invoke(data_file, "--label-key", "cell_type", "--out", out, *FAST, "--no-report").exit_code
        == 0
    )
    before = sorted(p.name for p in out.rglob("*"))
    result = invoke(data_file, "--label-key", "cell_type", "--out", out, *FAST, "--rounds", "2")
    assert result.exit_code == 2 and "different run" in " ".join(result.output.split())
    assert sorted(p.name for p in out.rglob("*")) == before


def test_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scactive",
            "simulate",
            str(tmp_path / "none.h5ad"),
            "--label-key",
            "x",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "package", ["scactive", "scactive.app", "scactive.bench", "scactive.comparison",
                "scactive.loop", "scactive.models", "scactive.pl", "scactive.pp",
                "scactive.report", "scactive.strategies"],
)  # fmt: skip
def test_every_public_name_resolves(package):
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018
