"""HTML fragments of the report; every text taken from data goes through :func:`esc`."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources import files
from string import Template

import pandas as pd

from scactive.metrics import level_columns
from scactive.pl._style import as_bool
from scactive.report._runs import FINAL_METRICS, level_name, levels_with


def esc(value: object) -> str:
    """HTML-escape ``str(value)``, quotes included; NaN and None give an empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def page(*, title: str, subtitle: str, body: str, version: str) -> str:
    """Fill the packaged template; ``title`` and ``subtitle`` are escaped here."""
    template = Template(files("scactive.report").joinpath("template.html").read_text("utf-8"))
    return template.substitute(
        title=esc(title), subtitle=esc(subtitle), body=body, version=esc(version)
    )


def table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: set[int] = frozenset()
) -> str:  # noqa: E501
    """An HTML table; cells are escaped, columns in ``numeric`` are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(v)}</td>' if i in numeric else f"<td>{esc(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def figure(png: bytes, *, alt: str, caption: str) -> str:
    """A ``<figure>`` with the PNG embedded as a base64 data URI; ``caption`` is escaped."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def _value_text(value: object) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_value_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_value_text(v) for v in value)
    if value is None:
        return "none"
    return str(value)


def parameters(config: Mapping[str, object]) -> str:
    """Run parameters, package versions and input checksum from ``config.json``."""
    if not config:
        return '<p class="note">No <code>config.json</code> found; parameters unknown.</p>'
    skip = {"versions", "skipped", "input_sha256"}
    rows = [(k, _value_text(v)) for k, v in config.items() if k not in skip]
    parts = [table(["parameter", "value"], rows)]
    checksum = config.get("input_sha256")
    if checksum:
        if isinstance(checksum, Mapping):
            items = "".join(
                f"<li>{esc(k)}: <code>{esc(v)}</code></li>" for k, v in checksum.items()
            )
            parts.append(f'<p>Input SHA-256:</p><ul class="compact">{items}</ul>')
        else:
            parts.append(f"<p>Input SHA-256: <code>{esc(checksum)}</code></p>")
    versions = config.get("versions")
    if isinstance(versions, Mapping) and versions:
        parts.append("<h3>Package versions</h3>")
        parts.append(table(["package", "version"], sorted(versions.items(), key=str)))
    return "\n".join(parts)


def early_stops(results: pd.DataFrame, config: Mapping[str, object]) -> str:
    """Notes on runs that stopped because the pool ran out and on skipped grid cells."""
    parts = []
    if "pool_exhausted" in results.columns:
        stopped = results[as_bool(results["pool_exhausted"])]
        if len(stopped):
            rows = [
                (r.model, r.strategy, _int_text(r.batch_size), _int_text(r.seed),
                 _int_text(r.round), _int_text(r.n_labeled))
                for r in stopped.itertuples(index=False)
            ]  # fmt: skip
            parts.append(
                f'<div class="note"><p>{len(rows)} run(s) stopped early because the pool ran '
                "out of unlabeled cells:</p>"
                + table(
                    ["model", "strategy", "batch size", "seed", "last round", "labeled"],
                    rows,
                    numeric={2, 3, 4, 5},
                )
                + "</div>"
            )
        else:
            parts.append('<p class="ok">No run stopped early: the pool never ran out.</p>')
    skipped = config.get("skipped") or []
    if isinstance(skipped, str):
        skipped = [skipped]
    if skipped:
        items = "".join(f"<li>{esc(s)}</li>" for s in skipped)
        parts.append(
            f'<div class="note"><p>Skipped grid cells ({len(skipped)}):</p>'
            f'<ul class="compact">{items}</ul></div>'
        )
    else:
        parts.append("<p>No grid cell was skipped.</p>")
    return "\n".join(parts)


def _int_text(value: object) -> str:
    if value is None or pd.isna(value):
        return ""
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return str(value)


def cell_counts(split: pd.DataFrame | None, seed: int) -> str:
    """Cells per role and left-out cells per reason, for one seed of ``split.csv``."""
    if split is None:
        return '<p class="note">No <code>split.csv</code> found; cell counts unknown.</p>'
    cells = split[split["seed"] == seed]
    roles = cells["role"].astype(str).value_counts()
    parts = [
        f"<p>Cells per role (seed {seed}):</p>",
        table(["role", "cells"], roles.items(), numeric={1}),
    ]
    if "label" in cells.columns and len(cells):
        by_label = pd.crosstab(cells["label"].astype(str), cells["role"].astype(str))
        order = [r for r in ("initial", "pool", "validation", "left_out") if r in by_label]
        order += sorted(set(by_label.columns) - set(order))
        by_label = by_label[order]
        by_label = by_label.assign(total=by_label.sum(axis=1)).sort_values("total", ascending=False)
        parts.append(f"<p>Cells per cell type and role (seed {seed}):</p>")
        parts.append(
            table(
                ["cell type", *by_label.columns],
                (
                    [lab, *vals]
                    for lab, vals in zip(by_label.index, by_label.to_numpy().tolist(), strict=True)
                ),
                numeric=set(range(1, len(by_label.columns) + 1)),
            )
        )
    left = cells[cells["role"] == "left_out"]
    if len(left):
        reasons = left["reason"].fillna("").astype(str).replace("", "(no reason given)")
        parts.append(f"<p>Left-out cells by reason (seed {seed}):</p>")
        parts.append(table(["reason", "cells"], reasons.value_counts().items(), numeric={1}))
    else:
        parts.append(f"<p>No cell was left out (seed {seed}).</p>")
    return "\n".join(parts)


