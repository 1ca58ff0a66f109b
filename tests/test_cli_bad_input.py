"""Every command on bad input: exit 2 (or 0), never a traceback, the user's files unchanged.

A table of bad invocations and bad files over all commands. Each case runs in a copy of one
folder of the user's files (data, a session with answers, a model, answers, markers); after
it, every file there is byte-identical and, on exit 2, no file was added.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_counts
from scactive.cli import app

QUICK = ["--seeds", "1", "--min-genes", "0", "--n-top-genes", "100", "--n-pcs", "10",
         "--no-progress", "--no-report", "--rounds", "1", "--batch-sizes", "6",
         "--initial", "12", "--strategies", "random"]  # fmt: skip


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """The user's folder: data, a session with six answers, its model, answers, markers."""
    folder = tmp_path_factory.mktemp("user")
    adata = make_counts(n_cells=150, n_genes=300)
    adata.write_h5ad(folder / "cells.h5ad")
    session = folder / "cells.scactive"
    first = invoke(["query", str(folder / "cells.h5ad"), "--session", str(session), "--n", "6"])
    assert first.exit_code == 0, first.output
    cells = pd.read_csv(io.StringIO(first.stdout))["cell"]
    labels = adata.obs.loc[cells, "cell_type"].astype(str).to_numpy()
    answers = pd.DataFrame({"cell": cells.to_numpy(), "label": labels})
    answers.to_csv(folder / "answers.csv", index=False)
    taught = invoke(["teach", str(folder / "answers.csv"), "--session", str(session)])
    assert taught.exit_code == 0, taught.output
    exported = invoke(
        ["export", "--session", str(session), "--out", str(folder / "done.h5ad"),
         "--model", str(folder / "model.safetensors")]
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    (folder / "done.h5ad").unlink()
    (folder / "markers.csv").write_text("type,gene\ntype0,G0\ntype1,G20\ntype2,G40\n")
    return folder


@pytest.fixture
def user(pristine, tmp_path) -> Path:
    folder = tmp_path / "user"
    shutil.copytree(pristine, folder)
    return folder


# -- bad files, made in the user's folder -------------------------------------------------
def _text(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def _cut(folder: Path, source: str, name: str, fraction: float = 0.5) -> None:
    raw = (folder / source).read_bytes()
    (folder / name).write_bytes(raw[: int(len(raw) * fraction)])


def _one_gene(folder: Path) -> None:
    make_counts(n_cells=60, n_genes=300)[:, :1].copy().write_h5ad(folder / "one_gene.h5ad")


def _nan(folder: Path) -> None:
    adata = make_counts(n_cells=60, n_genes=50)
    adata.X = adata.X.toarray()
    adata.X[3, 4] = np.nan
    adata.write_h5ad(folder / "nan.h5ad")


def _indptr(folder: Path) -> None:
    shutil.copy(folder / "cells.h5ad", folder / "indptr.h5ad")
    with h5py.File(folder / "indptr.h5ad", "r+") as fh:
        indptr = fh["X/indptr"][...]
        fh["X/indptr"][...] = indptr[::-1]  # decreasing


def _huge(folder: Path) -> None:
    shutil.copy(folder / "cells.h5ad", folder / "huge.h5ad")
    with h5py.File(folder / "huge.h5ad", "r+") as fh:
        indptr = fh["X/indptr"][...].astype(np.int64)
        indptr[-1] = 2**40  # declares 2^40 stored values
        del fh["X/indptr"]
        fh["X/indptr"] = indptr


def _pickle(folder: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {folder / 'pwned'}",))

    (folder / "evil.safetensors").write_bytes(pickle.dumps({"learner": Payload()}))


def _hierarchy(folder: Path, leaf) -> None:
    (folder / "tree.json").write_text(json.dumps({"cells": {"lymphoid": ["type0", leaf]}}))


def _session(folder: Path, sql: str) -> None:
    import sqlite3

    shutil.copy(folder / "cells.scactive", folder / "bad.scactive")
    with sqlite3.connect(folder / "bad.scactive") as db:
        db.executescript(sql)
    db.close()


LONG = "x" * 300

# id -> (files to make, arguments); {d} is the user's folder
CASES: dict[str, tuple] = {
    # simulate
    "simulate: no such file": (None, ["simulate", "{d}/absent.h5ad", "--out", "{d}/run"]),
    "simulate: not an h5ad": (
        lambda d: _text(d, "junk.h5ad", "hello"),
        ["simulate", "{d}/junk.h5ad", "--out", "{d}/run"],
    ),
    "simulate: truncated h5ad": (
        lambda d: _cut(d, "cells.h5ad", "cut.h5ad"),
        ["simulate", "{d}/cut.h5ad", "--label-key", "cell_type", "--out", "{d}/run"],
    ),
    "simulate: unknown label key": (
        None,
        ["simulate", "{d}/cells.h5ad", "--label-key", "celltype", *QUICK, "--out", "{d}/run"],
    ),
    "simulate: batch size 0": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--batch-sizes",
            "0",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: batch size text": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--batch-sizes",
            "many",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: batch larger than the pool": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--batch-sizes",
            "100000",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: negative rounds": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--rounds",
            "-1",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: unknown strategy": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--strategies",
            "psychic",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: unknown model": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--models",
            "mlp9",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: validation fraction 1.5": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--val-fraction",
            "1.5",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: zero seeds": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--seeds",
            "0",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: no genes asked": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--n-top-genes",
            "0",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: --out under /proc": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--out",
            "/proc/scactive-out",
        ],
    ),  # fmt: skip
    "simulate: --out under /sys": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--out",
            "/sys/kernel/x",
        ],
    ),  # fmt: skip
    "simulate: --out name too long": (
        None,
        ["simulate", "{d}/cells.h5ad", "--label-key", "cell_type", *QUICK, "--out", "{d}/" + LONG],
    ),  # fmt: skip
    "simulate: --out is a file": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--out",
            "{d}/answers.csv",
        ],
    ),  # fmt: skip
    "simulate: one gene": (
        _one_gene,
        ["simulate", "{d}/one_gene.h5ad", "--label-key", "cell_type", *QUICK, "--out", "{d}/run"],
    ),
    "simulate: NaN values": (
        _nan,
        ["simulate", "{d}/nan.h5ad", "--label-key", "cell_type", *QUICK, "--out", "{d}/run"],
    ),
    "simulate: corrupt X/indptr": (
        _indptr,
        ["simulate", "{d}/indptr.h5ad", "--label-key", "cell_type", *QUICK, "--out", "{d}/run"],
    ),
    "simulate: 2^40 declared values": (
        _huge,
        ["simulate", "{d}/huge.h5ad", "--label-key", "cell_type", *QUICK, "--out", "{d}/run"],
    ),
    "simulate: hierarchy with a number leaf": (
        lambda d: _hierarchy(d, 5),
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--hierarchy",
            "{d}/tree.json",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: hierarchy with a bool leaf": (
        lambda d: _hierarchy(d, True),
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--hierarchy",
            "{d}/tree.json",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: hierarchy not found": (
        None,
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--hierarchy",
            "{d}/absent.json",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    "simulate: markers JSON of numbers": (
        lambda d: _text(d, "markers.json", '{"B cells": 5}'),
        [
            "simulate",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            *QUICK,
            "--initial-strategy",
            "markers",
            "--markers",
            "{d}/markers.json",
            "--out",
            "{d}/run",
        ],
    ),  # fmt: skip
    # compare
    "compare: unknown method": (
        None,
        [
            "compare",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            "--methods",
            "oracle",
            "--out",
            "{d}/cmp",
        ],
    ),  # fmt: skip
    "compare: negative budget": (
        None,
        [
            "compare",
            "{d}/cells.h5ad",
            "--label-key",
            "cell_type",
            "--budgets",
            "-5",
            "--out",
            "{d}/cmp",
        ],
    ),  # fmt: skip
    # predict
    "predict: no such model": (
        None,
        ["predict", "{d}/absent.safetensors", "{d}/cells.h5ad", "--out", "{d}/p.h5ad"],
    ),
    "predict: model is text": (
        lambda d: _text(d, "m.safetensors", "weights"),
        ["predict", "{d}/m.safetensors", "{d}/cells.h5ad", "--out", "{d}/p.h5ad"],
    ),
    "predict: model cut short": (
        lambda d: _cut(d, "model.safetensors", "cut.safetensors", 0.7),
        ["predict", "{d}/cut.safetensors", "{d}/cells.h5ad", "--out", "{d}/p.h5ad"],
    ),
    "predict: a pickle that runs code": (
        _pickle,
        ["predict", "{d}/evil.safetensors", "{d}/cells.h5ad", "--out", "{d}/p.h5ad"],
    ),
    "predict: model and data swapped": (
        None,
        ["predict", "{d}/cells.h5ad", "{d}/model.safetensors", "--out", "{d}/p.h5ad"],
    ),
    "predict: threshold 2": (
        None,
        [
            "predict",
            "{d}/model.safetensors",
            "{d}/cells.h5ad",
            "--out",
            "{d}/p.h5ad",
            "--unknown-below",
            "2",
        ],
    ),  # fmt: skip
    "predict: --out /dev/null": (
        None,
        ["predict", "{d}/model.safetensors", "{d}/cells.h5ad", "--out", "/dev/null"],
    ),
    "predict: --out under /sys": (
        None,
        ["predict", "{d}/model.safetensors", "{d}/cells.h5ad", "--out", "/sys/x.h5ad"],
    ),
    "predict: --out is the data": (
        None,
        ["predict", "{d}/model.safetensors", "{d}/cells.h5ad", "--out", "{d}/cells.h5ad"],
    ),
    "predict: --csv under a file": (
        None,
        [
            "predict",
            "{d}/model.safetensors",
            "{d}/cells.h5ad",
            "--out",
            "{d}/p.h5ad",
            "--csv",
            "{d}/answers.csv/calls.csv",
        ],
    ),  # fmt: skip
    "predict: clusters without voting": (
        None,
        [
            "predict",
            "{d}/model.safetensors",
            "{d}/cells.h5ad",
            "--out",
            "{d}/p.h5ad",
            "--over-clustering",
            "leiden",
        ],
    ),  # fmt: skip
    # sessions
    "query: no session and no data": (None, ["query", "--session", "{d}/new.scactive"]),
    "query: session file is text": (
        lambda d: _text(d, "junk.scactive", "not a session"),
        ["query", "--session", "{d}/junk.scactive"],
    ),
    "query: session cut short": (
        lambda d: _cut(d, "cells.scactive", "cut.scactive"),
        ["query", "--session", "{d}/cut.scactive"],
    ),
    "teach: unknown cells": (
        lambda d: _text(d, "bad.csv", "cell,label\nnot-a-cell,type0\n"),
        ["teach", "{d}/bad.csv", "--session", "{d}/cells.scactive"],
    ),
    "teach: no label column": (
        lambda d: _text(d, "bad.csv", "cell,type\ncell1,type0\n"),
        ["teach", "{d}/bad.csv", "--session", "{d}/cells.scactive"],
    ),
    "teach: answers file missing": (
        None,
        ["teach", "{d}/absent.csv", "--session", "{d}/cells.scactive"],
    ),
    "export: --out under /sys": (
        None,
        ["export", "--session", "{d}/cells.scactive", "--out", "/sys/x.h5ad"],
    ),
    "export: --out is the session": (
        None,
        ["export", "--session", "{d}/cells.scactive", "--out", "{d}/cells.scactive"],
    ),
    "export: --csv name too long": (
        None,
        [
            "export",
            "--session",
            "{d}/cells.scactive",
            "--out",
            "{d}/e.h5ad",
            "--csv",
            "{d}/" + LONG + ".csv",
        ],
    ),  # fmt: skip
    "export: an answer for an unknown cell": (
        lambda d: _session(
            d, "UPDATE answers SET cell = 'no-such-cell' WHERE id = (SELECT MIN(id) FROM answers);"
        ),
        ["export", "--session", "{d}/bad.scactive", "--out", "{d}/e.h5ad"],
    ),
    "annotate: port 70000": (
        None,
        ["annotate", "{d}/cells.h5ad", "--session", "{d}/cells.scactive", "--port", "70000"],
    ),
    "annotate: port -1": (
        None,
        ["annotate", "{d}/cells.h5ad", "--session", "{d}/cells.scactive", "--port", "-1"],
    ),
}


#: Cases that run to the end (exit 0): a one-gene file has one principal component, which a
#: run handles (its second map coordinate stays empty).
RUNS = {"simulate: one gene"}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_without_a_traceback_and_keeps_the_users_files(case, user):
    make, args = CASES[case]
    if make is not None:
        make(user)
    before = _digest(user)
    null = os.stat("/dev/null")
    result = invoke([a.format(d=user) for a in args])
    assert result.exit_code == (0 if case in RUNS else 2), result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    after = _digest(user)
    if case in RUNS:  # the user's files are kept; the run adds its own
        assert {k: v for k, v in after.items() if k in before} == before
    else:
        assert "Error" in result.output or "Usage" in result.output
        assert after == before, sorted(set(after.items()) ^ set(before.items()))
    assert not (user / "pwned").exists()
    assert os.stat("/dev/null").st_rdev == null.st_rdev  # still the device
    assert not os.path.exists("/proc/scactive-out")
