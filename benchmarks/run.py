"""Speed and memory of scactive at the paper's scale (``make bench``).

Measures, on synthetic counts from :func:`scactive.datasets.paper_scale` (31,021 cells x 33,694
genes, 9 types; or ``--cells`` / ``--genes``), with the default learner ``mlp2``, 20% of the pool
labeled at the start and 20% of the cells held out for validation:

1. data preparation: generation, :func:`scactive.bench.prepare`, fitting the
   :class:`~scactive.pp.FeatureSpace` and building the pool / validation features and the pool
   PCA (time, peak RSS and tracemalloc peak of each step);
2. seconds per round (train and query, from the ``train_seconds`` / ``query_seconds`` columns
   the loop records) of every strategy at batch size 81, retraining from scratch and, for
   comparison, continuing training (``retrain="continue"``);
3. the paper's grid (5 strategies x batch sizes 9, 27, 81 x 10 rounds, one seed) through
   :func:`scactive.simulate`, in a fresh child process so its peak RSS is its own: wall time,
   peak RSS and where the time went.

Results go to ``benchmarks/results/<name>.json`` (and a markdown summary beside it); the tables
are printed. ``--quick`` checks the script in about a minute on a small dataset.

Usage::

    .venv/bin/python benchmarks/run.py            # paper scale (about 11 minutes on 2 idle cores)
    .venv/bin/python benchmarks/run.py --quick    # 3,000 cells x 5,000 genes, 1 round
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"

PAPER_CELLS, PAPER_GENES = 31_021, 33_694
ROUND_STRATEGIES = ("random", "entropy", "margin", "qbc", "bald", "diversity", "wkmc")
GRID_STRATEGIES = ("random", "entropy", "qbc", "diversity", "wkmc")
GRID_BATCH_SIZES = (9, 27, 81)
MODEL = "mlp2"
#: The project's aim: seconds per round (train + query) on 2 idle cores.
TARGET_ROUND, TARGET_QBC = 1.0, 2.0

MB = 1024**2


# ------------------------------------------------------------------------------ measuring
def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def tree_rss_bytes() -> int:
    """RSS of this process plus all its descendants (e.g. the workers of ``n_jobs > 1``)."""
    total, todo, page = 0, [os.getpid()], os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


#: Highest peak RSS seen by any :class:`PeakRSS` block of this process.
_PEAK_SEEN = 0


def max_rss_bytes() -> int:
    """Peak RSS of this process so far.

    ``ru_maxrss`` is not used alone: on Linux a process started by fork + exec carries the
    parent's peak at the fork in it, and resetting ``VmHWM`` (see :class:`PeakRSS`) resets it
    too. So this is the largest of ``ru_maxrss``/``VmHWM`` now and every peak measured before.
    """
    now = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, hwm_bytes() or 0)
    return max(now, _PEAK_SEEN)


def hwm_bytes() -> int | None:
    """Peak RSS of this process image (``VmHWM`` in /proc/self/status), or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_hwm() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakRSS:
    """Peak RSS over a block: ``VmHWM`` reset at the start when the kernel allows it, else
    (and also) the RSS sampled by a background thread every ``interval`` seconds."""

    def __init__(self, interval: float = 0.02, tree: bool = False) -> None:
        self.interval = interval
        self.tree = tree
        self.peak = 0
        self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            if self.tree:
                self.tree_peak = max(self.tree_peak, tree_rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.exact = reset_hwm()
        self.start = rss_bytes()
        self.peak = self.start
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.end = rss_bytes()
        self.sampled_peak = max(self.peak, self.end)
        hwm = hwm_bytes() if self.exact else None
        self.peak = max(self.sampled_peak, hwm or 0)
        self.method = "VmHWM" if hwm is not None else "sampled"
        global _PEAK_SEEN
        _PEAK_SEEN = max(_PEAK_SEEN, self.peak)


@contextmanager
def measure(record: dict, name: str, *, trace: bool = True):
    """Time a step and record its peak RSS (sampled) and tracemalloc peak (numpy / Python)."""
    gc.collect()
    if trace:
        tracemalloc.start()
    with PeakRSS() as rss:
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    record[name] = {
        "seconds": seconds,
        "rss_start_mb": rss.start / MB,
        "rss_peak_mb": rss.peak / MB,
        "rss_end_mb": rss.end / MB,
        "rss_peak_increase_mb": (rss.peak - rss.start) / MB,
        "rss_peak_method": rss.method,
        "tracemalloc_peak_mb": None if traced is None else traced / MB,
    }
    print(
        f"  {name:<22} {seconds:8.2f} s   peak RSS {rss.peak / MB:8.0f} MB "
        f"(+{(rss.peak - rss.start) / MB:.0f})"
        + ("" if traced is None else f"   tracemalloc peak {traced / MB:8.0f} MB"),
        flush=True,
    )


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -------------------------------------------------------------------------------- machine
def machine_info() -> dict:
    import sklearn
    import torch

    import scactive

    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    mem_gb = int(line.split()[1]) / 1024**2
                    break
    except OSError:
        pass
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "memory_gb": None if mem_gb is None else round(mem_gb, 1),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_parallel_backend": "OpenMP" if "OpenMP" in torch.__config__.parallel_info() else "",
        "env": {
            k: os.environ[k]
            for k in (
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
                "OMP_WAIT_POLICY",
                "NUMBA_NUM_THREADS",
                "NUMBA_THREADING_LAYER",
            )
            if k in os.environ
        },
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "scactive": scactive.__version__,
        "load_average_at_start": load(),
        "git": git_state(),
    }


