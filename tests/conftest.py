"""Shared fixtures: small generated data with planted cell types, and real data by path."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

SHARED_DATA = Path(
    os.environ.get("SCACTIVE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def make_counts(
    n_cells: int = 240,
    n_genes: int = 400,
    n_types: int = 3,
    *,
    markers: int = 20,
    seed: int = 0,
    fold: float = 8.0,
) -> ad.AnnData:
    """Poisson counts with ``n_types`` well-separated types, each with its own marker genes."""
    rng = np.random.default_rng(seed)
    types = np.repeat(np.arange(n_types), int(np.ceil(n_cells / n_types)))[:n_cells]
    rng.shuffle(types)
    base = rng.gamma(2.0, 0.5, size=n_genes)
    rates = np.tile(base, (n_types, 1))
    for t in range(n_types):
        rates[t, t * markers : (t + 1) * markers] *= fold
    counts = rng.poisson(rates[types] * rng.uniform(0.7, 1.3, size=(n_cells, 1)))
    genes = [f"G{i}" for i in range(n_genes)]
    adata = ad.AnnData(
        sp.csr_matrix(counts.astype(np.float32)),
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical([f"type{t}" for t in types])},
            index=[f"cell{i}" for i in range(n_cells)],
        ),
        var=pd.DataFrame(index=genes),
    )
    return adata


def corrupt(adata: ad.AnnData, problem: str) -> ad.AnnData:
    """A copy of ``adata`` with one planted problem (the bad inputs the tool must refuse)."""
    adata = adata.copy()
    X = adata.X.toarray()
    if problem in {"nan", "inf", "negative"}:
        X[3, 4] = {"nan": np.nan, "inf": np.inf, "negative": -1.5}[problem]
    adata.X = X
    if problem == "empty":
        adata = adata[:, :0].copy()
    elif problem == "duplicates":
        adata.obs_names = ["same"] * 2 + list(adata.obs_names[2:])
    elif problem == "one_class":
        adata.obs["cell_type"] = "T"
    return adata


@pytest.fixture
def counts_adata() -> ad.AnnData:
    return make_counts()


@pytest.fixture(scope="session")
def pbmc3k_path() -> Path:
    path = SHARED_DATA / "pbmc3k_seurat_labels.h5ad"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    return path


def pytest_configure(config):
    """One thread (torch, BLAS, numba) per test process: ``pytest -n 2`` runs two processes on
    2 cores, and threads competing for the cores slow every test down many times over. Set
    here, before any fixture: module-scoped fixtures run before function-scoped ones."""
    from scactive._threads import set_threads

    set_threads(1)


def without_root_override() -> list[str]:
    """A command prefix under which file permissions hold, also for root (which ignores them
    unless it drops its DAC capabilities: Debian's setpriv)."""
    import os
    import shutil

    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot be tested")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}", "--"]
