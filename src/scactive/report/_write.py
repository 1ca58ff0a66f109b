"""Assemble the figures and tables of a simulation into one self-contained HTML file."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure, SubFigure

from scactive import pl
from scactive._errors import InputError
from scactive._files import atomic_write, make_folder
from scactive._meta import package_version
from scactive.pl._style import CEILING, celltype_palette, strategy_palette
from scactive.report import _compare, _html
from scactive.report._headline import headline_html
from scactive.report._summary import summary_table

logger = logging.getLogger("scactive")

FIGURE_DIR = "figures"
REPORT_NAME = "report.html"
RARE_TYPES = 4
"""Cell types in the rare-type recall figure (the ones with the fewest pool cells)."""

_TITLES = {
    "2": "Learning curves",
    "3": "Metrics by batch size",
    "4": "Batch sizes at the same number of labels",
    "5": "Composition of the picked batches",
    "6": "Picked cells in PCA space",
    "7": "Cell types found",
    "8": "Recall of the rarest cell types",
    "9": "Stopping rule: estimate vs truth",
    "10": "Macro F1 per level of the cell-type hierarchy",
}
_NEEDS = {
    "5": "picks.csv",
    "6": "picks.csv and split.csv",
    "7": "results with n_types_found",
    "8": "split.csv (its pool cells rank the cell types)",
}


@dataclass
class _Inputs:
    results: pd.DataFrame
    picks: pd.DataFrame | None
    split: pd.DataFrame | None
    config: dict[str, object] = field(default_factory=dict)


def _read_inputs(outdir: Path) -> _Inputs:
    if not outdir.is_dir():
        raise InputError(
            f"outdir={str(outdir)!r} is not a directory; pass the --out directory of "
            "`scactive simulate`."
        )
    path = outdir / "results.csv"
    if not path.is_file():
        raise InputError(f"{str(path)!r} not found; run `scactive simulate --out {outdir}` first.")
    results = pd.read_csv(path)
    optional: dict[str, pd.DataFrame | None] = {}
    for name in ("picks", "split"):
        p = outdir / f"{name}.csv"
        optional[name] = pd.read_csv(p) if p.is_file() else None
        if optional[name] is None:
            logger.warning("%s not found; its figures are left out of the report.", p)
    config: dict[str, object] = {}
    cfg_path = outdir / "config.json"
    if cfg_path.is_file():
        try:
            config = json.loads(cfg_path.read_text("utf-8"))
        except json.JSONDecodeError as err:
            raise InputError(f"{str(cfg_path)!r} is not valid JSON: {err}.") from err
        if not isinstance(config, dict):
            raise InputError(f"{str(cfg_path)!r} must hold a JSON object; got {type(config)}.")
    return _Inputs(results, optional["picks"], optional["split"], config)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "model"


class _FigureWriter:
    """Draws, saves and embeds figures; a figure whose data is missing becomes a note."""

    def __init__(self, figdir: Path, dpi: int) -> None:
        self.figdir = figdir
        self.dpi = dpi
        self.files: list[Path] = []

    def html(self, name: str, draw: Callable[[], Figure | SubFigure], caption: str) -> str:
        try:
            fig = draw()
        except InputError as err:
            logger.warning("figure %s not drawn: %s", name, err)
            return f'<p class="note">Figure not drawn: {_html.esc(err)}</p>'
        root = fig.get_figure(root=True) if isinstance(fig, SubFigure) else fig
        buf = io.BytesIO()
        # constrained layout already fits legends and colour bars inside the figure; a tight
        # bounding box would draw every figure twice
        root.savefig(buf, format="png", dpi=self.dpi, facecolor="white")
        root.clear()  # free the artists now; the figure is not registered with pyplot
        png = buf.getvalue()
        path = self.figdir / name
        atomic_write(path, png)
        self.files.append(path)
        return _html.figure(png, alt=caption.split(".")[0], caption=caption)


def _figures(inputs: _Inputs, writer: _FigureWriter, seed: int) -> str:
    results, picks, split = inputs.results, inputs.picks, inputs.split
    strategies = results.loc[results["strategy"] != CEILING, "strategy"].dropna().unique()
    spal = strategy_palette(strategies)
    labels = pd.concat([t["label"] for t in (picks, split) if t is not None] or [pd.Series()])
    cpal = celltype_palette(labels.dropna().astype(str))
    models = [str(m) for m in pd.unique(results["model"].dropna())]
    parts = ["<h2>Figures</h2>", "<h3>Figure 1. Cell types</h3>"]
    if split is not None:
        parts.append(
            writer.html(
                "fig1_celltypes.png",
                lambda: pl.celltype_overview(split, seed=seed, palette=cpal),
                f"Figure 1. Cell-type frequencies (left) and PCA of the cells coloured by cell "
                f"type (right), seed {seed}, left-out cells excluded.",
            )
        )
    else:
        parts.append('<p class="note">No split.csv: figure 1 not drawn.</p>')
    specs: list[tuple[str, str, Callable[[str], Figure | SubFigure] | None, str]] = [
        ("2", "learning_curves", lambda m: pl.learning_curves(results, m, palette=spal),
         "Figure 2 ({m}). Accuracy, macro F1 and validation loss per strategy against labeled "
         "cells at the largest batch size; lines are the mean over seeds, shading the min-max "
         "range; the dashed line is the ceiling (model trained on the whole pool)."),
        ("3", "metric_grid", lambda m: pl.metric_grid(results, m, palette=spal),
         "Figure 3 ({m}). Metrics (rows) by batch size (columns) against labeled cells, one "
         "line per strategy (mean over seeds, min-max shaded); dashed: ceiling."),
        ("4", "curves_by_fraction",
         lambda m: pl.curves_by_fraction(results, m, x="n_labeled"),
         "Figure 4 ({m}). Metrics against labeled cells, one panel per strategy and one line "
         "per batch size (mean over seeds, min-max shaded): the batch sizes compared at the "
         "same labeling cost; dashed: ceiling."),
        ("5", "batch_composition",
         None if picks is None else lambda m: pl.batch_composition(
             picks, split, model=m, palette=cpal),
         "Figure 5 ({m}). Cell-type proportions of the picked batches per round, for each "
         "strategy (columns) and batch size (rows), all seeds pooled; the first bar is the "
         "whole pool for reference."),
        ("6", "picks_pca",
         None if picks is None or split is None else lambda m: pl.picks_pca(
             picks, split, model=m, seed=seed, palette=cpal),
         "Figure 6 ({m}). Picked cells on the pool PCA of seed " + str(seed) + ", coloured by "
         "round, per strategy (columns) and batch size (rows); grey: pool cells."),
        ("7", "types_found",
         None if "n_types_found" not in results else lambda m: pl.labels_curve(
             results, metric="n_types_found", model=m, palette=spal, ceiling=False),
         "Figure 7 ({m}). Cell types with at least one label against labeled cells, at the "
         "largest batch size (mean over seeds, min-max shaded): a strategy that finds every "
         "type early, the rare ones included, is worth more than its macro-F1 at the end shows."),
        ("8", "rare_type_recall",
         None if split is None else lambda m: pl.rare_type_recall(
             results, split, m, n_types=RARE_TYPES, palette=spal),
         f"Figure 8 ({{m}}). Recall of the {RARE_TYPES} cell types with the fewest pool cells "
         "(split.csv's pool and initial cells, mean over seeds) against labeled cells at the "
         "largest batch size, one line per strategy (mean over seeds, min-max shaded; a seed "
         "whose validation cells hold none of a type has no recall for it); dashed: ceiling."),
    ]  # fmt: skip
    if pl.has_stopping(results):  # results written before the stopping rule have no figure 9
        specs.append(
            ("9", "stopping_rule", lambda m: pl.stopping_curves(results, m, palette=spal),
             "Figure 9 ({m}). Stopping rule: estimate vs truth, per strategy at the largest "
             "batch size: the validation macro F1 (solid; the rule never sees it) and the "
             "estimate made without held-out labels (dashed) against labeled cells, mean over "
             "seeds, min-max shaded; the dotted line is where the rule first said stop, "
             "averaged over the seeds that stopped.")
        )  # fmt: skip
    if pl.has_levels(results):  # only runs given a hierarchy record macro-F1 per level
        specs.append(
            ("10", "level_curves", lambda m: pl.level_curves(results, m, palette=spal),
             "Figure 10 ({m}). Macro F1 at each level of the cell-type hierarchy (solid: level "
             "1, the top; dashed, dotted: finer levels) against labeled cells at the largest "
             "batch size, per strategy (mean over seeds, min-max shaded). The truth is rolled "
             "up to each level and the learner's calls are decoded top-down.")
        )  # fmt: skip
    for num, stem, draw, caption in specs:
        parts.append(f"<h3>Figure {num}. {_TITLES[num]}</h3>")
        if draw is None:
            parts.append(f'<p class="note">Figure {num} needs {_NEEDS[num]}.</p>')
            continue
        for m in models:
            parts.append(
                writer.html(
                    f"fig{num}_{stem}_{_safe_name(m)}.png",
                    lambda draw=draw, m=m: draw(m),
                    caption.format(m=m),
                )
            )
    return "\n".join(parts)


def write_report(
    outdir: str | os.PathLike[str],
    *,
    target: float = 0.95,
    dpi: int = 110,
    dest: str | os.PathLike[str] | None = None,
    comparison: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``outdir/report.html`` and ``outdir/figures/*.png`` from a simulation's output.

    Reads ``results.csv`` (required), ``picks.csv``, ``split.csv`` and ``config.json``
    (optional; what needs a missing file is replaced by a note). The HTML file is
    self-contained: figures are embedded as base64 PNGs and the CSS is inline, so it opens
    offline. Figures 2-10 are drawn once per model; figure 9 (the stopping rule) only when
    ``results.csv`` has ``estimated_f1`` and ``stop``, and figure 10 and the per-level table
    (macro-F1 at each level of a cell-type hierarchy) only when it has ``macro_f1_level1``...
    The summary table is also saved as ``outdir/summary.csv``. Every file is written to a
    temporary name and then renamed, so an interrupted run never leaves a half-written report.

    Parameters
    ----------
    outdir
        The ``--out`` directory of ``scactive simulate``.
    target
        Fraction of the ceiling's macro-F1 (averaged over seeds) for "labels needed" and the
        headline's start warning; the headline and the summary always give 90% and 95% too.
    dpi
        Resolution of the PNG figures.
    dest
        Folder to write the report, summary and figures to (default ``outdir``).
    comparison
        Folder of a ``scactive compare`` run whose results get a section in the report
        (default: ``outdir`` when it holds ``comparison.csv``).

    Returns
    -------
    pathlib.Path
        Path of the written ``report.html``.

    Raises
    ------
    scactive._errors.InputError
        If ``outdir`` or its ``results.csv`` is missing or a table lacks required columns.
    """
    outdir = Path(outdir)
    dest = Path(dest) if dest is not None else outdir
    inputs = _read_inputs(outdir)
    config = inputs.config
    table = summary_table(inputs.results, target=target)
    figdir = make_folder(dest / FIGURE_DIR)
    seed = 0
    if inputs.split is not None:
        seeds = sorted(int(s) for s in pd.unique(inputs.split["seed"].dropna()))
        seed = 0 if 0 in seeds or not seeds else seeds[0]

    writer = _FigureWriter(figdir, dpi)
    data_name = config.get("data") or outdir.name
    body = [
        headline_html(inputs.results, target),
        "<h2>Run parameters</h2>",
        _html.parameters(config),
        "<h2>Early stops and skipped runs</h2>",
        _html.early_stops(inputs.results, config),
        "<h2>Cells</h2>",
        _html.cell_counts(inputs.split, seed),
        _figures(inputs, writer, seed),
        "<h2>Summary</h2>",
        "<p>Final metrics are the mean ± standard deviation over seeds at the last round. "
        "The curve area is the mean macro F1 over the learning curve (trapezoid over the "
        "number of labeled cells, divided by its range). Labels needed: the first number of "
        "labeled cells at which macro F1 reached the given percentage of the target (the "
        "ceiling's macro F1 of the same model averaged over seeds, so it does not move "
        "between seeds), averaged over the seeds that reached it.</p>",
        _html.summary(table, target),
        _html.level_summary(table),
    ]
    if comparison is None and (outdir / _compare.COMPARISON).is_file():
        comparison = outdir
    if comparison is not None:
        body.append(_compare.section(Path(comparison), writer))
    text = _html.page(
        title=f"scactive report: {data_name}",
        subtitle=f"{outdir.resolve()} · written {datetime.now().isoformat(timespec='seconds')}",
        body="\n".join(body),
        version=package_version(),
    )
    atomic_write(dest / "summary.csv", table.to_csv(index=False).encode("utf-8"))
    report = dest / REPORT_NAME
    atomic_write(report, text.encode("utf-8"))
    logger.info("wrote %s and %d figures in %s", report, len(writer.files), figdir)
    return report


def write_comparison(
    out: str | os.PathLike[str],
    *,
    simulation: str | os.PathLike[str] | None = None,
    dpi: int = 110,
) -> Path:
    """Write ``out/report.html`` for a comparison.

    With the simulation it was drawn from, the report is that simulation's report with a
    comparison section (the simulation folder itself is not written to unless it is
    ``out``); without one (cross-dataset), the report holds the comparison alone.
    """
    out = Path(out)
    if simulation is not None:
        return write_report(simulation, dest=out, comparison=out, dpi=dpi)
    figdir = make_folder(out / FIGURE_DIR)
    writer = _FigureWriter(figdir, dpi)
    text = _html.page(
        title=f"scactive comparison: {out.name}",
        subtitle=f"{out.resolve()} · written {datetime.now().isoformat(timespec='seconds')}",
        body=_compare.section(out, writer),
        version=package_version(),
    )
    report = out / REPORT_NAME
    atomic_write(report, text.encode("utf-8"))
    return report