def git_state() -> dict:
    """The commit the numbers belong to, and whether src/ differs from it."""
    root = HERE.parent

    def git(*cmd: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *cmd], cwd=root, capture_output=True, text=True, check=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_modified": None if status is None else bool(status),
    }


# ------------------------------------------------------------------------------------ data
def generate(cells: int, genes: int):
    from scactive import datasets

    if (cells, genes) == (PAPER_CELLS, PAPER_GENES):
        return datasets.paper_scale(rng=0)
    return datasets.synthetic(cells, genes, rng=0)


def prepare_data(cells: int, genes: int) -> tuple[dict, object]:
    """Generate and prepare the data once, measuring every step; returns (record, SeedData)."""
    from scactive.bench import DataOptions, SeedData, prepare

    print(f"\n## data preparation ({cells:,} cells x {genes:,} genes)", flush=True)
    steps: dict = {}
    with measure(steps, "generate"):
        adata = generate(cells, genes)
    options = DataOptions()  # the defaults: initial=0.2, val_fraction=0.2, 2000 HVGs, 50 PCs
    with measure(steps, "prepare"):
        prepared = prepare(adata, "cell_type", options)
    seed_data = SeedData(prepared, 0, options)
    with measure(steps, "split"):
        seed_data.pool  # noqa: B018
    with measure(steps, "features_fit"):
        seed_data.features  # noqa: B018 - HVGs, scaling and PCA, fitted on the pool
    # what mlp2 reads: the pool's and the validation cells' PCA (no dense genes)
    with measure(steps, "pool_pca"):
        seed_data.pool_matrix("pca")
    with measure(steps, "val_pca"):
        seed_data.val_matrix("pca")
    X = adata.X
    info = {
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "nnz": int(X.nnz),
        "x_matrix_mb": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / MB,
        "n_cells_used": int(prepared.adata.n_obs),
        "n_types": len(prepared.classes),
        "n_pool": len(seed_data.pool),
        "n_val": len(seed_data.val),
        "n_initial": len(seed_data.initial),
        "n_features": len(seed_data.features.genes_),
        "n_pcs": int(seed_data.embedding.shape[1]),
        "floor_seconds": forward_pass_seconds(seed_data),
        "steps": steps,
        "max_rss_mb_after_preparation": max_rss_bytes() / MB,
    }
    # fitting the FeatureSpace and building what the learner reads: the steps together
    steps["features_fit+pool_pca"] = {
        "seconds": steps["features_fit"]["seconds"] + steps["pool_pca"]["seconds"],
        "rss_peak_mb": max(steps["features_fit"]["rss_peak_mb"], steps["pool_pca"]["rss_peak_mb"]),
    }
    del adata
    gc.collect()
    return info, seed_data


