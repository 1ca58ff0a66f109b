"""The report section of a method comparison (``scactive compare``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scactive import pl
from scactive._errors import InputError
from scactive.report import _html

COMPARISON = "comparison.csv"
_SUMMARY_METRICS = ("accuracy", "macro_f1", "weighted_f1", "frac_unassigned", "seconds")


def _read(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    path = folder / COMPARISON
    if not path.is_file():
        raise InputError(f"'{path}' not found; run `scactive compare --out {folder}` first.")
    read = dict(keep_default_na=False, na_values=[""])
    table = pd.read_csv(path, **read)
    per_class = pd.read_csv(folder / "comparison_per_class.csv", **read)
    predictions = pd.read_csv(folder / "predictions.csv", **read)
    settings_path = folder / "comparison.json"
    settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
    return table, per_class, predictions, settings


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds per method and training set."""
    metrics = [m for m in _SUMMARY_METRICS if m in table]
    grouped = table.groupby(["method", "kind", "training_set", "budget"], sort=False)
    out = grouped[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    out["n_seeds"] = grouped.size()
    return out.reset_index()


def best_methods(table: pd.DataFrame, training_set: str, budget: int, n: int = 2) -> list[str]:
    """The ``n`` methods with the highest mean macro-F1 on one training set."""
    rows = table[(table["training_set"] == training_set) & (table["budget"] == budget)]
    means = rows.groupby("method")["macro_f1"].mean().sort_values(ascending=False)
    return list(means.index[:n])


def section(folder: Path, writer) -> str:
    """HTML of the comparison in ``folder``: notes, table and three figures."""
    table, per_class, predictions, settings = _read(folder)
    parts = ["<h2>Comparison with established annotation methods</h2>"]
    mode = settings.get("mode", "simulation")
    if mode == "cross-dataset":
        parts.append(
            f"<p>Cross-dataset: every method was trained on all usable reference cells and "
            f"annotated the query, on the {_html.esc(settings.get('shared_genes'))} genes the "
            f"two datasets share. Calls outside the query's types (<em>unassigned</em>, an "
            f"intermediate type, or a reference type the label map does not cover) count as "
            f"wrong and are counted in <em>unassigned</em>.</p>"
        )
    else:
        parts.append(
            "<p>Every method was trained on the same cells (the whole pool, and the cells an "
            "active-learning run had labeled at each budget) and scored on the same held-out "
            "validation cells as the simulation. Calls outside the reference types "
            "(<em>unassigned</em>, or an intermediate type of CHETAH) count as wrong and are "
            "counted in <em>unassigned</em>.</p>"
        )
    versions = settings.get("tool_versions") or {}
    if versions:
        parts.append(
            "<p>Real tools: "
            + ", ".join(f"{_html.esc(k)} {_html.esc(v)}" for k, v in versions.items())
            + ".</p>"
        )
    for note in settings.get("notes") or []:
        parts.append(f'<p class="note">{_html.esc(note)}</p>')
    if table.get("macro_f1") is None or table["macro_f1"].dropna().empty:
        parts.append('<p class="note">The query has no labels: predictions only.</p>')
        return "\n".join(parts)
    stats = summary(table)
    rows = [
        (
            r.method,
            r.kind,
            r.training_set,
            int(r.budget),
            _html._mean_std(r.accuracy_mean, r.accuracy_std),
            _html._mean_std(r.macro_f1_mean, r.macro_f1_std),
            _html._mean_std(r.weighted_f1_mean, r.weighted_f1_std),
            f"{r.frac_unassigned_mean:.3f}",
            f"{r.seconds_mean:.1f}",
            int(r.n_seeds),
        )
        for r in stats.itertuples()
    ]
    parts.append(
        _html.table(
            ["method", "kind", "training set", "labeled cells", "accuracy", "macro F1",
             "weighted F1", "unassigned", "seconds", "seeds"],
            rows,
            numeric={3, 4, 5, 6, 7, 8, 9},
        )
    )  # fmt: skip
    palette = pl.method_palette(table["method"])
    parts.append(
        writer.html(
            "compare_macro_f1.png",
            lambda: pl.comparison_scores(table, palette=palette),
            "Comparison 1. Macro F1 of every method by training set: the cells a strategy had "
            "labeled at each budget, and the whole pool. Mean over seeds; bars span the seeds. "
            "Circles: active-learning learners; squares: baselines; diamonds: real tools.",
        )
    )
    parts.append(
        writer.html(
            "compare_per_class_f1.png",
            lambda: pl.per_class_heatmap(per_class, table),
            "Comparison 2. F1 per cell type and method (mean over seeds), on the smallest "
            "labeled set and on the whole training set; methods ordered by mean macro F1.",
        )
    )
    full = table.loc[table["budget"].idxmax()]
    best = best_methods(table, full["training_set"], int(full["budget"]))
    seed = int(table["seed"].min())
    parts.append(
        writer.html(
            "compare_confusion.png",
            lambda: pl.confusion_matrices(
                predictions, best, training_set=full["training_set"],
                budget=int(full["budget"]), seed=seed,
            ),
            f"Comparison 3. Confusion matrices of the two best methods on the whole training "
            f"set ({', '.join(best)}), seed {seed}: rows are true types, normalised to 1; "
            "columns after the grey line are calls outside the true types.",
        )
    )  # fmt: skip
    return "\n".join(parts)
