"""Fit the bundled synthetic-data model on pbmc3k and write ``src/scactive/data/pbmc3k_nb.npz``.

Usage (from the repository root)::

    .venv/bin/python tools/fit_synthetic.py [--input PATH] [--output PATH] [--min-cells-per-gene 3]

The input is 10x's pbmc3k (2,638 cells x 32,738 genes, raw UMI counts) with the Seurat tutorial's
9 cell types in ``obs['cell_type']``. Genes detected in fewer than ``--min-cells-per-gene`` cells
are left out to keep the file small; the model remembers how many there were.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import anndata as ad

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from scactive._synthetic import BUNDLED_FILE, CountModel  # noqa: E402

DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "pbmc3k_seurat_labels.h5ad"
DEFAULT_OUTPUT = ROOT / "src" / "scactive" / "data" / BUNDLED_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--label-key", default="cell_type")
    parser.add_argument("--min-cells-per-gene", type=int, default=3)
    parser.add_argument("--min-cells-per-type", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    if not args.input.exists():
        print(f"error: input {args.input} not found", file=sys.stderr)
        return 2
    adata = ad.read_h5ad(args.input)
    model = CountModel.fit(
        adata,
        args.label_key,
        min_cells_per_type=args.min_cells_per_type,
        min_cells_per_gene=args.min_cells_per_gene,
    )
    model.source = (
        f"10x pbmc3k ({adata.n_obs} cells x {adata.n_vars} genes, raw UMIs), Seurat tutorial "
        f"labels in obs[{args.label_key!r}]; genes detected in >= {args.min_cells_per_gene} "
        "cells; fitted by tools/fit_synthetic.py"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.output)
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size / 1e6:.2f} MB)")
    print(f"{model.n_types} types, {model.n_genes} of {model.n_source_genes} genes kept")
    for name, freq, m, s in zip(
        model.cell_types,
        model.frequencies,
        model.log_library_mean,
        model.log_library_sd,
        strict=True,
    ):
        print(f"  {name:<14} freq {freq:.3f}  log library {m:.2f} +- {s:.2f}")
    print(f"dispersion quantiles (5/50/95%): {_quantiles(model.dispersion)}")
    return 0


def _quantiles(values) -> str:
    import numpy as np

    return ", ".join(f"{v:.3g}" for v in np.quantile(values, [0.05, 0.5, 0.95]))


if __name__ == "__main__":
    raise SystemExit(main())