def forward_pass_seconds(seed_data) -> float:
    """The floor of a round: one forward pass of ``mlp2`` over the pool (median of 3)."""
    from scactive.models import make_learner

    X = seed_data.pool_matrix("pca")
    start = seed_data.initial
    learner = make_learner(MODEL, seed_data.features, rng=0, given="pca")
    learner.fit(X[start], seed_data.y_pool[start])
    times = []
    for _ in range(3):
        t = time.perf_counter()
        learner.predict_proba(X)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


# -------------------------------------------------------------------------- per-round timing
def time_rounds(
    seed_data,
    *,
    strategies,
    batch_size: int,
    n_rounds: int,
    retrain: str,
    torch_threads: int | None = None,
) -> list:
    """Run each strategy for ``n_rounds`` rounds on the prepared data; one row per round.

    ``torch_threads`` is applied again before every strategy: scanpy's highly variable genes
    (numba's OpenMP layer) reset torch's thread count to the number of cores.
    """
    import torch

    from scactive.bench import GridCell, GridOptions, run_cell

    print(f"\n## seconds per round, batch {batch_size}, retrain={retrain!r}", flush=True)
    rows = []
    for strategy in strategies:
        options = GridOptions(
            models=(MODEL,),
            strategies=(strategy,),
            batch_sizes=(batch_size,),
            seeds=1,
            n_rounds=n_rounds,
            retrain=retrain,
            ceiling=False,
        )
        cell = GridCell(MODEL, strategy, batch_size, 0)
        set_threads(torch_threads)
        threads = torch.get_num_threads()
        gc.collect()
        start = time.perf_counter()
        results, _ = run_cell(cell, seed_data, options)
        wall = time.perf_counter() - start
        for rec in results.to_dict("records"):
            rows.append(
                {
                    "strategy": strategy,
                    "retrain": retrain,
                    "batch_size": batch_size,
                    "round": int(rec["round"]),
                    "n_labeled": int(rec["n_labeled"]),
                    "train_seconds": float(rec["train_seconds"]),
                    "query_seconds": float(rec["query_seconds"]),
                    "accuracy": float(rec["accuracy"]),
                    "cell_wall_seconds": wall,
                    "torch_threads": threads,
                    "load_average": load(),
                }
            )
        later = results[results["round"] > 0]
        print(
            f"  {strategy:<10} round 0 train {results['train_seconds'].iloc[0]:6.2f} s | rounds "
            f"1-{n_rounds}: train {later['train_seconds'].mean():6.2f} s + query "
            f"{later['query_seconds'].mean():6.2f} s = "
            f"{(later['train_seconds'] + later['query_seconds']).mean():6.2f} s/round "
            f"(cell wall {wall:.1f} s)",
            flush=True,
        )
    return rows


def summarise_rounds(rows: list, floor: float) -> pd.DataFrame:
    """Per strategy and retrain mode: round 0 training, and mean / max of rounds >= 1, and
    the mean round as a multiple of ``floor`` (one forward pass over the pool)."""
    df = pd.DataFrame(rows)
    df["total_seconds"] = df["train_seconds"] + df["query_seconds"]
    out = []
    for (retrain, strategy), g in df.groupby(["retrain", "strategy"], sort=False):
        later = g[g["round"] > 0]
        out.append(
            {
                "retrain": retrain,
                "strategy": strategy,
                "round0_train_s": g.loc[g["round"] == 0, "train_seconds"].iloc[0],
                "train_s": later["train_seconds"].mean(),
                "query_s": later["query_seconds"].mean(),
                "round_s": later["total_seconds"].mean(),
                "max_round_s": later["total_seconds"].max(),
                "x_floor": later["total_seconds"].mean() / floor,
                "target_s": TARGET_QBC if strategy in ("qbc", "bald") else TARGET_ROUND,
            }
        )
    summary = pd.DataFrame(out)
    summary["meets_target"] = summary["max_round_s"] <= summary["target_s"]
    return summary


