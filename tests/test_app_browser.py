"""The annotation page in real headless Chromium (Debian's, driven by Playwright).

Set ``SCACTIVE_SCREENSHOT=docs/figures/annotate.png`` to keep the screenshot for the docs.
"""

from __future__ import annotations

import os
import shutil

import anndata as ad
import pytest

from conftest import make_counts
from serving import DEADLINE, Server, free_port

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def test_label_a_batch_with_the_keyboard_undo_reload_and_export(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    adata = make_counts(n_cells=150, n_genes=300, n_types=3)
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    before = data.read_bytes()
    session = tmp_path / "web.scactive"
    args = ("--batch-size", "4", "--markers", str(_markers(tmp_path)))
    with Server(data, session, free_port(), *args) as server:
        first = server.state_with_batch()["batch"]
        truth = adata.obs["cell_type"].astype(str)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(DEADLINE * 1000)  # a loaded machine is slow, not broken
            page.goto(server.origin + "/")
            page.wait_for_selector("#batch li .evidence h4")
            vocabulary = server.call("/api/state")["vocabulary"]  # from the markers file
            for cell in first:  # keyboard: the selected cell moves on after each answer
                page.wait_for_selector(f'#batch li.selected[data-cell="{cell}"]')
                page.keyboard.press(str(vocabulary.index(truth[cell]) + 1))
                page.wait_for_selector(f'#batch li.answered[data-cell="{cell}"]')
            # retraining in the background, then the next batch on the page
            page.wait_for_function(
                "cells => !cells.includes(document.querySelector('#batch li').dataset.cell)",
                arg=first,
            )
            second = server.call("/api/state")["batch"]
            assert not set(second) & set(first)
            # relabel a cell of the first batch: pick it on the map, answer with another type
            cell = first[0]
            page.wait_for_function("cells !== null && toCanvas !== null")
            x, y = page.evaluate(
                """cell => {
                    const canvas = document.getElementById("map");
                    const rect = canvas.getBoundingClientRect();
                    const i = cells.index[cell];
                    return [rect.left + toCanvas.px(cells.x[i]) * rect.width / canvas.width,
                            rect.top + toCanvas.py(cells.y[i]) * rect.height / canvas.height];
                }""",
                cell,
            )
            page.mouse.click(x, y)
            page.wait_for_selector(f'#batch li.picked.selected[data-cell="{cell}"]')
            other = next(t for t in vocabulary if t != truth[cell])
            page.keyboard.press(str(vocabulary.index(other) + 1))
            page.wait_for_selector("#batch li.picked", state="detached")
            assert session_label(server, cell) == other
            page.keyboard.press("z")  # undo the relabel: the first answer is back
            page.wait_for_function("document.querySelector('#progress').textContent.length > 0")
            _wait_for(lambda: session_label(server, cell) == truth[cell])
            page.keyboard.press("u")  # unsure about the first cell of the new batch
            page.wait_for_selector(f'#batch li.answered[data-cell="{second[0]}"]')
            page.keyboard.press("z")  # undo it
            page.wait_for_selector(f'#batch li[data-cell="{second[0]}"]:not(.answered)')
            # a freshly opened tab has answered nothing: its undo takes back no one's answer
            answered = server.call("/api/state")["n_answered"]
            fresh = browser.new_page()
            fresh.set_default_timeout(DEADLINE * 1000)
            fresh.goto(server.origin + "/")
            fresh.wait_for_selector("#batch li .evidence h4")
            fresh.keyboard.press("z")
            fresh.wait_for_function(
                "document.querySelector('#status').textContent.includes('Nothing to undo')"
            )
            assert server.call("/api/state")["n_answered"] == answered
            assert session_label(server, cell) == truth[cell]
            fresh.close()
            page.reload()
            page.wait_for_selector("#batch li .evidence h4")
            assert "4 of 150 cells labeled" in page.inner_text("#progress")
            page.click("#export")
            page.wait_for_function(
                "document.querySelector('#status').textContent.includes('Exported')"
            )
            page.screenshot(path=tmp_path / "annotate.png", full_page=True)
            # a new type named like markup is shown as text, never run or parsed
            markup = '<img src="x" onerror="document.title=\'pwned\'">'
            page.once("dialog", lambda dialog: dialog.accept(markup))
            page.keyboard.press("n")
            page.wait_for_function(
                "text => document.querySelector('#vocabulary').textContent.includes(text)",
                arg=markup,
            )
            assert page.locator("#vocabulary img, #batch img, #stats img").count() == 0
            assert page.title() != "pwned"
            browser.close()
        if os.environ.get("SCACTIVE_SCREENSHOT"):
            shutil.copy(tmp_path / "annotate.png", os.environ["SCACTIVE_SCREENSHOT"])
        exported = tmp_path / "web.scactive.export" / "annotated.h5ad"
        result = ad.read_h5ad(exported)
        labeled = result.obs["scactive_label"].dropna()
        assert dict(labeled) == {cell: truth[cell] for cell in first}
        assert result.obs["scactive_predicted"].notna().all()
        assert (result.obs.loc[first, "scactive_round"] == 0).all()
        assert data.read_bytes() == before  # the input is never an export target


def session_label(server, cell):
    embedding = server.call("/api/embedding")
    return embedding["label"][embedding["cell"].index(cell)]


def _wait_for(condition, timeout=DEADLINE):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _markers(tmp_path):
    path = tmp_path / "markers.csv"
    path.write_text("type,gene\ntype0,G0\ntype0,G1\ntype1,G20\ntype2,G40\n")
    return path
