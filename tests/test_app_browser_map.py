"""The map as a workbench in real headless Chromium: colour by a searched gene, lasso a group
and label it in one action then undo it, label a whole cluster from its legend; each checked
in the exported h5ad.

Saves ``docs/figures/app_gene_colour.png`` and ``docs/figures/app_lasso.png``.
"""

from __future__ import annotations

import re
import shutil
import urllib.request
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from conftest import make_counts
from serving import DEADLINE, Server, free_port
from test_app_browser import CHROMIUM, FLAGS
from test_app_workbench import decode_colouring

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


def export(page) -> ad.AnnData:
    """Press Export and read the h5ad it wrote (its path is in the status line)."""
    page.evaluate("document.getElementById('status').textContent = ''")
    page.click("#export")
    page.wait_for_function("document.querySelector('#status').textContent.includes('Exported')")
    text = page.inner_text("#status")
    return ad.read_h5ad(re.search(r"(\S+\.h5ad)", text).group(1))


def canvas_points(page, positions):
    """Page coordinates of the cells at map ``positions``."""
    return page.evaluate(
        """positions => {
            const canvas = document.getElementById("map");
            const rect = canvas.getBoundingClientRect();
            return positions.map((i) => [
                rect.left + cells.layout.cx[i] * rect.width / canvas.width,
                rect.top + cells.layout.cy[i] * rect.height / canvas.height]);
        }""",
        positions,
    )


def test_colour_by_a_gene_lasso_and_label_a_cluster_in_one_action(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    adata = make_counts(n_cells=300, n_genes=300, n_types=3)
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    truth = adata.obs["cell_type"].astype(str).to_numpy()
    with (
        Server(data, tmp_path / "map.scactive", free_port(), "--batch-size", "4") as server,
        playwright.sync_playwright() as p,
    ):
        server.state_with_batch()
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(DEADLINE * 1000)
        page.goto(server.origin + "/")
        page.wait_for_function("cells !== null && cells.layout !== null")
        # colour by a gene found by its first letters: G2 is a marker of type0
        page.fill("#gene", "G2")
        page.wait_for_selector("#gene-options option[value='G2']", state="attached")
        page.press("#gene", "Enter")
        page.wait_for_function(
            "document.querySelector('#legend .legend-title')?.textContent === 'G2'"
        )
        assert page.locator("#legend .colour-bar").count() == 1
        assert page.input_value("#colour") == "gene"
        page.screenshot(path=FIGURES / "app_gene_colour.png")

        # lasso the cells of type0: a polygon around them, drawn with the mouse
        page.click("#tools button[data-tool='lasso']")
        points = np.array(canvas_points(page, np.flatnonzero(truth == "type0").tolist()))
        centre = points.mean(axis=0)
        radius = np.percentile(np.linalg.norm(points - centre, axis=1), 60)
        angles = np.linspace(0, 2 * np.pi, 24)
        ring = centre + radius * np.column_stack([np.cos(angles), np.sin(angles)])
        page.mouse.move(*ring[0])
        page.mouse.down()
        for x, y in ring[1:]:
            page.mouse.move(x, y, steps=2)
        page.mouse.up()
        page.wait_for_selector("#selection .selection-count")
        chosen = page.evaluate("Array.from(selection.positions)")
        assert len(chosen) > 10 and (truth[chosen] == "type0").mean() > 0.9
        page.screenshot(path=FIGURES / "app_lasso.png")
        page.select_option("#selection-label", value="")  # a new type, typed in the prompt
        page.once("dialog", lambda dialog: dialog.accept("lassoed"))
        page.click("#label-selection")
        page.wait_for_function(
            "document.querySelector('#status').textContent.includes('in one action')"
        )
        out = export(page)
        labeled = out.obs["scactive_label"].astype(object)
        cells = adata.obs_names[chosen]
        assert (labeled[cells] == "lassoed").all() and labeled.notna().sum() == len(chosen)
        assert set(out.obs.loc[cells, "scactive_answer_kind"]) == {"bulk"}
        assert set(out.obs.loc[cells, "scactive_provenance"]) == {"lasso"}
        page.keyboard.press("z")  # undo: the whole action at once
        page.wait_for_function(
            "n => document.querySelector('#progress').textContent.startsWith('0 of ' + n)",
            arg=adata.n_obs,
        )
        assert export(page).obs["scactive_label"].isna().all()

        # a whole cluster from its legend
        page.click("#tools button[data-tool='pick']")
        page.select_option("#colour", value="clusters")
        page.wait_for_selector("#legend .select-cluster[data-cluster='0']")
        page.click("#legend .select-cluster[data-cluster='0']")
        page.wait_for_selector("#selection .selection-count")
        page.select_option("#selection-label", value="")
        page.once("dialog", lambda dialog: dialog.accept("clustered"))
        page.click("#label-selection")
        page.wait_for_function(
            "document.querySelector('#status').textContent.includes('in one action')"
        )
        request = urllib.request.Request(server.origin + "/api/colour/clusters")
        with urllib.request.urlopen(request, timeout=DEADLINE) as reply:
            _, codes = decode_colouring(reply.read())
        members = adata.obs_names[codes == 1]  # code 1: cluster 0
        out = export(page)
        assert (out.obs.loc[members, "scactive_label"] == "clustered").all()
        assert out.obs["scactive_label"].notna().sum() == len(members)
        assert set(out.obs.loc[members, "scactive_answer_kind"]) == {"bulk"}
        assert set(out.obs.loc[members, "scactive_provenance"]) == {"cluster:0"}
        # the map and the page stay where they were: no jump
        assert page.evaluate("window.scrollY") == 0
        browser.close()
    assert shutil.which("chromium")