# ---------------------------------------------------------------------------------- the grid
def grid_child(args: argparse.Namespace) -> None:
    """In a fresh process: generate the data, run the paper grid, write measurements as JSON."""
    import scactive

    record: dict = {"load_average_at_start": load()}
    start = time.perf_counter()
    adata = generate(args.cells, args.genes)
    record["generate_seconds"] = time.perf_counter() - start
    record["peak_rss_generate_mb"] = (hwm_bytes() or 0) / MB
    gc.collect()
    tracemalloc_on = args.grid_tracemalloc
    if tracemalloc_on:
        tracemalloc.start()
    with PeakRSS(interval=0.05, tree=args.grid_jobs > 1) as rss, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        start = time.perf_counter()
        table = scactive.simulate(
            adata,
            label_key="cell_type",
            models=(MODEL,),
            strategies=GRID_STRATEGIES,
            batch_sizes=GRID_BATCH_SIZES,
            seeds=1,
            n_rounds=args.grid_rounds,
            ceiling=False,
            report=False,
            progress=False,
            out=None,
            **({"n_jobs": args.grid_jobs} if args.grid_jobs != 1 else {}),
        )
        wall = time.perf_counter() - start
    if tracemalloc_on:
        record["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()
    import torch

    record.update(
        torch_threads_after_simulate=torch.get_num_threads(),
        simulate_wall_seconds=wall,
        rss_before_simulate_mb=rss.start / MB,
        peak_rss_simulate_mb=rss.peak / MB,
        peak_rss_simulate_method=rss.method,
        sampled_peak_rss_with_workers_mb=rss.tree_peak / MB if rss.tree else None,
        sampled_peak_rss_simulate_mb=rss.sampled_peak / MB,
        peak_rss_process_mb=(hwm_bytes() or 0) / MB if not rss.exact else None,
        load_average_at_end=load(),
        results=table.to_dict("records"),
    )
    Path(args.child_out).write_text(json.dumps(record, default=_json_default))


def run_grid(args: argparse.Namespace) -> dict:
    n_cells = len(GRID_STRATEGIES) * len(GRID_BATCH_SIZES)
    print(
        f"\n## paper grid: {len(GRID_STRATEGIES)} strategies x batch sizes "
        f"{list(GRID_BATCH_SIZES)} x {args.grid_rounds} rounds, 1 seed ({n_cells} runs), "
        f"n_jobs={args.grid_jobs}, in a child process",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        child_out = Path(tmp) / "grid.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--grid-child",
            "--child-out",
            str(child_out),
            "--cells",
            str(args.cells),
            "--genes",
            str(args.genes),
            "--grid-rounds",
            str(args.grid_rounds),
        ]
        if args.grid_tracemalloc:
            cmd.append("--grid-tracemalloc")
        if args.torch_threads is not None:
            cmd += ["--torch-threads", str(args.torch_threads)]
        if args.grid_jobs != 1:
            cmd += ["--grid-jobs", str(args.grid_jobs)]
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        child_wall = time.perf_counter() - start
        record = json.loads(child_out.read_text())
    table = pd.DataFrame(record.pop("results"))
    table["total_seconds"] = table["train_seconds"] + table["query_seconds"]
    later = table[table["round"] > 0]
    record["child_process_wall_seconds"] = child_wall
    record["sum_train_seconds"] = float(table["train_seconds"].sum())
    record["sum_query_seconds"] = float(table["query_seconds"].sum())
    record["other_seconds"] = (
        record["simulate_wall_seconds"] - record["sum_train_seconds"] - record["sum_query_seconds"]
    )
    per_cell = (
        later.groupby(["strategy", "batch_size"], sort=False)
        .agg(
            train_s=("train_seconds", "mean"),
            query_s=("query_seconds", "mean"),
            round_s=("total_seconds", "mean"),
            max_round_s=("total_seconds", "max"),
        )
        .reset_index()
    )
    round0 = table[table["round"] == 0].groupby(["strategy", "batch_size"], sort=False)
    per_cell["round0_train_s"] = round0["train_seconds"].first().to_numpy()
    last = (
        table.sort_values("round")
        .groupby(["strategy", "batch_size"], sort=False)["accuracy"]
        .last()
        .rename("final_accuracy")
    )
    per_cell = per_cell.merge(last.reset_index(), on=["strategy", "batch_size"], how="left")
    record["per_cell"] = per_cell.to_dict("records")
    record["peak_rss_mb"] = max(record["peak_rss_generate_mb"], record["peak_rss_simulate_mb"])
    record["rows"] = table.drop(columns=["total_seconds"]).to_dict("records")
    print(
        f"  simulate wall {record['simulate_wall_seconds']:.1f} s (train "
        f"{record['sum_train_seconds']:.1f} s, query {record['sum_query_seconds']:.1f} s, other "
        f"{record['other_seconds']:.1f} s); peak RSS during simulate "
        f"{record['peak_rss_simulate_mb']:.0f} MB",
        flush=True,
    )
    return record


# ---------------------------------------------------------------------------------- reporting
def _json_default(value):
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if value is pd.NA or value is None:
        return None
    return str(value)


def _table(df: pd.DataFrame, floatfmt: str = ".2f") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, bool | np.bool_):
                cells.append("yes" if v else "**no**")
            elif isinstance(v, float | np.floating):
                cells.append("" if np.isnan(v) else format(v, floatfmt))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    m, d = result["machine"], result["data"]
    out = [
        f"# scactive benchmark: {result['name']}",
        "",
        f"- date: {m['date']}; command: `{result['command']}`; scactive at commit "
        f"{m['git']['commit']}{' with modified src/' if m['git']['src_modified'] else ''}",
        f"- machine: {m['cpu_count']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB RAM, "
        f"{m['platform']}",
        f"- python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads, "
        f"{m['torch_interop_threads']} inter-op{', env ' + str(m['env']) if m['env'] else ''}"
        f"), numpy {m['numpy']}, scikit-learn "
        f"{m['scikit-learn']}",
        f"- load average (1, 5, 15 min) at start {m['load_average_at_start']}, at end "
        f"{result['load_average_at_end']}",
        f"- data: {d['n_cells']:,} cells x {d['n_genes']:,} genes ({d['nnz']:,} nonzeros, "
        f"{d['x_matrix_mb']:.0f} MB CSR), {d['n_types']} types; pool {d['n_pool']:,}, "
        f"validation {d['n_val']:,}, {d['n_initial']:,} labeled at the start; "
        f"{d['n_features']} features, {d['n_pcs']} PCs",
        f"- peak RSS of the main process (data preparation and round timing): "
        f"{result['max_rss_mb_main_process']:.0f} MB; total time {result['total_seconds']:.0f} s",
        "",
        "## Data preparation",
        "",
    ]
    steps = pd.DataFrame(
        [
            {
                "step": name,
                "seconds": s["seconds"],
                "peak RSS (MB)": s["rss_peak_mb"],
                "RSS increase (MB)": s.get("rss_peak_increase_mb", np.nan),
                "tracemalloc peak (MB)": s.get("tracemalloc_peak_mb") or np.nan,
            }
            for name, s in d["steps"].items()
        ]
    )
    method = {s.get("rss_peak_method") for s in d["steps"].values()} - {None}
    out += [
        _table(steps, ".1f"),
        "",
        f"Peak RSS per step: {' / '.join(sorted(method))} (of the whole process, so it includes "
        "what earlier steps still hold; 'RSS increase' is the peak minus the RSS at the start "
        "of the step). tracemalloc sees numpy and Python allocations only.",
        "",
    ]
    rounds = pd.DataFrame(result["rounds_summary"])
    threads = pd.DataFrame(result["rounds"]).groupby("retrain")["torch_threads"].unique()
    for retrain, g in rounds.groupby("retrain", sort=False):
        out += [
            f"## Seconds per round, batch size {result['round_batch_size']}, "
            f"retrain={retrain!r} (mean of rounds 1-{result['round_rounds']})",
            "",
            f"torch threads: {', '.join(map(str, threads[retrain]))}",
            "",
            _table(
                g.drop(columns=["retrain"]).rename(
                    columns={
                        "round0_train_s": "round 0 train",
                        "train_s": "train",
                        "query_s": "query",
                        "round_s": "train + query",
                        "max_round_s": "slowest round",
                        "x_floor": "x floor",
                        "target_s": "aim",
                        "meets_target": "aim met",
                    }
                )
            ),
            "",
        ]
    grid = result.get("grid")
    if grid:
        out += [
            f"## Paper grid ({len(GRID_STRATEGIES)} strategies x {list(GRID_BATCH_SIZES)} x "
            f"{result['grid_rounds']} rounds, 1 seed, n_jobs={result['grid_jobs']})",
            "",
            f"- `scactive.simulate` wall time: **{grid['simulate_wall_seconds']:.1f} s** "
            + (
                f"(train {grid['sum_train_seconds']:.1f} s, query "
                f"{grid['sum_query_seconds']:.1f} s, other incl. data preparation and "
                f"evaluation {grid['other_seconds']:.1f} s)"
                if result["grid_jobs"] == 1
                else f"(summed over the {result['grid_jobs']} workers: train "
                f"{grid['sum_train_seconds']:.1f} s, query {grid['sum_query_seconds']:.1f} s)"
            ),
            f"- peak RSS during `simulate` ({grid['peak_rss_simulate_method']}, reset before the "
            f"call): **{grid['peak_rss_simulate_mb']:.0f} MB** (RSS when it started, holding the "
            f"generated AnnData: {grid['rss_before_simulate_mb']:.0f} MB; peak while generating "
            f"the data: {grid['peak_rss_generate_mb']:.0f} MB)",
            *(
                [
                    f"- peak RSS of the parent and its {result['grid_jobs']} workers together "
                    f"(sampled every 50 ms): **{grid['sampled_peak_rss_with_workers_mb']:.0f} MB**"
                ]
                if grid.get("sampled_peak_rss_with_workers_mb")
                else []
            ),
            f"- torch threads at the end of `simulate`: {grid['torch_threads_after_simulate']}",
            f"- load average at start {grid['load_average_at_start']}, at end "
            f"{grid['load_average_at_end']}",
            "",
            _table(
                pd.DataFrame(grid["per_cell"]).rename(
                    columns={
                        "batch_size": "batch",
                        "train_s": "train",
                        "query_s": "query",
                        "round_s": "train + query",
                        "max_round_s": "slowest round",
                        "x_floor": "x floor",
                        "round0_train_s": "round 0 train",
                        "final_accuracy": "final accuracy",
                    }
                )
            ),
            "",
        ]
    return "\n".join(out)


