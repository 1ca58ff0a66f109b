"""The map's workbench on a 30,000-cell generated session: colouring by a gene (the server's
reply, ``GET /api/colour/gene/<gene>``), labeling a selection of 5,000 cells in one action
(``POST /api/label-selection``, committed before it replies) and the selected cell's dot plot
(``GET /api/dotplot?cell=<position>``, once a model exists: every cell in a row), each the
median of several runs.

    .venv/bin/python benchmarks/app_map.py [--cells 30000] [--selected 5000] [--runs 7]

Targets: a gene's colouring within 0.5 s, a 5,000-cell label within 1 s, a dot plot within
0.5 s. The dot plot is timed for its first request (on a cell not asked before) and for
repeated requests of other cells. Results go to ``benchmarks/results/app_map.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from starlette.testclient import TestClient

from scactive import datasets
from scactive.app import open_session
from scactive.app._server import create_app

LOCAL = "http://127.0.0.1:8765"
RESULTS = Path(__file__).parent / "results" / "app_map.json"


def timed(call) -> float:
    start = time.perf_counter()
    reply = call()
    seconds = time.perf_counter() - start
    assert reply.status_code == 200, reply.text
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=30_000)
    parser.add_argument("--selected", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    adata = datasets.synthetic(args.cells, rng=0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        session = open_session(adata, Path(tmp) / "bench.scactive")
        opened = time.perf_counter() - t0
        app = create_app(session, batch_size=20)
        with TestClient(app, base_url=LOCAL, headers={"Origin": LOCAL}) as client:
            app.state.trainer.wait()
            cluster_start = time.perf_counter()
            session.map.clusters()  # computed in the background at start: ready before timing
            clusters_wait = time.perf_counter() - cluster_start
            genes = [str(g) for g in rng.choice(adata.var_names, args.runs, replace=False)]
            gene_seconds = [timed(lambda g=g: client.get(f"/api/colour/gene/{g}")) for g in genes]
            label_seconds = []
            for run in range(args.runs):  # a new selection each time: every cell relabeled
                positions = rng.choice(args.cells, args.selected, replace=False).tolist()
                body = {"label": f"type {run % 3}", "positions": positions, "shape": "lasso"}
                label_seconds.append(
                    timed(lambda body=body: client.post("/api/label-selection", json=body))
                )
                app.state.trainer.wait()  # a retraining it started: not beside the next run
            session.ensure_trained()  # a model for the last labels: every cell in a row
            assert session.trained_model() is not None
            cells = rng.choice(args.cells, args.runs + 1, replace=False).tolist()
            dotplot_first = timed(lambda: client.get(f"/api/dotplot?cell={cells[0]}"))
            dotplot_seconds = [
                timed(lambda p=p: client.get(f"/api/dotplot?cell={p}")) for p in cells[1:]
            ]
            same_cell = [
                timed(lambda: client.get(f"/api/dotplot?cell={cells[0]}")) for _ in cells[1:]
            ]
            plot = client.get(f"/api/dotplot?cell={cells[0]}").json()
        session.close()
    result = {
        "cells": args.cells,
        "genes": adata.n_vars,
        "selected": args.selected,
        "runs": args.runs,
        "open_seconds": round(opened, 2),
        "gene_colouring_seconds": [round(s, 4) for s in gene_seconds],
        "gene_colouring_median": round(statistics.median(gene_seconds), 4),
        "bulk_label_seconds": [round(s, 4) for s in label_seconds],
        "bulk_label_median": round(statistics.median(label_seconds), 4),
        "clusters_wait_seconds": round(clusters_wait, 3),
        "dotplot_grouping": plot["grouping"],
        "dotplot_groups": len(plot["groups"]),
        "dotplot_genes": len(plot["genes"]),
        "dotplot_first_seconds": round(dotplot_first, 4),
        "dotplot_seconds": [round(s, 4) for s in dotplot_seconds],
        "dotplot_median": round(statistics.median(dotplot_seconds), 4),
        "dotplot_same_cell_seconds": [round(s, 4) for s in same_cell],
        "dotplot_same_cell_median": round(statistics.median(same_cell), 4),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
