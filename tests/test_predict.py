"""``scactive.predict`` and ``scactive predict``: a trained model carried to new cells.

The model is trained the way the app trains it (``prepare_cells``, then a learner on its
matrix) on cells with planted types; the new cells come from the same generator, so every
call can be checked against the planted type.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

import scactive
from conftest import make_counts
from scactive import InputError
from scactive._predict import (
    CALL,
    CLUSTERS,
    CONFIDENCE,
    MAJORITY,
    PREDICTION,
    PROBA_KEY,
    UNS_KEY,
    majority_labels,
)
from scactive._predict_options import UNKNOWN
from scactive.app._prepare import prepare_cells
from scactive.cli import app
from scactive.io import select_matrix
from scactive.models import TrainedModel, make_learner, save_model

N_TRAIN = 240


@pytest.fixture(scope="module")
def cells():
    """Planted types: the first cells train the model, the others are new."""
    return make_counts(n_cells=N_TRAIN + 150, n_genes=300, seed=3)


@pytest.fixture(scope="module")
def model(cells):
    train = cells[:N_TRAIN]
    prepared = prepare_cells(select_matrix(train), seed=0, input="scaled")
    learner = make_learner("logreg", prepared.features, rng=0)
    learner.fit(prepared.X, train.obs["cell_type"].astype(str).to_numpy())
    return TrainedModel(learner, prepared.features, "test", "scaled")


@pytest.fixture
def new(cells):
    return cells[N_TRAIN:].copy()


def truth(adata) -> np.ndarray:
    return adata.obs["cell_type"].astype(str).to_numpy()


def calls(result, column=PREDICTION) -> np.ndarray:
    return result.obs[column].astype(str).to_numpy()


def test_planted_types_are_recovered_with_the_genes_in_another_order(model, new):
    order = np.random.default_rng(0).permutation(new.n_vars)
    shuffled = new[:, order].copy()
    result = scactive.predict(shuffled, model)
    assert (calls(result) == truth(shuffled)).all()
    assert PREDICTION not in shuffled.obs  # a copy holds the results
    proba = result.obsm[PROBA_KEY]
    classes = np.asarray(result.uns[UNS_KEY]["classes"])
    assert proba.shape == (new.n_obs, 3) and list(classes) == ["type0", "type1", "type2"]
    np.testing.assert_array_equal(classes[proba.argmax(axis=1)], calls(result))
    np.testing.assert_allclose(result.obs[CONFIDENCE], proba.max(axis=1))
    assert result.uns[UNS_KEY]["n_shared_genes"] == len(model.genes)
    # the same cells in the training order give the same probabilities
    np.testing.assert_allclose(scactive.predict(new, model).obsm[PROBA_KEY], proba, rtol=1e-5)


def test_a_missing_model_gene_is_warned_about_by_count_and_set_to_0(model, new):
    gone = str(model.genes[0])
    n = len(model.genes)
    kept = new[:, new.var_names != gone].copy()
    with pytest.warns(UserWarning, match=rf"^1 of {n:,} model genes are missing .* set to 0"):
        result = scactive.predict(kept, model)
    assert (calls(result) == truth(kept)).all()
    assert result.uns[UNS_KEY]["missing_genes"] == [gone]
    assert result.uns[UNS_KEY]["n_shared_genes"] == n - 1


def test_too_few_shared_genes_are_refused_unless_allowed(model, new):
    n = len(model.genes)
    n_kept = int(0.4 * n)
    kept = new[:, list(model.genes[:n_kept])].copy()
    with pytest.raises(InputError, match=rf"hold {n_kept} of the model's {n} genes.*50%"):
        scactive.predict(kept, model)
    with pytest.warns(UserWarning, match=f"{n - n_kept} of {n} model genes are missing"):
        result = scactive.predict(kept, model, min_shared_genes=0.3)
    assert result.uns[UNS_KEY]["n_shared_genes"] == n_kept


def test_cells_below_the_threshold_are_unknown_and_keep_their_raw_call(model, new):
    # a planted doubt: cells half of one type, half of another
    X = new.X.toarray()
    half = X.copy()
    pairs = np.random.default_rng(1).permutation(new.n_obs)
    half[: new.n_obs // 2] = (X[: new.n_obs // 2] + X[pairs[: new.n_obs // 2]]) / 2
    mixed = new.copy()
    mixed.X = sp.csr_matrix(np.round(half))
    loose = scactive.predict(mixed, model, unknown_below=0)
    confidence = loose.obs[CONFIDENCE].to_numpy()
    threshold = float(np.median(confidence))
    result = scactive.predict(mixed, model, unknown_below=threshold)
    below = confidence < threshold
    assert below.any() and (~below).any()
    assert (calls(result, CALL)[below] == UNKNOWN).all()
    np.testing.assert_array_equal(calls(result, CALL)[~below], calls(result)[~below])
    np.testing.assert_array_equal(calls(result), calls(loose))  # the raw call is kept
    assert (calls(loose, CALL) == calls(loose)).all()  # unknown_below=0: never unknown
    assert result.uns[UNS_KEY]["unknown_below"] == threshold


def test_counts_and_the_same_cells_log_normalised_give_the_same_calls(model, new):
    counts = new.X.toarray()
    log = new.copy()
    log.X = sp.csr_matrix(np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4))
    from_counts = scactive.predict(new, model)
    from_log = scactive.predict(log, model)
    assert from_counts.uns[UNS_KEY]["input_counts"] and not from_log.uns[UNS_KEY]["input_counts"]
    np.testing.assert_array_equal(calls(from_counts), calls(from_log))
    np.testing.assert_allclose(
        from_counts.obsm[PROBA_KEY], from_log.obsm[PROBA_KEY], rtol=1e-4, atol=1e-6
    )


def test_majority_vote_gives_a_planted_cluster_its_majority_label(model, new):
    types = truth(new)
    zeros, ones = np.flatnonzero(types == "type0")[:12], np.flatnonzero(types == "type1")[:4]
    clusters = types.astype(object).copy()
    clusters[np.r_[zeros, ones]] = "planted"
    new.obs["cluster"] = clusters
    result = scactive.predict(new, model, majority_vote=True, over_clustering="cluster")
    voted = calls(result, MAJORITY)
    assert (voted[ones] == "type0").all() and (calls(result)[ones] == "type1").all()
    others = np.setdiff1d(np.arange(new.n_obs), np.r_[zeros, ones])
    np.testing.assert_array_equal(voted[others], types[others])
    assert CLUSTERS not in result.obs  # the clusters were given
    # the same clusters as values, one per cell
    again = scactive.predict(new, model, majority_vote=True, over_clustering=list(clusters))
    np.testing.assert_array_equal(calls(again, MAJORITY), voted)


def test_majority_vote_over_clusters_the_cells_itself(model, new):
    pytest.importorskip("igraph")
    result = scactive.predict(new, model, majority_vote=True, rng=0)
    clusters = result.obs[CLUSTERS].astype(str)
    assert clusters.nunique() > 3  # over-clustered: more clusters than types
    # well-separated types: every cluster is one type, so the vote keeps the planted types
    assert (pd.crosstab(clusters, truth(new)) > 0).sum(axis=1).max() == 1
    assert (calls(result, MAJORITY) == truth(new)).all()
    again = scactive.predict(new, model, majority_vote=True, rng=0)
    np.testing.assert_array_equal(again.obs[CLUSTERS].astype(str), clusters)


def test_majority_labels_breaks_ties_by_sorted_label():
    labels = np.array(["b", "a", "b", "a", "c"], dtype=object)
    clusters = np.array(["x", "x", "y", "y", "y"], dtype=object)
    assert list(majority_labels(labels, clusters)) == ["a", "a", "a", "a", "a"]
    labels[3] = "b"
    assert list(majority_labels(labels, clusters)) == ["a", "a", "b", "b", "b"]


@pytest.mark.filterwarnings("ignore:Variable names are not unique")
def test_genes_found_by_symbol_and_duplicated_names(model, new):
    by_id = new.copy()
    by_id.var["symbol"] = by_id.var_names.to_numpy()
    by_id.var_names = [f"ENSG{i:011d}" for i in range(by_id.n_vars)]
    assert (calls(scactive.predict(by_id, model)) == truth(new)).all()
    # a gene held twice: its first column is read (the second holds other values)
    gene = str(model.genes[0])
    extra = sp.csr_matrix(np.random.default_rng(2).poisson(5, (new.n_obs, 1)).astype(np.float32))
    twice = with_gene(new, gene, extra)
    result = scactive.predict(twice, model)
    assert (calls(result) == truth(new)).all()
    # the same matrix with the second column under another name: the same numbers
    other = scactive.predict(with_gene(new, "ANOTHER", extra), model)
    np.testing.assert_array_equal(result.obsm[PROBA_KEY], other.obsm[PROBA_KEY])


def with_gene(adata, name, column):
    """``adata`` with one more gene column, named ``name``."""
    import anndata as ad

    X = sp.hstack([adata.X, column], format="csr")
    var = pd.DataFrame(index=[*adata.var_names, name])
    return ad.AnnData(X, obs=adata.obs.copy(), var=var)


def test_inplace_writes_into_the_data_and_returns_the_table(model, new):
    table = scactive.predict(new, model, inplace=True)
    assert isinstance(table, pd.DataFrame) and list(table.index) == list(new.obs_names)
    assert {PREDICTION, CONFIDENCE, CALL} <= set(new.obs) and PROBA_KEY in new.obsm
    np.testing.assert_array_equal(table[PREDICTION].astype(str), calls(new))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"unknown_below": 1.5}, "unknown_below=1.5; expected a fraction from 0 to 1"),
        ({"unknown_below": -0.1}, "unknown_below=-0.1"),
        ({"min_shared_genes": 0}, "min_shared_genes=0; expected a fraction above 0"),
        ({"over_clustering": "cluster"}, "add majority_vote=True"),
        ({"majority_vote": True, "over_clustering": "clusters"}, "not a column of adata.obs"),
        ({"majority_vote": True, "over_clustering": ["a", "b"]}, "2 values for 150 cells"),
    ],
)
def test_bad_options_are_refused_by_name(model, new, options, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        scactive.predict(new, model, **options)


def test_a_file_that_is_not_a_model_is_refused(new, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a scactive model file") as refused:
        scactive.predict(new, tmp_path / "notes.txt")
    assert "scactive export --model model.safetensors" in str(refused.value)  # the way to get one
    with pytest.raises(InputError, match="not found"):
        scactive.predict(new, tmp_path / "absent.safetensors")
    with pytest.raises(InputError, match="expected a TrainedModel"):
        scactive.predict(new, 42)


# -- the command line ---------------------------------------------------------------------
@pytest.fixture
def files(model, new, tmp_path):
    model_path = save_model(model, tmp_path / "model.safetensors")
    data_path = tmp_path / "new.h5ad"
    new.write_h5ad(data_path)
    return model_path, data_path


def run(*args):
    result = CliRunner().invoke(app, ["predict", *map(str, args)])
    return result, " ".join(result.output.split())


def test_the_command_writes_the_calls_and_a_summary(files, new, tmp_path):
    model_path, data_path = files
    out, csv = tmp_path / "out" / "annotated.h5ad", tmp_path / "calls.csv"
    result, text = run(model_path, data_path, "--out", out, "--csv", csv, "--unknown-below", 0.6)
    assert result.exit_code == 0, result.output
    written = scactive.read(out)
    assert (calls(written) == truth(new)).all()
    assert written.uns[UNS_KEY]["unknown_below"] == 0.6
    table = pd.read_csv(csv, index_col="cell")
    assert list(table.index) == list(new.obs_names)
    np.testing.assert_array_equal(table[PREDICTION], truth(new))
    n_unknown = int((calls(written, CALL) == UNKNOWN).sum())
    assert f"Predicted {new.n_obs} cells" in text
    assert f"{n_unknown / new.n_obs:.1%} of the cells are 'unknown'" in text
    for label, n in pd.Series(calls(written, CALL)).value_counts().items():
        assert f"{label} │ {n}" in text


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "case, message",
    [
        ("out-is-input", "would overwrite the input data"),
        ("out-is-model", "would overwrite the model file"),
        ("not-a-model", "MODEL comes first, then DATA: scactive predict model.safetensors"),
        ("no-model", "Model file not found"),
        ("no-data", "Input file not found"),
        ("few-genes", "predicting needs at least 90%"),
        ("threshold", "--unknown-below 2.0; expected a fraction from 0 to 1"),
        ("clusters-alone", "--over-clustering gives the clusters of majority voting"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_changes_nothing(files, tmp_path, case, message):
    model_path, data_path = files
    out = tmp_path / "annotated.h5ad"
    before = {p: _sha(p) for p in (model_path, data_path)}
    args = [model_path, data_path, "--out", out]
    if case == "out-is-input":
        args[3] = data_path
    elif case == "out-is-model":
        args[3] = model_path
    elif case == "not-a-model":
        args[0] = data_path
    elif case == "no-model":
        args[0] = tmp_path / "absent.safetensors"
    elif case == "no-data":
        args[1] = tmp_path / "absent.h5ad"
    elif case == "few-genes":
        args += ["--min-shared-genes", 0.9]
        kept = scactive.read(data_path)
        kept[:, kept.var_names[: kept.n_vars // 2]].copy().write_h5ad(tmp_path / "half.h5ad")
        args[1] = tmp_path / "half.h5ad"
    elif case == "threshold":
        args += ["--unknown-below", 2]
    elif case == "clusters-alone":
        args += ["--over-clustering", "cell_type"]
    result, text = run(*args)
    assert result.exit_code == 2, result.output
    assert message in text and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert {p: _sha(p) for p in before} == before
    assert not out.exists()
