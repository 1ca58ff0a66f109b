"""A simulation idle and beside CPU-bound processes: how much do other jobs slow it down?

Runs the same ``scactive simulate`` command (a small grid on generated PBMCs: 2 strategies,
batch 27, 4 rounds, one seed, the default learner) as a whole process, first on an idle
machine and then beside ``--burners`` processes that each spin one core, once with each
``--threads`` setting. ``--threads 2`` is torch's default on a 2-core machine (one thread per
core), ``--threads 1`` what scactive holds by default. Writes a JSON and a Markdown table.

    .venv/bin/python benchmarks/load.py                      # 2 burners, threads 1 and 2, 3 runs
    .venv/bin/python benchmarks/load.py --cells 6000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BURN = "while True: pass"


def run_once(data: Path, threads: int, out: Path) -> float:
    command = [
        sys.executable, "-m", "scactive", "--threads", str(threads), "simulate", str(data),
        "--label-key", "cell_type", "--strategies", "random,entropy", "--batch-sizes", "27",
        "--rounds", "4", "--seeds", "1", "--no-ceiling", "--no-report", "--no-progress",
        "--out", str(out),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True, timeout=3600)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4000)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--threads", default="1,2", help="comma-separated --threads settings")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/load.json"))
    args = parser.parse_args()

    from scactive import datasets

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "cells.h5ad"
        datasets.synthetic(args.cells, rng=0).write_h5ad(data)
        for threads in (int(t) for t in args.threads.split(",")):
            for loaded in (False, True):
                burners = []
                if loaded:
                    burners = [
                        subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(args.burners)
                    ]
                try:
                    seconds = [
                        run_once(data, threads, Path(tmp) / f"run-{threads}-{loaded}-{i}")
                        for i in range(args.repeats)
                    ]
                finally:
                    for burner in burners:
                        burner.kill()
                        burner.wait()
                rows.append(
                    {
                        "threads": threads,
                        "burners": args.burners if loaded else 0,
                        "seconds": seconds,
                        "median": statistics.median(seconds),
                    }
                )
                print(rows[-1], flush=True)
    idle = {r["threads"]: r["median"] for r in rows if r["burners"] == 0}
    for r in rows:
        r["ratio_to_idle"] = r["median"] / idle[r["threads"]]
    result = {"cells": args.cells, "cores": os.cpu_count(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    lines = [
        f"{args.cells} generated cells, {os.cpu_count()} cores; seconds per whole run (median "
        f"of {args.repeats})",
        "",
        "| --threads | CPU-bound processes beside it | seconds | runs | ratio to idle |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        runs = ", ".join(f"{s:.1f}" for s in r["seconds"])
        lines.append(
            f"| {r['threads']} | {r['burners']} | {r['median']:.1f} | {runs} | "
            f"{r['ratio_to_idle']:.2f} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
