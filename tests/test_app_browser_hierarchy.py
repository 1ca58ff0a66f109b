"""Hierarchical labels in real headless Chromium: the vocabulary drawn as a tree, one cell
answered at the parent level by a click ("T cell", unsure of the subtype), another at the
finest level by its key, then exported from the page; the h5ad's label and level columns
checked.

Saves ``docs/figures/app_hierarchy.png``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import make_counts
from serving import DEADLINE, Server, free_port
from test_app_browser import CHROMIUM, FLAGS
from test_app_browser_map import export

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
TREE = {"T cell": {"CD4 T": {}, "CD8 T": {}}, "B cell": {"naive B": {}, "memory B": {}}}


def test_answer_at_the_parent_level_and_export(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    adata = make_counts(n_cells=200, n_genes=300, n_types=4)
    data, tree = tmp_path / "cells.h5ad", tmp_path / "tree.json"
    adata.write_h5ad(data)
    tree.write_text(json.dumps(TREE))
    args = ("--batch-size", "4", "--hierarchy", str(tree))
    with (
        Server(data, tmp_path / "tree.scactive", free_port(), *args) as server,
        playwright.sync_playwright() as p,
    ):
        server.state_with_batch()
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(DEADLINE * 1000)
        page.goto(server.origin + "/")
        page.wait_for_selector("#batch li .evidence")
        # the tree: each parent's subtypes drawn beneath it, keys in the order shown
        assert page.locator("#vocabulary .vocab-node").count() == 2  # T cell, B cell
        t_cell = page.locator("#vocabulary .vocab-node").nth(0)
        assert t_cell.locator(":scope > button").inner_text() == "1 T cell"
        subtypes = t_cell.locator(".vocab-children button").all_inner_texts()
        assert subtypes == ["2 CD4 T", "3 CD8 T"]
        first, second = page.eval_on_selector_all(
            "#batch li", "items => items.slice(0, 2).map((li) => li.dataset.cell)"
        )
        page.click("#batch li >> nth=0")
        page.click("#vocabulary button[data-label='T cell']")  # unsure of the subtype
        page.wait_for_function(
            "cell => document.querySelector(`#batch li[data-cell='${cell}'] .answer`)"
            "?.textContent === 'T cell'",
            arg=first,
        )
        page.click("#batch li >> nth=1")
        page.keyboard.press("2")  # the second type shown: CD4 T, under T cell
        page.wait_for_function(
            "cell => document.querySelector(`#batch li[data-cell='${cell}'] .answer`)"
            "?.textContent === 'CD4 T'",
            arg=second,
        )
        page.screenshot(path=FIGURES / "app_hierarchy.png")
        out = export(page)
        browser.close()
    obs = out.obs
    assert obs.loc[first, "scactive_label"] == "T cell"
    assert (obs.loc[first, "scactive_level1"], obs.loc[first, "scactive_level2"]) == (
        "T cell",
        "T cell",  # known only at the parent level: the parent at level 2 too
    )
    assert obs.loc[second, "scactive_label"] == "CD4 T"
    assert (obs.loc[second, "scactive_level1"], obs.loc[second, "scactive_level2"]) == (
        "T cell",
        "CD4 T",
    )
    assert obs["scactive_label"].notna().sum() == 2
    assert obs.loc[[first, second], "scactive_level1_confidence"].isna().all()  # no prediction
    record = out.uns["scactive"]["hierarchy"]
    assert dict(zip(record["type"], record["parent"], strict=True))["CD4 T"] == "T cell"
    assert shutil.which("chromium")
