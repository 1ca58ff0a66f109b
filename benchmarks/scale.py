"""Time and peak memory from 10^5 to 10^6 cells: preparation, query rounds, a session, simulate.

For each size (``--cells``, default 100,000, 300,000 and 1,000,000 generated PBMCs of
``--genes`` 20,000 genes, from :func:`scactive.datasets.synthetic`), a fresh child process:

1. generates the counts;
2. opens an annotation session on them (``--no-session`` skips it): opening (normalisation,
   features, PCA, the UMAP of a sketch with every cell placed), the cold-start batch, a
   training on that batch answered with the true labels, the next ``entropy`` batch, and the
   map the page draws;
3. prepares them as ``scactive simulate`` does (:func:`scactive.bench.prepare`: QC and
   normalisation; then the features fitted on the pool and the pool's and validation cells'
   PCA, which is all that the default learner reads);
4. keeps only the pool's PCA and labels, and times one round of each strategy (``--strategies``)
   from ``--initial`` labeled cells: training ``mlp2``, then the query (score and pick) of
   ``--batch-size`` cells; beside it the floor, one forward pass over the pool, and the training
   on 20% of the pool (the paper's start), which the bounded schedule keeps as short.

Each step records its seconds and the process's peak RSS (``VmHWM``, reset at the start of the
step). With ``--simulate`` the parent also runs ``scactive simulate synthetic:CELLSxGENES
--initial 100 --batch-sizes 100 --rounds 3 --seeds 1 --strategies entropy`` as a whole process
per size (wall time and peak RSS, generation included).

Results go to ``benchmarks/results/<name>.json`` and ``.md``.

    .venv/bin/python benchmarks/scale.py                       # about 40 minutes on 2 cores
    .venv/bin/python benchmarks/scale.py --cells 20000 --genes 5000 --simulate   # a minute
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import PeakRSS, git_state, load, machine_info  # noqa: E402

MB = 1024**2
STRATEGIES = ("random", "entropy", "margin", "qbc", "bald", "diversity", "wkmc")


def step(record: dict, name: str):
    """Context manager: seconds and peak RSS of a step, printed and kept in ``record``."""

    class _Step:
        def __enter__(self):
            gc.collect()
            _trim()  # hand freed memory back, so that a step's peak is its own
            self.rss = PeakRSS().__enter__()
            self.start = time.perf_counter()
            return self

        def __exit__(self, *exc):
            seconds = time.perf_counter() - self.start
            self.rss.__exit__(*exc)
            record[name] = {
                "seconds": seconds,
                "rss_start_mb": self.rss.start / MB,
                "rss_peak_mb": self.rss.peak / MB,
            }
            print(
                f"  {name:<28} {seconds:8.2f} s   peak RSS {self.rss.peak / MB:8.0f} MB",
                flush=True,
            )

    return _Step()


def _trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def child(args: argparse.Namespace) -> dict:
    from scactive._threads import set_threads

    set_threads(1)
    from scactive import datasets
    from scactive.bench import DataOptions, SeedData, prepare

    warnings.simplefilter("ignore")
    n = args.child
    out: dict = {"cells": n, "genes": args.genes, "steps": {}, "rounds": []}
    steps = out["steps"]
    print(f"\n## {n:,} cells x {args.genes:,} genes", flush=True)
    with step(steps, "generate"):
        adata = datasets.synthetic(n, args.genes, rng=0)
    out["nonzeros"] = int(adata.X.nnz)
    if not args.no_session:
        session_steps(adata, args, out)
    options = DataOptions(initial=args.initial)
    with step(steps, "prepare (QC, normalise)"):
        prepared = prepare(adata, "cell_type", options)
    del adata
    with step(steps, "fit features (HVG, scaling, PCA)"):
        seed = SeedData(prepared, 0, options)
        features = seed.features
    with step(steps, "pool and validation PCA"):
        X, X_val = seed.pool_matrix("pca"), seed.val_matrix("pca")
    y, initial, n_pool = seed.y_pool, seed.initial, len(seed.pool)
    out.update(n_pool=n_pool, n_val=len(X_val), n_fit_cells=int(features.n_fit_cells_))
    del seed, prepared, X_val
    rounds(X, y, initial, features, args, out)
    return out


def session_steps(adata, args, out: dict) -> None:
    from scactive.app import open_session

    steps = out["steps"]
    with tempfile.TemporaryDirectory() as tmp:
        with step(steps, "session: open (new)"):
            session = open_session(adata, Path(tmp) / "s.scactive", use_input_umap=False)
        truth = adata.obs["cell_type"].astype(str)
        with step(steps, "session: cold-start batch"):
            batch = session.next_batch(args.batch_size)
        session.answer_many([(cell, truth[cell], "label", None) for cell in batch])
        with step(steps, "session: train"):
            session.train()
        with step(steps, "session: next batch (entropy)"):
            session.next_batch(args.batch_size, "entropy")
        from scactive.app._map import session_map

        with step(steps, "session: map for the page"):
            out["map_bytes"] = len(session_map(session))
        session.close()
    del session
    gc.collect()


def rounds(X, y, initial, features, args, out: dict) -> None:
    import torch

    from scactive.loop import Engine, LabelState
    from scactive.models import make_learner
    from scactive.strategies import get_strategy

    def new_learner(key):
        return make_learner("mlp2", features, rng=key, given="pca")

    state = LabelState(len(X))
    state.add(initial, y[initial], round_=0, strategy="initial")
    engine = Engine(X, new_learner, embedding=X)
    start = time.perf_counter()
    learner = engine.fit(state, 0)
    out["train_initial_seconds"] = time.perf_counter() - start
    floor = []
    for _ in range(3):
        start = time.perf_counter()
        learner.predict_proba(X)
        floor.append(time.perf_counter() - start)
    out["floor_seconds"] = float(np.median(floor))
    big = np.random.default_rng(1).choice(len(X), len(X) // 5, replace=False)
    with step(out["steps"], "train on 20% of the pool"):
        new_learner(1).fit(X[big], y[big])
    print(
        f"  one forward pass over the pool (floor): {out['floor_seconds']:.3f} s; training on "
        f"{len(initial)} cells {out['train_initial_seconds']:.2f} s",
        flush=True,
    )
    for name in args.strategies:
        rng = np.random.default_rng(0)
        record: dict = {}
        with step(record, f"round: {name}"):
            t0 = time.perf_counter()
            learner = engine.fit(state, 0)
            t1 = time.perf_counter()
            picks, _ = engine.query(learner, state, get_strategy(name), args.batch_size, rng)
            t2 = time.perf_counter()
        assert len(set(picks.tolist())) == args.batch_size
        r = record[f"round: {name}"]
        out["rounds"].append(
            {
                "strategy": name,
                "train_seconds": t1 - t0,
                "query_seconds": t2 - t1,
                "round_seconds": t2 - t0,
                "ratio_to_floor": (t2 - t0) / out["floor_seconds"],
                "rss_peak_mb": r["rss_peak_mb"],
                "torch_threads": torch.get_num_threads(),
            }
        )


def simulate(cells: int, genes: int) -> dict:
    command = [
        str(Path(sys.executable).with_name("scactive")),
        "simulate",
        f"synthetic:{cells}x{genes}",
        "--initial", "100", "--batch-sizes", "100", "--rounds", "3", "--seeds", "1",
        "--strategies", "entropy", "--no-report", "--no-progress",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        done = subprocess.run([*command, "--out", f"{tmp}/run"], capture_output=True, text=True)
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"  scactive simulate: {wall:.1f} s, exit {done.returncode}", flush=True)
    return {
        "command": " ".join(command[1:]),
        "seconds": wall,
        "exit": done.returncode,
        # the largest child so far: valid for this run when it is the largest one
        "peak_rss_mb": peak / 1024 if peak > before else None,
        "stderr_tail": done.stderr[-2000:] if done.returncode else "",
    }


def markdown(result: dict) -> str:
    lines = [f"# {result['name']}", "", f"`{result['command']}`", ""]
    sizes = result["sizes"]
    names = list(dict.fromkeys(k for s in sizes for k in s["steps"] if not k.startswith("round")))
    head = " | ".join(f"{s['cells']:,} cells" for s in sizes)
    lines += [f"| step | {head} |", "|---|" + "---|" * len(sizes)]
    for name in names:
        cells = []
        for s in sizes:
            v = s["steps"].get(name)
            cells.append("" if v is None else f"{v['seconds']:.1f} s, {v['rss_peak_mb']:,.0f} MB")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Query rounds (train + query seconds; ratio to one forward pass; peak RSS):", ""]
    lines += [f"| strategy | {head} |", "|---|" + "---|" * len(sizes)]
    for name in dict.fromkeys(r["strategy"] for s in sizes for r in s["rounds"]):
        cells = []
        for s in sizes:
            r = next((r for r in s["rounds"] if r["strategy"] == name), None)
            cells.append(
                ""
                if r is None
                else f"{r['train_seconds']:.2f} + {r['query_seconds']:.2f} s "
                f"(x{r['ratio_to_floor']:.1f}), {r['rss_peak_mb']:,.0f} MB"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| | " + head + " |",
        "|---|" + "---|" * len(sizes),
        "| nonzeros | " + " | ".join(f"{s['nonzeros']:,}" for s in sizes) + " |",
        "| pool / validation | "
        + " | ".join(f"{s['n_pool']:,} / {s['n_val']:,}" for s in sizes)
        + " |",
        "| features fitted on | " + " | ".join(f"{s['n_fit_cells']:,}" for s in sizes) + " |",
        "| floor (one forward pass) | "
        + " | ".join(f"{s['floor_seconds']:.3f} s" for s in sizes)
        + " |",
    ]
    if any("simulate" in s for s in sizes):
        lines.append(
            "| `scactive simulate` (whole process) | "
            + " | ".join(
                f"{s['simulate']['seconds']:.0f} s, "
                + (
                    f"{s['simulate']['peak_rss_mb']:,.0f} MB"
                    if s["simulate"]["peak_rss_mb"]
                    else "peak n/a"
                )
                + ("" if s["simulate"]["exit"] == 0 else f" (exit {s['simulate']['exit']})")
                for s in sizes
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def write(args: argparse.Namespace, machine: dict, sizes: list) -> dict:
    result = {
        "name": args.name,
        "command": " ".join(["benchmarks/scale.py", *sys.argv[1:]]),
        "machine": machine,
        "git": git_state(),
        "load_average_at_end": load(),
        "sizes": sizes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    (args.out / f"{args.name}.md").write_text(markdown(result))
    return result


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="100000,300000,1000000")
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--initial", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--no-session", action="store_true")
    parser.add_argument("--simulate", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--name", default="scale")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.strategies = args.strategies.split(",")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        args.child_out.write_text(json.dumps(child(args)))
        return 0
    machine = machine_info()
    print(f"# scale benchmark, load average {load()}", flush=True)
    sizes: list = []
    for cells in (int(c) for c in args.cells.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "child.json"
            argv_child = [a for a in sys.argv[1:] if a != "--simulate"]
            command = [sys.executable, __file__, *argv_child, "--child", str(cells)]
            done = subprocess.run([*command, "--child-out", str(target)])
            if done.returncode != 0:
                print(f"  the {cells:,}-cell child failed (exit {done.returncode})", flush=True)
                continue
            size = json.loads(target.read_text())
        if args.simulate:
            size["simulate"] = simulate(cells, args.genes)
        sizes.append(size)
        write(args, machine, sizes)  # after every size: a later failure keeps these
    print("\n" + markdown(write(args, machine, sizes)))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
