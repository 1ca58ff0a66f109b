"""``scactive query``, ``teach`` and ``export``: a whole session from the shell."""

from __future__ import annotations

import io

import anndata as ad
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_counts
from scactive.app import EXPORT_COLUMNS, open_session
from scactive.cli import app
from scactive.models import load_model


def invoke(*args):
    return CliRunner().invoke(app, list(map(str, args)))


@pytest.fixture(scope="module")
def adata() -> ad.AnnData:
    return make_counts()


@pytest.fixture(scope="module")
def data_file(adata, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def with_truth(table: pd.DataFrame, adata: ad.AnnData) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cell": table["cell"].to_numpy(),
            "label": adata.obs.loc[table["cell"], "cell_type"].astype(str).to_numpy(),
        }
    )


def test_query_teach_export(adata, data_file, tmp_path):
    session = tmp_path / "cells.scactive"
    first = invoke("query", data_file, "--session", session, "--n", 6)
    assert first.exit_code == 0, first.output
    table = pd.read_csv(io.StringIO(first.stdout))
    assert list(table.columns) == ["cell", "strategy", "umap1", "umap2"]  # no model yet
    assert len(table) == 6 and table["cell"].is_unique and set(table["strategy"]) == {"cold-start"}

    answers = tmp_path / "answers.csv"
    taught_cells = set(table["cell"])
    with_truth(table, adata).to_csv(answers, index=False)
    taught = invoke("teach", data_file, answers, "--session", session)
    assert taught.exit_code == 0, taught.output
    assert "Recorded 6 answers" in taught.stdout

    second = invoke("query", data_file, "--session", session, "--n", 4, "--strategy", "margin")
    assert second.exit_code == 0, second.output
    table = pd.read_csv(io.StringIO(second.stdout))
    assert list(table.columns) == [
        "cell", "strategy", "predicted", "confidence", "umap1", "umap2"
    ]  # fmt: skip
    assert len(table) == 4 and set(table["strategy"]) == {"margin"}
    assert not set(table["cell"]) & taught_cells  # answered cells are not asked again
    assert table["confidence"].between(0, 1).all()

    out = tmp_path / "result.h5ad"
    done = invoke(
        "export", data_file, "--session", session, "--out", out,
        "--csv", tmp_path / "result.csv", "--model", tmp_path / "model.safetensors",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    result = ad.read_h5ad(out)
    assert set(EXPORT_COLUMNS) <= set(result.obs.columns)
    assert result.obs["scactive_label"].notna().sum() == 6
    assert result.obs["scactive_predicted"].notna().all()
    assert len(pd.read_csv(tmp_path / "result.csv")) == adata.n_obs
    assert load_model(tmp_path / "model.safetensors").classes.size == 3


def test_teach_with_a_bad_row_records_nothing(adata, data_file, tmp_path):
    session = tmp_path / "cells.scactive"
    answers = tmp_path / "answers.csv"
    pd.DataFrame(
        {
            "cell": ["cell0", "cell1", "ghost", "cell3", "cell4"],
            "label": ["T cell", "B cell", "B cell", "   ", ""],
            "kind": ["", "label", "", "label", "skip"],
        }
    ).to_csv(answers, index=False)
    result = invoke("teach", data_file, answers, "--session", session)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "nothing was recorded" in message
    assert "line 4: Unknown cell 'ghost'" in message and "line 5: The label is empty" in message
    assert "Traceback" not in result.output
    with open_session(adata, session) as s:
        assert s.labels().empty

    missing = tmp_path / "no_label.csv"
    pd.DataFrame({"cell": ["cell0"]}).to_csv(missing, index=False)
    result = invoke("teach", data_file, missing, "--session", session)
    assert result.exit_code == 2 and "needs columns 'cell' and 'label'" in result.output


def test_other_data_is_refused(data_file, tmp_path):
    session = tmp_path / "cells.scactive"
    assert invoke("query", data_file, "--session", session, "--n", 2).exit_code == 0
    other = tmp_path / "other.h5ad"
    make_counts(seed=3).write_h5ad(other)
    result = invoke("query", other, "--session", session)
    assert result.exit_code == 2
    assert "belongs to other data" in " ".join(result.output.split())
    result = invoke("query", data_file, "--session", session, "--strategy", "nope")
    assert result.exit_code == 2 and "Unknown strategy 'nope'" in result.output
