"""The report's figures 8 and 9: recall of the rarest cell types, and the stopping rule's
estimate against the truth, on planted tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from scactive import pl
from scactive._errors import InputError
from scactive.report import write_report
from test_report_targets import planted

#: Pool cells per type (same in both seeds). F has validation cells but none in the pool (the
#: rarest of all); G has pool cells and no validation cell, so no recall column.
POOL = {"A": 50, "B": 3, "C": 10, "D": 1, "E": 20, "G": 2}
RECALL_TYPES = ("A", "B", "C", "D", "E", "F")
STRATEGIES = ("random", "entropy")
SEEDS = (0, 1)


def _split() -> pd.DataFrame:
    rows = []
    for seed in SEEDS:
        i = 0
        for label, n in POOL.items():
            for k in range(n):
                role = "initial" if k == 0 else "pool"
                rows.append(dict(cell=f"c{i}", seed=seed, role=role, label=label))
                i += 1
        for label in RECALL_TYPES:
            rows.append(dict(cell=f"c{i}", seed=seed, role="validation", label=label))
            i += 1
        rows.append(dict(cell=f"c{i}", seed=seed, role="left_out", label="D"))  # not counted
    split = pd.DataFrame(rows)
    # the other columns of split.csv, for the report's other sections
    return split.assign(reason="", pc1=np.arange(len(split)) % 7, pc2=np.arange(len(split)) % 5)


def _recall(strategy: str, seed: int, r: int, label: str) -> float:
    """Recall rises with the round; entropy is 0.1 above random; seed 1 is 0.2 above seed 0."""
    return min(1.0, 0.1 * r + (0.1 if strategy == "entropy" else 0.0) + 0.2 * seed)


_METRICS = dict(accuracy=0.5, macro_f1=0.5, weighted_f1=0.5, loss=1.0)


def _results() -> pd.DataFrame:
    rows = []
    for strategy in STRATEGIES:
        for seed in SEEDS:
            for r in range(4):
                rows.append(
                    dict(model="m", strategy=strategy, batch_size=5, seed=seed, round=r,
                         n_labeled=10 + 5 * r, **_METRICS,
                         **{f"recall:{t}": _recall(strategy, seed, r, t) for t in RECALL_TYPES})
                )  # fmt: skip
    for seed in SEEDS:
        rows.append(
            dict(model="m", strategy="ceiling", batch_size=np.nan, seed=seed, round=0,
                 n_labeled=100, **_METRICS, **{f"recall:{t}": 0.9 for t in RECALL_TYPES})
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_rarest_types_rank_by_pool_cells_among_the_types_with_a_recall():
    rare = pl.rarest_types(_results(), _split(), n_types=4)
    assert list(rare.index) == ["F", "D", "B", "C"]  # G is rare but has no recall column
    assert list(rare) == [0, 1, 3, 10]  # initial and pool cells, left-out ones not counted
    with pytest.raises(InputError, match="n_types=0"):
        pl.rarest_types(_results(), _split(), n_types=0)
    with pytest.raises(InputError, match="no per-class recall"):
        pl.rarest_types(_results()[["model", "strategy"]], _split())


def test_rare_type_recall_panels_are_the_rarest_types():
    fig = pl.rare_type_recall(_results(), _split())
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "F (0 pool cells)",
        "D (1 pool cells)",
        "B (3 pool cells)",
        "C (10 pool cells)",
    ]
    ax = fig.axes[1]
    assert ax.get_xlabel() == "Labeled cells"
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert set(lines) == {*STRATEGIES, "ceiling"}
    # mean over the two seeds against labeled cells
    assert list(lines["entropy"].get_xdata()) == [10, 15, 20, 25]
    expected = [np.mean([_recall("entropy", s, r, "D") for s in SEEDS]) for r in range(4)]
    np.testing.assert_allclose(lines["entropy"].get_ydata(), expected)
    assert lines["random"].get_color() == pl.strategy_palette(STRATEGIES)["random"]


def test_rare_type_recall_with_given_types_and_errors():
    fig = pl.rare_type_recall(_results(), types=["E", "A"])
    assert [ax.get_title() for ax in fig.axes] == ["E", "A"]
    with pytest.raises(InputError, match="split is None"):
        pl.rare_type_recall(_results())
    with pytest.raises(InputError, match="G"):
        pl.rare_type_recall(_results(), types=["G"])


def test_report_draws_the_rare_type_recall(tmp_path):
    _results().to_csv(tmp_path / "results.csv", index=False)
    _split().to_csv(tmp_path / "split.csv", index=False)
    text = write_report(tmp_path, dpi=30).read_text("utf-8")
    assert "Figure 8. Recall of the rarest cell types" in text
    assert (tmp_path / "figures" / "fig8_rare_type_recall_m.png").is_file()


def test_stopping_curves_mark_the_mean_first_stop():
    results = planted(stopping=True)
    fig = pl.stopping_curves(results)
    random_ax, good_ax = fig.axes  # random first, then the others sorted
    assert [random_ax.get_title(), good_ax.get_title()] == ["random", "good"]
    truth = next(ln for ln in good_ax.lines if ln.get_label() == "good")
    estimate = next(ln for ln in good_ax.lines if ln.get_label() == "good (estimate)")
    assert estimate.get_linestyle() == "--" and truth.get_linestyle() == "-"
    np.testing.assert_allclose(estimate.get_ydata()[1:], truth.get_ydata()[1:] - 0.05, atol=1e-12)
    stops = [ln for ln in good_ax.lines if ln.get_linestyle() == ":"]
    assert len(stops) == 1 and list(stops[0].get_xdata()) == [35, 35]
    # random never stops: no stop line, a note instead
    assert not [ln for ln in random_ax.lines if ln.get_linestyle() == ":"]
    assert any(t.get_text() == "no stop" for t in random_ax.texts)


def test_stopping_curves_need_the_columns():
    with pytest.raises(InputError, match="estimated_f1"):
        pl.stopping_curves(planted())
    assert not pl.has_stopping(planted()) and pl.has_stopping(planted(stopping=True))