# --------------------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="3,000 cells x 5,000 genes, 1 round: checks the script in about a minute",
    )
    p.add_argument("--cells", type=int, default=None, help=f"cells (default {PAPER_CELLS})")
    p.add_argument("--genes", type=int, default=None, help=f"genes (default {PAPER_GENES})")
    p.add_argument("--rounds", type=int, default=None, help="rounds per strategy (default 3)")
    p.add_argument(
        "--grid-rounds", type=int, default=None, help="rounds of the paper grid (default 10)"
    )
    p.add_argument(
        "--strategies",
        default=",".join(ROUND_STRATEGIES),
        help="comma-separated strategies of the round timing (default: all seven)",
    )
    p.add_argument("--batch-size", type=int, default=81, help="batch size of the round timing")
    p.add_argument("--no-grid", action="store_true", help="skip the paper grid")
    p.add_argument("--no-continue", action="store_true", help="skip the retrain='continue' runs")
    p.add_argument(
        "--grid-tracemalloc",
        action="store_true",
        help="also trace Python/numpy allocations during the grid (slows it down)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="threads of torch, BLAS and numba, held for the run (default 1, as the command "
        "line's --threads)",
    )
    p.add_argument(
        "--grid-jobs",
        type=int,
        default=1,
        help="n_jobs of scactive.simulate for the grid (default 1, the library's default)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the results")
    p.add_argument("--name", default=None, help="results file name (default from the size)")
    p.add_argument("--grid-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    args.cells = args.cells or (3_000 if quick else PAPER_CELLS)
    args.genes = args.genes or (5_000 if quick else PAPER_GENES)
    args.rounds = args.rounds if args.rounds is not None else (1 if quick else 3)
    args.grid_rounds = args.grid_rounds if args.grid_rounds is not None else (1 if quick else 10)
    if args.name is None:
        if (args.cells, args.genes) == (PAPER_CELLS, PAPER_GENES):
            args.name = "paper_scale"
        else:
            args.name = "quick" if quick else f"{args.cells}x{args.genes}"
    for name in ("cells", "genes"):
        if getattr(args, name) < 100:
            p.error(f"--{name}={getattr(args, name)}; expected at least 100.")
    args.strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    if args.rounds < 1 or args.grid_rounds < 1 or args.batch_size < 1:
        p.error("--rounds, --grid-rounds and --batch-size must be >= 1.")
    return args


def set_threads(n: int | None) -> None:
    if n is not None:
        import torch  # noqa: F401 - loaded first, so its threads are held too

        from scactive._threads import set_threads as hold

        hold(n)


def main(argv=None) -> int:
    args = parse_args(argv)
    set_threads(args.torch_threads)
    if args.grid_child:
        grid_child(args)
        return 0
    warnings.simplefilter("ignore", FutureWarning)
    machine = machine_info()
    print("# scactive benchmark", flush=True)
    for key in ("date", "cpu_count", "cpu_model", "memory_gb", "torch", "torch_threads"):
        print(f"  {key}: {machine[key]}")
    print(f"  load average: {machine['load_average_at_start']}", flush=True)
    if machine["load_average_at_start"][0] > (machine["cpu_count"] or 1) * 0.75:
        print("  warning: the machine is busy; timings will be slower than on an idle machine")

    start = time.perf_counter()
    data, seed_data = prepare_data(args.cells, args.genes)
    rows = time_rounds(
        seed_data,
        strategies=args.strategies,
        batch_size=args.batch_size,
        n_rounds=args.rounds,
        retrain="scratch",
        torch_threads=args.torch_threads,
    )
    if not args.no_continue:
        rows += time_rounds(
            seed_data,
            strategies=args.strategies,
            batch_size=args.batch_size,
            n_rounds=args.rounds,
            retrain="continue",
            torch_threads=args.torch_threads,
        )
    del seed_data
    gc.collect()
    summary = summarise_rounds(rows, data["floor_seconds"])
    result = {
        "name": args.name,
        "command": " ".join([Path(sys.executable).name, "benchmarks/run.py", *sys.argv[1:]]),
        "machine": machine,
        "data": data,
        "round_batch_size": args.batch_size,
        "round_rounds": args.rounds,
        "grid_rounds": args.grid_rounds,
        "grid_jobs": args.grid_jobs,
        "targets": {"round_seconds": TARGET_ROUND, "qbc_round_seconds": TARGET_QBC},
        "rounds": rows,
        "rounds_summary": summary.to_dict("records"),
        "grid": None if args.no_grid else run_grid(args),
        "max_rss_mb_main_process": max_rss_bytes() / MB,
        "total_seconds": time.perf_counter() - start,
        "load_average_at_end": load(),
    }
    text = markdown(result)
    print("\n" + text, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for suffix, content in (
        (".json", json.dumps(result, indent=1, default=_json_default)),
        (".md", text + "\n"),
    ):
        path = args.out / f"{args.name}{suffix}"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(content)
        os.replace(tmp, path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