def _mean_std(mean: object, std: object, digits: int = 3) -> str:
    if mean is None or pd.isna(mean):
        return ""
    if std is None or pd.isna(std):
        return f"{float(mean):.{digits}f}"
    return f"{float(mean):.{digits}f} ± {float(std):.{digits}f}"


def summary(table_df: pd.DataFrame, target: float) -> str:
    """The summary table (from :func:`~scactive.report.summary_table`) as HTML."""
    levels = [level_name(level) for level in levels_with(target)]
    header = [
        "model", "strategy", "batch size", "seeds", "labeled (final)",
        *(f"{m.replace('_', ' ')} (final)" for m in FINAL_METRICS),
        "macro F1 curve area", *(f"labels to {pct}% of the target" for pct in levels),
    ]  # fmt: skip
    stopping = "seeds_stopped" in table_df.columns
    if stopping:
        header.append("stopping rule: labels (macro F1, estimate there)")
    rows = []
    for r in table_df.to_dict("records"):
        rows.append(
            [
                r["model"],
                r["strategy"],
                _int_text(r["batch_size"]),
                _int_text(r["n_seeds"]),
                _int_text(round(r["final_n_labeled"])) if pd.notna(r["final_n_labeled"]) else "",
                *(_mean_std(r[f"{m}_mean"], r[f"{m}_std"]) for m in FINAL_METRICS),
                _mean_std(r["auc_macro_f1_mean"], r["auc_macro_f1_std"]),
                *(r[f"labels_to_{pct}_text"] for pct in levels),
                *([_stop_cell(r)] if stopping else []),
            ]
        )
    return table(header, rows, numeric=set(range(2, len(header))))


def level_summary(table_df: pd.DataFrame) -> str:
    """The per-level table of a run with a cell-type hierarchy (the summary's
    ``macro_f1_level<k>`` columns, mean ± sd over seeds at the last round); empty without."""
    means = [c.removesuffix("_mean") for c in table_df.columns if c.endswith("_mean")]
    levels = level_columns(means)
    if not levels:
        return ""
    header = [
        "model", "strategy", "batch size", "seeds", "labeled (final)",
        *(f"level {i}" for i in range(1, len(levels) + 1)), "macro F1 (argmax)",
    ]  # fmt: skip
    rows = [
        [
            r["model"],
            r["strategy"],
            _int_text(r["batch_size"]),
            _int_text(r["n_seeds"]),
            _int_text(round(r["final_n_labeled"])) if pd.notna(r["final_n_labeled"]) else "",
            *(_mean_std(r[f"{m}_mean"], r[f"{m}_std"]) for m in (*levels, "macro_f1")),
        ]
        for r in table_df.to_dict("records")
    ]
    return (
        "<h2>Macro F1 per level of the cell-type hierarchy</h2>"
        "<p>Mean ± standard deviation over seeds at the last round. Level 1 is the top of the "
        "hierarchy; at each level the true labels are rolled up to their ancestor there and "
        "the learner's calls are decoded top-down (the best top-level type by the probability "
        "under it, then its best subtype...), so the levels never contradict each other. The "
        "last column is the summary's macro F1: the plain argmax over the finest labels, which "
        "may differ from the finest level's decoded call.</p>"
        + table(header, rows, numeric=set(range(2, len(header))))
    )


def _stop_cell(row: Mapping[str, object]) -> str:
    """``"47 (0.612, 0.655; 2/3 seeds)"``, ``"no stop"``, or empty for the ceiling."""
    if pd.isna(row["seeds_stopped"]):
        return ""
    if not row["seeds_stopped"]:
        return "no stop"
    truth, estimate = (_mean_std(row[f"{m}_at_stop"], None) for m in ("macro_f1", "estimated_f1"))
    seeds = f"{int(row['seeds_stopped'])}/{row['n_seeds']} seeds"
    return f"{row['n_labeled_at_stop']:.0f} ({truth}, {estimate or 'no estimate'}; {seeds})"
