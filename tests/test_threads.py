"""Thread counts held for the whole run: torch, BLAS/OpenMP and numba stay where they are set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scactive import InputError
from scactive._threads import set_threads

PROBE = """
import json, os, sys
import numpy as np
from scactive._threads import set_threads
set_threads(int(sys.argv[1]))
import scanpy as sc, torch
from threadpoolctl import threadpool_info
from conftest import make_counts
from scactive.models import MLPClassifier
adata = make_counts(n_cells=200, n_genes=300)
sc.pp.normalize_total(adata); sc.pp.log1p(adata)
sc.pp.highly_variable_genes(adata, n_top_genes=50)  # numba's first parallel call
after_numba = torch.get_num_threads()
torch.set_num_threads(2)  # anything may change it: the next fit sets it back
X = adata.X.toarray().astype(np.float32)
MLPClassifier(hidden=(8,), min_steps=20).fit(X, adata.obs["cell_type"].astype(str))
print(json.dumps({
    "torch_after_numba": after_numba,
    "torch_in_fit": torch.get_num_threads(),
    "pools": sorted({p["num_threads"] for p in threadpool_info()}),
    "numba_layer": os.environ.get("NUMBA_THREADING_LAYER"),
}))
"""


def test_threads_stay_held_through_numba_and_every_fit(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)  # a fresh process, as a user starts it
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "1"],
        capture_output=True, text=True, timeout=600, cwd=str(tmp_path), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["torch_after_numba"] == 1
    assert seen["torch_in_fit"] == 1
    assert seen["pools"] == [1]
    assert seen["numba_layer"] == "workqueue"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(InputError, match="threads="):
        set_threads(bad)
