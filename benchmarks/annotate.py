"""Annotation app at 30,000 cells: how long from the last answer of a batch to the next batch.

A simulated person answers each batch (true labels of generated PBMCs) through the web API
(in-process ASGI client, so the numbers are the server's); after the last answer the server
retrains in the background and picks the next batch; the clock stops when ``/api/state``
shows it and the evidence of each of its cells (``/api/cells/...``) has been fetched, as the
page does. While it trains, ``/api/state`` is polled and its slowest reply is recorded (does the
page stay responsive?).

    .venv/bin/python benchmarks/annotate.py                  # 30,000 cells, 6 batches of 20
    .venv/bin/python benchmarks/annotate.py --cells 5000 --batches 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from starlette.testclient import TestClient

from scactive import datasets
from scactive.app import open_session
from scactive.app._server import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=30_000)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--strategy", default="entropy")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/annotate.json"))
    args = parser.parse_args()

    adata = datasets.synthetic(args.cells, rng=0)
    truth = adata.obs["cell_type"].astype(str)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        session = open_session(adata, Path(tmp) / "bench.scactive")
        open_seconds = time.perf_counter() - start
        start = time.perf_counter()
        session.close()
        session = open_session(adata, Path(tmp) / "bench.scactive")
        reopen_seconds = time.perf_counter() - start
        app = create_app(session, batch_size=args.batch_size, strategy=args.strategy)
        app.state.trainer.wait()
        rows = []
        with TestClient(app) as client:
            for batch in range(args.batches):
                state = client.get("/api/state").json()
                cells = state["batch"]
                for cell in cells[:-1]:
                    client.post("/api/answer", json={"cell": cell, "label": truth[cell]})
                slowest_state = 0.0
                start = time.perf_counter()
                client.post("/api/answer", json={"cell": cells[-1], "label": truth[cells[-1]]})
                while True:
                    t0 = time.perf_counter()
                    state = client.get("/api/state").json()
                    slowest_state = max(slowest_state, time.perf_counter() - t0)
                    if not state["training"] and state["batch"] and state["batch"] != cells:
                        break
                    time.sleep(0.1)  # the page polls every 0.5 s
                ready = time.perf_counter() - start
                for cell in state["batch"]:  # the page then shows each cell's evidence
                    client.get(f"/api/cells/{cell}")
                seconds = time.perf_counter() - start
                rows.append(
                    {
                        "batch": batch + 1,
                        "labeled": state["n_labeled"],
                        "batch_ready_seconds": round(ready, 3),
                        "next_batch_seconds": round(seconds, 3),
                        "slowest_state_reply_seconds": round(slowest_state, 3),
                    }
                )
                print(rows[-1], flush=True)
        session.close()
    result = {
        "cells": args.cells,
        "batch_size": args.batch_size,
        "strategy": args.strategy,
        "open_seconds_first": round(open_seconds, 1),
        "open_seconds_again": round(reopen_seconds, 1),
        "batches": rows,
        "median_next_batch_seconds": float(np.median([r["next_batch_seconds"] for r in rows])),
        "max_next_batch_seconds": max(r["next_batch_seconds"] for r in rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "batches"}, indent=2))


if __name__ == "__main__":
    main()
