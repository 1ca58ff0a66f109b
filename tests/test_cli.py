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
        ("ok", ["--strategies", "random,entropi"], "Unknown strategy 'entropi'"),
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


# -- start-up, help texts, --version and --plugin ------------------------------------------


def test_version_prints_the_package_version():
    from scactive._meta import package_version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"scactive {package_version()}\n"
    proc = subprocess.run(
        [sys.executable, "-m", "scactive", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout == f"scactive {package_version()}\n"


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def test_help_lists_every_registered_strategy_and_learner(monkeypatch):
    from scactive.models._registry import DEFAULT_MODEL, PRESETS
    from scactive.strategies._registry import DEFAULT_STRATEGIES, STRATEGIES

    # one registered now shows up too: the help reads the registries, not a list of its own
    monkeypatch.setitem(STRATEGIES, "test-strategy", STRATEGIES["random"])
    monkeypatch.setitem(PRESETS, "test-learner", PRESETS[DEFAULT_MODEL])
    text = _help("simulate")
    for name in [*STRATEGIES, *PRESETS]:
        assert f" {name}," in text or f" {name}." in text or f" {name};" in text, name
    assert f"[default: {DEFAULT_MODEL}]" in text
    assert f"[default: {','.join(DEFAULT_STRATEGIES)}]" in text


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_no_help_text_loses_brackets_to_rich_markup():
    """Help is printed through rich, which reads ``[word ...]`` as a style tag and drops it;
    a bracket meant as text must be escaped (``\\[``)."""
    import typer
    from rich.text import Text

    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            text = getattr(param, "help", None) or ""
            assert Text.from_markup(text).plain == text.replace("\\[", "["), (path, param.name)
    text = _help("simulate")
    assert "[default: 500, the paper's;" in text
    assert "synthetic:CELLS[xGENES]" in text and "[default: the bundled demo" in text


def test_compare_help_lists_every_method():
    from scactive.comparison import methods
    from scactive.comparison._tools import TOOLS

    text = _help("compare")
    assert set(TOOLS) <= set(methods())
    for name in methods():
        assert f" {name}," in text or f" {name}." in text or f" {name};" in text, name


@pytest.mark.parametrize(
    "command",
    [
        ["simulate", "x.h5ad"],
        ["compare", "x.h5ad", "--out", "out"],
        ["query", "x.h5ad", "--session", "s.scactive"],
        ["annotate", "x.h5ad", "--session", "s.scactive"],
        ["export", "x.h5ad", "--session", "s.scactive", "--out", "o.h5ad"],
    ],
)
def test_plugin_that_cannot_be_imported_exits_2(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [*command, "--plugin", "no_such_plugin_module"])
    assert result.exit_code == 2, result.output
    assert "no_such_plugin_module" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing read or written


def test_plugin_that_fails_on_import_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("import no_such_dependency_module\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "broken_plugin", raising=False)
    result = CliRunner().invoke(app, ["simulate", "x.h5ad", "--plugin", "broken_plugin"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "'broken_plugin' could not be imported" in text and "no_such_dependency_module" in text


def test_plugin_strategy_can_be_named(data_file, tmp_path, monkeypatch):
    from scactive.strategies import _registry

    (tmp_path / "my_cli_plugin.py").write_text(
        "from scactive.strategies import RandomSampling, register_strategy\n"
        "register_strategy('plugin-random', RandomSampling)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_cli_plugin", raising=False)
    out = tmp_path / "run"
    try:
        result = invoke(
            data_file, "--label-key", "cell_type", "--out", out, *FAST, "--no-report",
            "--strategies", "plugin-random", "--plugin", "my_cli_plugin",
        )  # fmt: skip
    finally:
        _registry.STRATEGIES.pop("plugin-random", None)
        getattr(_registry, "STRATEGY_COLORS", {}).pop("plugin-random", None)
    assert result.exit_code == 0, result.output
    assert "plugin-random" in (out / "results.csv").read_text()


def test_importing_the_command_line_loads_no_heavy_library():
    """``scactive --help`` answers at once: torch, scanpy, anndata and scikit-learn load inside
    the commands that need them."""
    heavy = ("torch", "scanpy", "anndata", "sklearn")
    code = f"import sys, scactive.cli; print([m for m in {heavy!r} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


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
