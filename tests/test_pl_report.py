"""Tests of scactive.pl (figures) and scactive.report (summary table, HTML report)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from scactive import pl
from scactive._errors import InputError
from scactive.metrics import curve_area
from scactive.report import summary_table, write_report

MODELS = ("mlp2", "logreg")
STRATEGIES = ("random", "entropy", "qbc")
BATCH_SIZES = (5, 10)
SEEDS = (0, 1)
N_ROUNDS = 4  # rounds 0..3
LABELS = ("<b>T&cells", "B cells", "NK")
N_INITIAL, N_POOL = 10, 80  # pool = initial + unlabeled pool cells


def _make_split(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for seed in SEEDS:
        roles = ["validation"] * 20 + ["initial"] * N_INITIAL + ["pool"] * (N_POOL - N_INITIAL)
        roles += ["left_out"] * 6
        for i, role in enumerate(roles):
            label = LABELS[i % len(LABELS)]
            left = role == "left_out"
            rows.append(
                {
                    "cell": f"cell{i}",
                    "seed": seed,
                    "role": role,
                    "reason": ("rare <class>" if i % 2 else "no label") if left else "",
                    "label": label,
                    "pc1": np.nan if left else rng.normal(LABELS.index(label) * 3),
                    "pc2": np.nan if left else rng.normal(),
                }
            )
    return pd.DataFrame(rows)


def _make_results(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    base = {"train_seconds": 0.1, "query_seconds": 0.01}
    for model in MODELS:
        for seed in SEEDS:
            rows.append(
                {
                    "model": model, "strategy": "ceiling", "batch_size": np.nan, "seed": seed,
                    "round": 0, "n_labeled": N_POOL, "frac_labeled": 1.0, "accuracy": 0.95,
                    "macro_f1": 0.9, "weighted_f1": 0.93, "loss": 0.2, "pool_exhausted": False,
                    **base,
                }
            )  # fmt: skip
            for strategy in STRATEGIES:
                for b in BATCH_SIZES:
                    for r in range(N_ROUNDS):
                        n = N_INITIAL + r * b
                        f1 = 0.9 * (1 - np.exp(-n / 20)) + rng.normal(0, 0.01)
                        rows.append(
                            {
                                "model": model, "strategy": strategy, "batch_size": b,
                                "seed": seed, "round": r, "n_labeled": n,
                                "frac_labeled": n / N_POOL, "accuracy": f1 + 0.03,
                                "macro_f1": f1, "weighted_f1": f1 + 0.02, "loss": 1.5 - f1,
                                "pool_exhausted": False,
                                **{f"recall:{lab}": f1 for lab in LABELS}, **base,
                            }
                        )  # fmt: skip
    df = pd.DataFrame(rows)
    last = df.index[(df["strategy"] == "qbc") & (df["round"] == N_ROUNDS - 1)][0]
    df.loc[last, "pool_exhausted"] = True
    return df


def _make_picks(split: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for seed in SEEDS:
        pool = split[(split["seed"] == seed) & (split["role"] == "pool")].reset_index(drop=True)
        for model in MODELS:
            for strategy in STRATEGIES:
                for b in BATCH_SIZES:
                    order = rng.permutation(len(pool))
                    for r in range(1, N_ROUNDS):
                        for i in order[(r - 1) * b : r * b]:
                            cell = pool.iloc[i]
                            rows.append(
                                {
                                    "model": model, "strategy": strategy, "batch_size": b,
                                    "seed": seed, "round": r, "cell": cell["cell"],
                                    "label": cell["label"], "pc1": cell["pc1"],
                                    "pc2": cell["pc2"],
                                }
                            )  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    split = _make_split(rng)
    return {"results": _make_results(rng), "split": split, "picks": _make_picks(split, rng)}


def _line_counts(fig: Figure) -> list[int]:
    return [len(ax.lines) for ax in fig.axes]


# --------------------------------------------------------------------------- plots


def test_celltype_overview(tables):
    fig = pl.celltype_overview(tables["split"], seed=0)
    assert isinstance(fig, Figure)
    ax_bar, ax_pca = fig.axes
    assert len(ax_bar.patches) == len(LABELS)
    n_shown = sum(len(c.get_offsets()) for c in ax_pca.collections)
    split0 = tables["split"][tables["split"]["seed"] == 0]
    assert n_shown == int((split0["role"] != "left_out").sum())
    with pytest.raises(InputError, match="seed=7"):
        pl.celltype_overview(tables["split"], seed=7)


def test_learning_curves(tables):
    fig = pl.learning_curves(tables["results"], model="mlp2")
    assert isinstance(fig, Figure)
    # one panel per metric; per panel one line per strategy plus the ceiling
    assert _line_counts(fig) == [len(STRATEGIES) + 1] * 3
    ax = fig.axes[1]
    ceiling = [ln for ln in ax.lines if ln.get_label() == "ceiling"]
    assert len(ceiling) == 1 and ceiling[0].get_linestyle() == "--"
    assert ceiling[0].get_ydata()[0] == pytest.approx(0.9)
    # default batch size is the largest: 4 rounds of the largest batch, against labeled cells
    entropy = next(ln for ln in ax.lines if ln.get_label() == "entropy")
    assert list(entropy.get_xdata()) == [N_INITIAL + r * 10 for r in range(N_ROUNDS)]
    assert ax.get_xlabel() == "Labeled cells"
    assert "batch size 10" in fig.get_suptitle()
    by_round = pl.learning_curves(tables["results"], model="mlp2", x="round")
    entropy = next(ln for ln in by_round.axes[0].lines if ln.get_label() == "entropy")
    assert list(entropy.get_xdata()) == list(range(N_ROUNDS))
    with pytest.raises(InputError, match="x='cells'"):
        pl.learning_curves(tables["results"], x="cells")


def test_learning_curves_mean_over_seeds(tables):
    res = tables["results"]
    fig = pl.learning_curves(res, model="logreg", metrics=("macro_f1",), batch_size=5)
    line = next(ln for ln in fig.axes[0].lines if ln.get_label() == "random")
    sub = res[(res["model"] == "logreg") & (res["strategy"] == "random") & (res["batch_size"] == 5)]
    expected = sub.groupby("round")["macro_f1"].mean().to_numpy()
    np.testing.assert_allclose(line.get_ydata(), expected)


def test_strategy_colours_consistent(tables):
    palette = pl.strategy_palette(STRATEGIES)
    for fig in (
        pl.learning_curves(tables["results"], model="mlp2"),
        pl.metric_grid(tables["results"], model="logreg"),
    ):
        for ax in fig.axes:
            for ln in ax.lines:
                if ln.get_label() in palette:
                    assert ln.get_color() == palette[ln.get_label()]
    # a known strategy keeps its colour whatever else is present
    assert pl.strategy_palette(["entropy"])["entropy"] == palette["entropy"]
    assert len(set(pl.strategy_palette([f"s{i}" for i in range(8)]).values())) == 8


def test_metric_grid(tables):
    fig = pl.metric_grid(tables["results"], model="mlp2")
    assert len(fig.axes) == 3 * len(BATCH_SIZES)
    assert _line_counts(fig) == [len(STRATEGIES) + 1] * len(fig.axes)
    # the bottom row runs along labeled cells: batch 5 in the first column, 10 in the second
    bottom = fig.axes[-len(BATCH_SIZES) :]
    assert {ax.get_xlabel() for ax in bottom} == {"Labeled cells"}
    for ax, b in zip(bottom, BATCH_SIZES, strict=True):
        line = next(ln for ln in ax.lines if ln.get_label() == "random")
        assert line.get_xdata()[-1] == N_INITIAL + (N_ROUNDS - 1) * b


def test_curves_by_fraction(tables):
    fig = pl.curves_by_fraction(tables["results"], model="mlp2")
    assert len(fig.axes) == 3 * len(STRATEGIES)
    assert _line_counts(fig) == [len(BATCH_SIZES) + 1] * len(fig.axes)
    line = next(ln for ln in fig.axes[0].lines if ln.get_label() == "10")
    assert line.get_xdata()[-1] == pytest.approx(100 * (N_INITIAL + 3 * 10) / N_POOL)
    fig = pl.curves_by_fraction(tables["results"], model="mlp2", x="n_labeled")
    line = next(ln for ln in fig.axes[-1].lines if ln.get_label() == "10")
    assert line.get_xdata()[-1] == N_INITIAL + 3 * 10
    assert fig.axes[-1].get_xlabel() == "Labeled cells"


def test_batch_composition(tables):
    fig = pl.batch_composition(tables["picks"], tables["split"], model="mlp2")
    assert len(fig.axes) == len(BATCH_SIZES) * len(STRATEGIES)
    ax = fig.axes[0]
    # one stacked bar per round plus the pool reference bar, one segment per cell type
    assert len(ax.patches) == len(LABELS) * (1 + N_ROUNDS - 1)
    # stacked proportions of each bar sum to one
    tops = {}
    for p in ax.patches:
        x = round(p.get_x(), 6)
        tops[x] = max(tops.get(x, 0.0), p.get_y() + p.get_height())
    assert all(t == pytest.approx(1.0) for t in tops.values())
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "pool"


def test_picks_pca(tables):
    fig = pl.picks_pca(tables["picks"], tables["split"], model="mlp2", seed=1)
    panels = len(BATCH_SIZES) * len(STRATEGIES)
    assert len(fig.axes) == panels + 1  # plus the colour bar
    ax = fig.axes[0]  # batch 5, random: background + picks
    assert len(ax.collections) == 2
    assert len(ax.collections[1].get_offsets()) == 5 * (N_ROUNDS - 1)
    fig = pl.picks_pca(tables["picks"], tables["split"], color_by="label", strategies=["qbc"])
    assert len(fig.axes) == len(BATCH_SIZES)
    with pytest.raises(InputError, match="color_by"):
        pl.picks_pca(tables["picks"], tables["split"], color_by="size")


def test_labels_curve(tables):
    fig = pl.labels_curve(tables["results"])
    ax = fig.axes[0]
    # all models: one line per strategy and model plus one ceiling per model
    assert len(ax.lines) == len(MODELS) * (len(STRATEGIES) + 1)
    styles = {ln.get_linestyle() for ln in ax.lines if ln.get_label().startswith("random")}
    assert len(styles) == len(MODELS)
    fig = pl.labels_curve(tables["results"], x="frac_labeled", model="mlp2")
    assert len(fig.axes[0].lines) == len(STRATEGIES) + 1


def test_labels_curve_draws_into_given_axes(tables):
    fig = Figure()
    ax = fig.add_subplot()
    assert pl.labels_curve(tables["results"], model="logreg", ax=ax) is fig


def test_plot_errors_name_the_argument(tables):
    with pytest.raises(InputError, match="Unknown model 'mlp3'.*Did you mean 'mlp2'"):
        pl.learning_curves(tables["results"], model="mlp3")
    with pytest.raises(InputError, match="batch_size=7"):
        pl.learning_curves(tables["results"], model="mlp2", batch_size=7)
    with pytest.raises(InputError, match="lacks column"):
        pl.metric_grid(tables["results"].drop(columns=["loss"]))


def test_aggregate_over_seeds():
    df = pd.DataFrame(
        {"strategy": ["a"] * 4, "seed": [0, 1, 0, 1], "round": [0, 0, 1, 1], "y": [1, 3, 2, 6.0]}
    )
    agg = pl.aggregate_over_seeds(df, "y")
    assert agg["mean"].tolist() == [2.0, 4.0]
    assert agg["min"].tolist() == [1.0, 2.0] and agg["max"].tolist() == [3.0, 6.0]
    assert agg["n"].tolist() == [2, 2]


# --------------------------------------------------------------------------- summary


def _planted_results() -> pd.DataFrame:
    """Ceiling macro-F1 0.9 => target 0.855; entropy seed 0 crosses it at n_labeled=30."""
    curves = {
        ("entropy", 0): [0.5, 0.8, 0.86, 0.9],
        ("entropy", 1): [0.5, 0.6, 0.7, 0.8],  # never reaches
        ("random", 0): [0.4, 0.5, 0.6, 0.7],  # never reaches
        ("random", 1): [0.4, 0.5, 0.6, 0.85],  # 0.85 < 0.855: still not reached
    }
    rows = []
    for (strategy, seed), f1s in curves.items():
        for r, f1 in enumerate(f1s):
            rows.append(
                {
                    "model": "m", "strategy": strategy, "batch_size": 10, "seed": seed,
                    "round": r, "n_labeled": 10 + 10 * r, "accuracy": f1, "macro_f1": f1,
                    "weighted_f1": f1, "loss": 1 - f1,
                }
            )  # fmt: skip
    for seed in (0, 1):
        rows.append(
            {
                "model": "m", "strategy": "ceiling", "batch_size": np.nan, "seed": seed,
                "round": 0, "n_labeled": 100, "accuracy": 0.95, "macro_f1": 0.9,
                "weighted_f1": 0.92, "loss": 0.1,
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_summary_table_planted_answer():
    table = summary_table(_planted_results(), target=0.95)
    assert list(table["strategy"]) == ["random", "entropy", "ceiling"]
    ent = table.set_index("strategy").loc["entropy"]
    assert ent["labels_to_target"] == 30
    assert ent["seeds_reached"] == 1 and ent["seeds_with_ceiling"] == 2
    assert ent["labels_to_target_text"] == "30 (1/2 seeds)"
    assert ent["macro_f1_mean"] == pytest.approx(0.85)
    assert ent["macro_f1_std"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
    auc0 = ((0.5 + 0.8) / 2 + (0.8 + 0.86) / 2 + (0.86 + 0.9) / 2) * 10 / 30
    auc1 = ((0.5 + 0.6) / 2 + (0.6 + 0.7) / 2 + (0.7 + 0.8) / 2) * 10 / 30
    assert ent["auc_macro_f1_mean"] == pytest.approx((auc0 + auc1) / 2)
    rnd = table.set_index("strategy").loc["random"]
    assert math.isnan(rnd["labels_to_target"]) and rnd["seeds_reached"] == 0
    assert rnd["labels_to_target_text"] == "not reached"
    # at 80% of the ceiling (0.72) both seeds reach it: seed 0 at 20, seed 1 at 40 cells
    low = summary_table(_planted_results(), target=0.8).set_index("strategy")
    assert low.loc["entropy", "labels_to_target"] == 30
    assert low.loc["entropy", "labels_to_target_text"] == "30 (2/2 seeds)"


def test_summary_table_without_ceiling_and_bad_target():
    res = _planted_results()
    table = summary_table(res[res["strategy"] != "ceiling"])
    assert set(table["labels_to_target_text"]) == {"no ceiling"}
    with pytest.raises(InputError, match="target"):
        summary_table(res, target=-1)


def test_curve_area_is_mean_of_constant_curve():
    assert curve_area(np.array([10, 20, 40]), np.array([0.7, 0.7, 0.7])) == pytest.approx(0.7)
    assert curve_area(np.array([10]), np.array([0.3])) == pytest.approx(0.3)


# --------------------------------------------------------------------------- report


def _write_run(outdir: Path, tables: dict[str, pd.DataFrame]) -> None:
    for name, df in tables.items():
        df.to_csv(outdir / f"{name}.csv", index=False)
    config = {
        "data": "synthetic <data> & co",
        "models": list(MODELS),
        "strategies": list(STRATEGIES),
        "batch_sizes": list(BATCH_SIZES),
        "seeds": list(SEEDS),
        "n_rounds": N_ROUNDS - 1,
        "initial": N_INITIAL,
        "label_key": "cell_type",
        "versions": {"scactive": "0.1.0", "numpy": np.__version__},
        "input_sha256": "ab" * 32,
        "skipped": ["logreg x bald: needs <MC> dropout"],
    }
    (outdir / "config.json").write_text(json.dumps(config))


def test_write_report(tmp_path, tables):
    _write_run(tmp_path, tables)
    path = write_report(tmp_path, dpi=40)
    assert path == tmp_path / "report.html"
    text = path.read_text("utf-8")
    n_img = text.count('<img src="data:image/png;base64,')
    assert n_img >= 6
    assert n_img == 1 + 6 * len(MODELS)  # figure 1 once, figures 2-6 and 8 per model
    pngs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert len(pngs) == n_img
    assert "fig1_celltypes.png" in pngs and "fig2_learning_curves_mlp2.png" in pngs
    for num in (1, 2, 3, 4, 5, 6, 8):
        assert any(name.startswith(f"fig{num}_") for name in pngs)
    # no stopping columns in these results: no figure 9, no stopping sentence
    assert "Stopping rule" not in text and "stopping rule" not in text
    assert all((tmp_path / "figures" / n).read_bytes().startswith(b"\x89PNG") for n in pngs)
    # self-contained: no external references of any kind
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"""(src|href)=["'](?!data:)""", text)
    # text from the data is escaped
    assert "<b>T&cells" not in text and "&lt;b&gt;T&amp;cells" in text
    assert "&lt;MC&gt; dropout" in text and "synthetic &lt;data&gt; &amp; co" in text
    assert "rare &lt;class&gt;" in text
    # parameters, early stops, summary
    assert "ab" * 32 in text and np.__version__ in text
    assert "stopped early" in text
    assert text.count("<tr>") > 20
    assert (tmp_path / "summary.csv").is_file()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_write_report_missing_results(tmp_path):
    with pytest.raises(InputError, match="results.csv"):
        write_report(tmp_path)
    with pytest.raises(InputError, match="not a directory"):
        write_report(tmp_path / "nope")


