"""Labels to 90% and 95% of a target that does not move between seeds, and the stopping rule's
sentences: the headline and the summary table on planted results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scactive import pl
from scactive.report import summary_table, write_report
from scactive.report._headline import headline_html, headline_table, headline_text

N = [10, 20, 30, 40, 50]
#: The ceiling differs between seeds (0.9, 1.1) but its mean is 1.0: the targets are 0.90 and
#: 0.95 for both seeds. Seed 1's own ceiling would put 95% at 1.045, which no curve reaches.
CEILINGS = {0: 0.9, 1: 1.1}
CURVES = {
    ("random", 0): [0.5, 0.7, 0.9, 0.95, 0.97],  # 90% at 30, 95% at 40
    ("random", 1): [0.5, 0.6, 0.8, 0.9, 0.96],  # 90% at 40, 95% at 50
    ("good", 0): [0.6, 0.9, 0.95, 0.97, 0.98],  # 90% at 20, 95% at 30
    ("good", 1): [0.6, 0.92, 0.93, 0.96, 0.97],  # 90% at 20, 95% at 40
}
#: The stopping rule says stop for 'good' from 30 labels (seed 0) and 40 (seed 1), never for
#: random; the estimate is the truth minus 0.05.
FIRST_STOP = {("good", 0): 2, ("good", 1): 3}


def planted(stopping: bool = False) -> pd.DataFrame:
    rows = []
    for (strategy, seed), f1s in CURVES.items():
        for r, (n, f1) in enumerate(zip(N, f1s, strict=True)):
            row = dict(model="m", strategy=strategy, batch_size=10, seed=seed, round=r,
                       n_labeled=n, accuracy=f1, macro_f1=f1, weighted_f1=f1,
                       loss=1 - f1)  # fmt: skip
            if stopping:
                row["estimated_f1"] = f1 - 0.05 if r else np.nan  # no estimate at round 0
                row["stop"] = r >= FIRST_STOP.get((strategy, seed), 99)
            rows.append(row)
    for seed, f1 in CEILINGS.items():
        row = dict(model="m", strategy="ceiling", batch_size=np.nan, seed=seed, round=0,
                   n_labeled=200, accuracy=f1, macro_f1=f1, weighted_f1=f1, loss=0.1)  # fmt: skip
        if stopping:
            row.update(estimated_f1=np.nan, stop=False)
        rows.append(row)
    return pd.DataFrame(rows)


def test_headline_gives_labels_to_90_and_95_percent_of_the_mean_ceiling():
    good = headline_table(planted(), target=0.95).set_index("strategy").loc["good"]
    assert good["target_f1_90"] == pytest.approx(0.90)
    assert good["target_f1_95"] == pytest.approx(0.95)
    assert good["labels_90"] == 20 and good["labels_random_90"] == 35
    assert good["labels_saved_90"] == 15
    assert good["labels_saved_std_90"] == pytest.approx(np.std([10, 20], ddof=1))
    # at 95% both seeds of both strategies reach it: the target does not move with seed 1's
    # higher ceiling
    assert good["labels_95"] == 35 and good["labels_random_95"] == 45
    assert good["seeds_reached_random_95"] == 2 and good["seeds_both_95"] == 2
    assert good["labels_saved_95"] == 10 and good["labels_saved_std_95"] == 0
    assert good["verdict"] == "better"


def test_headline_text_and_table_name_both_levels():
    table = headline_table(planted(), target=0.95)
    text = " ".join(headline_text(table, 0.95))
    assert "good gains most over random" in text
    assert (
        "90% of the mean ceiling (macro-F1 0.900): reached in 2 of 2 seeds, random in 2; where "
        "both do (2 seeds) it needs 20 labels, random 35: 15 fewer on average." in text
    )
    assert "95% of the mean ceiling (macro-F1 0.950): reached in 2 of 2 seeds" in text
    assert "stopping rule" not in text  # no stopping columns
    html = headline_html(planted(), 0.95)
    for header in ("labels to 90%", "random to 90%", "labels to 95%", "random to 95%"):
        assert f"<th>{header}</th>" in html
    assert "Targets: 90%, 95% of the ceiling" in html


def test_another_target_adds_a_level():
    good = headline_table(planted(), target=0.8).set_index("strategy").loc["good"]
    assert good["labels_80"] == 20 and good["labels_random_80"] == 30  # both seeds alike
    table = summary_table(planted(), target=0.8).set_index("strategy")
    assert {"labels_to_80", "labels_to_90", "labels_to_95"} <= set(table.columns)
    assert table.loc["good", "labels_to_target"] == table.loc["good", "labels_to_80"]


def test_summary_table_gives_both_levels_on_the_fixed_target():
    table = summary_table(planted(), target=0.95).set_index("strategy")
    good, rnd = table.loc["good"], table.loc["random"]
    assert good["labels_to_90"] == 20 and good["labels_to_90_text"] == "20 (2/2 seeds)"
    assert good["labels_to_95"] == 35 and good["labels_to_95_text"] == "35 (2/2 seeds)"
    assert rnd["labels_to_90"] == 35 and rnd["labels_to_95"] == 45
    # seed 1's own ceiling (1.1) would have left it at "40 (1/2 seeds)"
    assert rnd["labels_to_95_text"] == "45 (2/2 seeds)"
    assert rnd["labels_to_target_text"] == rnd["labels_to_95_text"]
    assert table.loc["ceiling", "labels_to_90_text"] == ""
    assert "seeds_stopped" not in table.columns  # no stopping columns: nothing added


def test_stop_points_and_summary_on_planted_stops():
    points = pl.stop_points(planted(stopping=True)).set_index(["strategy", "seed"])
    assert points.loc[("good", 0), "n_labeled"] == 30
    assert points.loc[("good", 1), "n_labeled"] == 40
    assert points.loc[("good", 1), "macro_f1"] == pytest.approx(0.96)
    assert not points.loc[("random", 0), "stopped"]
    assert "ceiling" not in points.index.get_level_values("strategy")
    stops = pl.stop_summary(planted(stopping=True)).set_index("strategy")
    assert stops.loc["good", "n_labeled"] == 35 and stops.loc["good", "seeds_stopped"] == 2
    assert stops.loc["good", "macro_f1"] == pytest.approx((0.95 + 0.96) / 2)
    assert stops.loc["good", "estimated_f1"] == pytest.approx((0.95 + 0.96) / 2 - 0.05)
    assert stops.loc["random", "seeds_stopped"] == 0


def test_stop_read_back_from_csv_as_text(tmp_path):
    results = planted(stopping=True)
    results["stop"] = results["stop"].map({True: "True", False: "False"})
    stops = pl.stop_summary(results).set_index("strategy")
    assert stops.loc["good", "n_labeled"] == 35


def test_headline_and_summary_say_where_the_rule_stops():
    results = planted(stopping=True)
    text = " ".join(headline_text(headline_table(results), 0.95, pl.stop_summary(results)))
    assert (
        "With good, the stopping rule would have stopped at 35 labels (macro-F1 there 0.955, "
        "estimate 0.905; 2 of 2 seeds stopped)." in text
    )
    table = summary_table(results).set_index("strategy")
    assert table.loc["good", "n_labeled_at_stop"] == 35
    assert table.loc["good", "macro_f1_at_stop"] == pytest.approx(0.955)
    assert table.loc["random", "seeds_stopped"] == 0


def test_headline_names_random_when_no_strategy_is_better():
    results = planted(stopping=True)
    results = results[results["strategy"] != "good"]
    same = results[results["strategy"] == "random"].assign(strategy="same")
    results = pd.concat([results, same], ignore_index=True)
    text = " ".join(headline_text(headline_table(results), 0.95, pl.stop_summary(results)))
    assert "no strategy is clearly better than random" in text
    assert "With random, the stopping rule did not say stop in any seed." in text


def test_report_with_and_without_the_stopping_columns(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, results in ((old, planted()), (new, planted(stopping=True))):
        folder.mkdir()
        results.to_csv(folder / "results.csv", index=False)
    old_text = write_report(old, dpi=30).read_text("utf-8")
    assert "Figure 9" not in old_text and "stopping rule" not in old_text
    assert not list((old / "figures").glob("fig9_*"))
    assert "Figure 8 needs split.csv" in old_text  # no split: the types cannot be ranked
    new_text = write_report(new, dpi=30).read_text("utf-8")
    assert "Figure 9. Stopping rule: estimate vs truth" in new_text
    assert (new / "figures" / "fig9_stopping_rule_m.png").is_file()
    assert "the stopping rule would have stopped at 35 labels" in new_text
    assert "35 (0.955, 0.905; 2/2 seeds)" in new_text  # the summary's stopping column
    assert "<th>labels to 90% of the target</th>" in new_text
    summary = pd.read_csv(new / "summary.csv")
    assert {"labels_to_90", "labels_to_95", "n_labeled_at_stop"} <= set(summary.columns)
