"""The README's example strategy: one file and one registry line reach every part of scactive."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import make_counts
from scactive import simulate
from scactive.models import MLPClassifier
from scactive.pl import strategy_palette
from scactive.strategies import STRATEGIES, get_strategy
from scactive.strategies._registry import STRATEGY_COLORS, strategy_tags
from strategy_contract import check_strategy_contract
from test_simulate import FAST

README = Path(__file__).resolve().parents[1] / "README.md"
NAME = "balanced-entropy"
TIMINGS = ["train_seconds", "query_seconds"]


def readme_example() -> str:
    """The code block of the README that starts with ``# my_strategies.py``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    found = [b for b in blocks if b.startswith("# my_strategies.py")]
    assert len(found) == 1, "the README holds one example strategy"
    return found[0]


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The README's example written as a module and imported; unregistered afterwards."""
    (tmp_path / "my_strategies.py").write_text(readme_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("my_strategies")
    yield tmp_path, module
    sys.modules.pop("my_strategies", None)
    STRATEGIES.pop(NAME, None)
    STRATEGY_COLORS.pop(NAME, None)


def test_example_is_about_twenty_lines():
    code = [line for line in readme_example().splitlines() if line.strip()]
    assert len(code) <= 22


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(1)
    centers = rng.normal(0, 4, size=(4, 20))
    y = np.repeat(np.arange(4), [60, 60, 60, 6])  # a rare fourth type
    X = (centers[y] + rng.normal(size=(len(y), 20))).astype(np.float32)
    labeled = np.zeros(len(y), bool)
    labeled[rng.choice(np.flatnonzero(y < 3), 12, replace=False)] = True
    labeled[np.flatnonzero(y == 3)[:2]] = True
    learner = MLPClassifier(hidden=(16,), min_steps=50, random_state=0)
    learner.fit(X[labeled], y[labeled])
    return learner, X, labeled


def test_registered_strategy_obeys_the_contract(plugin, fitted):
    learner, X, labeled = fitted
    assert NAME in STRATEGIES
    assert strategy_tags(NAME).needs_learner and not strategy_tags(NAME).needs_mc_draws
    check_strategy_contract(get_strategy(NAME), learner, X, labeled)


def test_registered_strategy_asks_about_every_predicted_type(plugin, fitted):
    learner, X, labeled = fitted
    predicted = learner.predict(X)
    types = set(predicted[~labeled])
    picks = get_strategy(NAME)(learner, X, labeled=labeled, batch_size=len(types), rng=0)
    assert set(predicted[picks]) == types  # plain top-k entropy need not cover the rare type


def test_registered_strategy_has_its_colour(plugin):
    palette = strategy_palette(["random", NAME])
    assert palette[NAME] == "#e377c2" and palette["random"] != "#e377c2"


def test_registered_strategy_reaches_worker_processes(plugin):
    adata = make_counts(n_cells=150, n_genes=300)
    options = dict(
        FAST, label_key="cell_type", models=["logreg"], strategies=["random", NAME]
    ) | dict(ceiling=False, report=False)
    serial = simulate(adata, n_jobs=1, **options)
    parallel = simulate(adata, n_jobs=2, **options)
    assert set(parallel["strategy"]) == {"random", NAME}
    pd.testing.assert_frame_equal(serial.drop(columns=TIMINGS), parallel.drop(columns=TIMINGS))


def test_command_line_lists_and_runs_a_plugin_strategy(plugin, tmp_path):
    folder, _ = plugin
    path = os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "400"}
    adata = make_counts(n_cells=150, n_genes=300)
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    cli = [sys.executable, "-m", "scactive"]
    # a module imported before the command line is built: its strategy is in the help
    show_help = "import my_strategies; from scactive.cli import main; main()"
    help_text = subprocess.run(
        [sys.executable, "-c", show_help, "simulate", "--help"],
        env=env, capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    assert NAME in help_text
    out = tmp_path / "run"
    run = subprocess.run(
        [*cli, "simulate", str(data), "--label-key", "cell_type", "--plugin", "my_strategies",
         "--strategies", f"random,{NAME}", "--models", "logreg", "--batch-sizes", "6",
         "--rounds", "1", "--seeds", "1", "--initial", "12", "--min-genes", "0",
         "--n-top-genes", "100", "--n-pcs", "10", "--jobs", "2", "--no-progress",
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    results = pd.read_csv(out / "results.csv")
    assert NAME in set(results["strategy"])


def test_registered_learner_runs_in_the_grid_by_its_declared_capabilities():
    from scactive.models import PRESETS, register_learner

    register_learner(
        "forest",
        "sklearn.ensemble:RandomForestClassifier",
        params={"n_estimators": 20},
        input="pca",
        description="random forest on the pool's PCA",
    )
    try:
        adata = make_counts(n_cells=150, n_genes=300)
        options = dict(FAST, models=["forest"], strategies=["entropy", "qbc"])
        table = simulate(adata, label_key="cell_type", report=False, **options)
        rows = table[table["strategy"] != "ceiling"]
        assert set(rows["model"]) == {"forest"}
        # not stochastic: the MC-dropout strategy is left out, the others run
        assert set(rows["strategy"]) == {"entropy"}
        assert rows["macro_f1"].iloc[-1] > 0.5
    finally:
        PRESETS.pop("forest", None)


def test_strategies_and_learners_of_other_packages_load_from_entry_points(monkeypatch, caplog):
    from importlib.metadata import EntryPoint

    import scactive._plugins as plugins
    from scactive.models import PRESETS, get_preset

    points = {
        "scactive.strategies": [
            EntryPoint("ep-random", "scactive.strategies._strategies:RandomSampling",
                       "scactive.strategies"),
            EntryPoint("ep-broken", "no_such_module:Nothing", "scactive.strategies"),
        ],
        "scactive.learners": [
            EntryPoint("ep-logreg", "tests_ep_preset:PRESET", "scactive.learners"),
        ],
    }  # fmt: skip
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: points.get(group, []))
    monkeypatch.setattr(plugins, "_loaded", set())
    monkeypatch.setitem(sys.modules, "tests_ep_preset", type(sys)("tests_ep_preset"))
    from scactive.models import Preset

    sys.modules["tests_ep_preset"].PRESET = Preset("sklearn.linear_model:LogisticRegression")
    try:
        with caplog.at_level("WARNING", logger="scactive"):
            assert get_strategy("ep-random").name == "random"
        assert "ep-broken" in caplog.text  # a broken plugin is named, the others still load
        assert get_preset("ep-logreg").factory == "sklearn.linear_model:LogisticRegression"
    finally:
        for name in ("ep-random", "ep-broken"):
            STRATEGIES.pop(name, None)
            STRATEGY_COLORS.pop(name, None)
        PRESETS.pop("ep-logreg", None)