def test_report_draws_the_cell_types_found(tmp_path, tables):
    results = tables["results"].copy()
    # planted: types found grow with the labels, all of them on the ceiling rows
    results["n_types_found"] = np.minimum(1 + results["n_labeled"] // 20, 9)
    _write_run(tmp_path, {**tables, "results": results})
    text = write_report(tmp_path, dpi=40).read_text("utf-8")
    assert "Figure 7. Cell types found" in text
    pngs = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert {f"fig7_types_found_{m}.png" for m in MODELS} <= pngs
    assert text.count('<img src="data:image/png;base64,') == 1 + 7 * len(MODELS)


def _planted_runs(start: float = 0.2) -> pd.DataFrame:
    """Random climbs slowly; 'good' climbs faster; 'same' is random give or take 0.01 a seed."""
    rows = []
    n = np.array([20, 40, 60, 80, 100])
    for seed in range(4):
        slow = np.minimum(start + 0.006 * (n - 20), 1.0)
        fast = np.minimum(start + 0.012 * (n - 20), 1.0)
        same = slow + (0.01 if seed % 2 else -0.01)
        for strategy, f1 in (("random", slow), ("good", fast), ("same", same)):
            for r, (k, v) in enumerate(zip(n, f1, strict=True)):
                rows.append(dict(model="mlp2", strategy=strategy, batch_size=20, seed=seed,
                                 round=r, n_labeled=k, macro_f1=v))  # fmt: skip
        rows.append(dict(model="mlp2", strategy="ceiling", batch_size=pd.NA, seed=seed,
                         round=0, n_labeled=500, macro_f1=0.8))  # fmt: skip
    return pd.DataFrame(rows)


def test_headline_pairs_each_strategy_with_random_on_a_fixed_target():
    from scactive.report._headline import headline_table, headline_text

    table = headline_table(_planted_runs(), target=0.95).set_index("strategy")
    good, same = table.loc["good"], table.loc["same"]
    assert good["target_f1_95"] == pytest.approx(0.76)  # 0.95 x the mean ceiling, every seed
    # random reaches 0.76 at 20 + 0.56 / 0.006 -> the 120-label round is past the end: not
    # reached; 'good' reaches it at 20 + 0.56 / 0.012 = 66.7 -> the 80-label round
    assert good["seeds_reached_95"] == 4 and good["seeds_reached_random_95"] == 0
    assert good["verdict"] == "better" and good["wins"] == 4 and good["auc_gain"] > 0
    assert same["verdict"] == "no clear difference" and same["wins"] == 2
    text = " ".join(headline_text(headline_table(_planted_runs(), 0.95), 0.95))
    assert "good gains most over random" in text
    assert "95% of the mean ceiling (macro-F1 0.760): reached in 4 of 4 seeds, random in 0." in text
    late = " ".join(headline_text(headline_table(_planted_runs(start=0.9), 0.95), 0.95))
    assert "the start already reaches 95% of the ceiling" in late


def test_headline_without_a_ceiling_compares_the_curves_only():
    from scactive.report._headline import headline_table, headline_text

    runs = _planted_runs()
    runs = runs[runs.strategy != "ceiling"]
    text = " ".join(headline_text(headline_table(runs, 0.95), 0.95))
    assert "good gains most over random" in text and "nan" not in text
