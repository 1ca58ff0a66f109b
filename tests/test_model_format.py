"""Model files hold data only: every learner round-trips exactly, and no file runs code."""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import anndata as ad
import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from safetensors import safe_open
from safetensors.numpy import save_file
from typer.testing import CliRunner

from scactive import InputError
from scactive.cli import app
from scactive.models import (
    PRESETS,
    TrainedModel,
    learner_input,
    load_model,
    make_learner,
    register_model_class,
    save_model,
)
from scactive.models._one_class import OneClassLearner, fit_learner
from scactive.models._persist import DOCUMENT_KEY, FORMAT_VERSION
from scactive.pp import FeatureSpace

SHIPPED = sorted(PRESETS)  # the learners scactive ships (plugins add none in this suite)


@pytest.fixture(scope="module")
def cells():
    """Log-normalised cells of three types that differ in their first genes."""
    rng = np.random.default_rng(0)
    types = np.repeat(["B", "NK", "T"], 40)
    counts = rng.poisson(1.0, size=(len(types), 60)).astype(np.float32)
    for k, name in enumerate(["B", "NK", "T"]):
        counts[types == name, 5 * k : 5 * k + 5] += rng.poisson(
            6.0, size=((types == name).sum(), 5)
        )
    adata = ad.AnnData(sp.csr_matrix(np.log1p(counts)))
    adata.var_names = [f"g{i}" for i in range(60)]
    adata.obs_names = [f"c{i}" for i in range(len(types))]
    adata.obs["cell_type"] = types
    features = FeatureSpace(n_top_genes=40, n_pcs=10, min_cells=1).fit(adata)
    return adata, features


def trained(cells, name: str, given: str) -> TrainedModel:
    adata, features = cells
    quick = dict(min_steps=20, epochs=2) if PRESETS[name].takes_epochs else {}
    learner = make_learner(name, features, rng=0, given=given, **quick)
    X = features.matrix(adata, given)
    fit_learner(learner, X, adata.obs["cell_type"].to_numpy(), unlabeled=X[:30])
    return TrainedModel(learner, features, "test", given, name)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_learner_gives_identical_probabilities_after_a_round_trip(
    cells, name, tmp_path
):
    adata, _ = cells
    for given in sorted({"scaled", learner_input(name)}):  # on its own input and in a pipeline
        model = trained(cells, name, given)
        path = save_model(model, tmp_path / f"{given}.safetensors")
        loaded = load_model(path)
        np.testing.assert_array_equal(
            loaded.predict_proba(adata).to_numpy(), model.predict_proba(adata).to_numpy()
        )
        assert list(loaded.classes) == ["B", "NK", "T"]
        assert list(loaded.genes) == list(model.genes)
        assert (loaded.input, loaded.preset) == (given, name)
        if PRESETS[name].stochastic and given == learner_input(name):
            X = model.features.matrix(adata, given)
            np.testing.assert_array_equal(
                loaded.learner.sample_proba(X, 4, rng=1), model.learner.sample_proba(X, 4, rng=1)
            )


def test_the_file_is_safetensors_with_a_readable_json_document(cells, tmp_path):
    path = save_model(trained(cells, "mlp2", "pca"), tmp_path / "model.safetensors")
    with safe_open(str(path), framework="numpy") as fh:
        document = json.loads(fh.metadata()[DOCUMENT_KEY])
        names = set(fh.keys())
    assert document["format_version"] == FORMAT_VERSION
    assert document["classes"] == ["B", "NK", "T"] and len(document["genes"]) == 40
    assert document["preset"] == "mlp2" and document["input"] == "pca"
    assert document["normalisation"]["target_sum"] == 1e4
    assert document["learner"]["class"] == "scactive.MLPClassifier"
    params = document["learner"]["state"]
    assert params["hidden"] == {"kind": "tuple", "items": [256, 256]}
    assert any(n.startswith("learner.network_.") for n in names)  # the weights are tensors
    assert any(n.startswith("features.pca_.") for n in names)


def test_a_one_class_model_round_trips(cells, tmp_path):
    adata, features = cells
    model = TrainedModel(OneClassLearner("T"), features, "test", "pca")
    loaded = load_model(save_model(model, tmp_path / "one.safetensors"))
    assert list(loaded.predict(adata).unique()) == ["T"]


# -- files that would run code -------------------------------------------------------------
class _Payload:
    """Unpickling this runs a shell command that creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious_files(tmp_path):
    marker = tmp_path / "pwned"
    payload = {"learner": _Payload(marker), "features": None}
    joblib.dump(payload, tmp_path / "evil.joblib")
    joblib.dump(payload, tmp_path / "evil-compressed.joblib", compress=3)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(payload))
    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(payload))  # a pickle renamed
    return marker, sorted(tmp_path.glob("evil*"))


def test_pickle_and_joblib_files_are_refused_and_run_nothing(tmp_path):
    marker, files = _malicious_files(tmp_path)
    for path in files:
        with pytest.raises(InputError, match="earlier pickle format") as refused:
            load_model(path)
        assert "runs whatever code" in str(refused.value) and "--trust-pickle" in str(refused.value)
        assert not marker.exists(), path


def test_the_command_refuses_them_with_exit_2_and_runs_nothing(tmp_path):
    marker, files = _malicious_files(tmp_path)
    data = tmp_path / "cells.h5ad"
    ad.AnnData(np.ones((3, 4), np.float32)).write_h5ad(data)
    for path in files:
        result = CliRunner().invoke(
            app, ["predict", str(path), str(data), "--out", str(tmp_path / "out.h5ad")]
        )
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and "pickle" in result.output
        assert not marker.exists() and not (tmp_path / "out.h5ad").exists()


def test_an_old_model_is_read_only_with_trust_pickle(cells, tmp_path):
    adata, _ = cells
    model = trained(cells, "logreg", "scaled")
    path = tmp_path / "old.joblib"
    joblib.dump({"learner": model.learner, "features": model.features, "input": "scaled"}, path)
    with pytest.raises(InputError, match="earlier pickle format"):
        load_model(path)
    old = load_model(path, trust_pickle=True)
    np.testing.assert_array_equal(old.predict_proba(adata), model.predict_proba(adata))
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    out = tmp_path / "out.h5ad"
    result = CliRunner().invoke(app, ["predict", str(path), str(data), "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()
    result = CliRunner().invoke(
        app, ["predict", str(path), str(data), "--out", str(out), "--trust-pickle"]
    )
    assert result.exit_code == 0, result.output
    assert out.exists()


def _rewrite(path, out, *, document=None, tensors=None):
    """A copy of the model file ``path`` with its document or tensors edited."""
    with safe_open(str(path), framework="numpy") as fh:
        doc = json.loads(fh.metadata()[DOCUMENT_KEY])
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    if document is not None:
        document(doc)
    if tensors is not None:
        tensors(arrays)
    save_file(arrays, str(out), metadata={DOCUMENT_KEY: json.dumps(doc)})
    return out


@pytest.mark.parametrize(
    "cls", ["posix.system", "builtins.eval", "subprocess.Popen", "scactive.models._persist:load"]
)
def test_a_document_naming_another_class_is_refused_and_nothing_is_built(cells, tmp_path, cls):
    path = save_model(trained(cells, "logreg", "scaled"), tmp_path / "model.safetensors")
    marker = tmp_path / "pwned"

    def swap(doc):
        doc["learner"] = {
            "kind": "object",
            "class": cls,
            "state": {"args": {"kind": "tuple", "items": [f"touch {marker}"]}},
        }

    evil = _rewrite(path, tmp_path / "evil.safetensors", document=swap)
    with pytest.raises(InputError, match="not one scactive builds"):
        load_model(evil)
    assert not marker.exists()


# -- damaged files -------------------------------------------------------------------------
def _edits(tmp_path, path):
    def newer(doc):
        doc["format_version"] = FORMAT_VERSION + 1

    def wrong_shape(arrays):
        name = next(k for k in arrays if k.startswith("learner.coef_"))
        arrays[name] = np.zeros((arrays[name].shape[0], 7), arrays[name].dtype)

    def missing(arrays):
        del arrays[next(k for k in arrays if k.startswith("features.mean_"))]

    def genes(doc):
        doc["genes"] = doc["genes"][:-1]

    def kind(doc):
        doc["learner"]["kind"] = "__import__"

    def attribute(doc):
        doc["learner"]["state"]["__class__"] = "x"

    raw = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[: len(raw) // 2])
    header = tmp_path / "header.safetensors"
    header.write_bytes(raw[:20])
    (tmp_path / "text.safetensors").write_text("not a model")
    (tmp_path / "x.safetensors").write_text("x-ray notes")  # 'x' opens zlib data too
    (tmp_path / "empty.safetensors").write_bytes(b"")
    save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "other.safetensors"))
    return {
        "truncated": (cut, "cut short|cannot be read"),
        "header only": (header, "cut short|cannot be read"),
        "text": (tmp_path / "text.safetensors", "not a safetensors file"),
        "text opening with x": (tmp_path / "x.safetensors", "not a safetensors file"),
        "empty": (tmp_path / "empty.safetensors", "not a safetensors file"),
        "another program's": (tmp_path / "other.safetensors", "no scactive document"),
        "newer format": (
            _rewrite(path, tmp_path / "newer.safetensors", document=newer),
            "written by a newer scactive",
        ),
        "wrong shape": (
            _rewrite(path, tmp_path / "shape.safetensors", tensors=wrong_shape),
            "do not fit together",
        ),
        "missing array": (
            _rewrite(path, tmp_path / "missing.safetensors", tensors=missing),
            "lacks the array",
        ),
        "genes": (
            _rewrite(path, tmp_path / "genes.safetensors", document=genes),
            "gene list differs",
        ),
        "unknown kind": (_rewrite(path, tmp_path / "k.safetensors", document=kind), "unknown kind"),
        "dunder attribute": (
            _rewrite(path, tmp_path / "a.safetensors", document=attribute),
            "an attribute named",
        ),
    }


def test_damaged_files_are_refused_with_a_paragraph_and_exit_2(cells, tmp_path):
    adata, _ = cells
    path = save_model(trained(cells, "logreg", "scaled"), tmp_path / "model.safetensors")
    data = tmp_path / "cells.h5ad"
    adata.write_h5ad(data)
    for case, (bad, reason) in _edits(tmp_path, path).items():
        before = hashlib.sha256(bad.read_bytes()).hexdigest()
        with pytest.raises(InputError, match=reason) as refused:
            load_model(bad)
        assert "\n" not in str(refused.value), case
        out = tmp_path / "out.h5ad"
        result = CliRunner().invoke(app, ["predict", str(bad), str(data), "--out", str(out)])
        assert result.exit_code == 2, (case, result.output)
        assert "Traceback" not in result.output and not out.exists(), case
        assert hashlib.sha256(bad.read_bytes()).hexdigest() == before, case


# -- what cannot be written -----------------------------------------------------------------
def test_a_learner_scactive_cannot_rebuild_is_refused_rather_than_pickled(cells, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    adata, features = cells
    learner = make_learner(RandomForestClassifier(n_estimators=3), features, rng=0)
    learner.fit(features.transform(adata), adata.obs["cell_type"])
    target = tmp_path / "forest.safetensors"
    with pytest.raises(InputError, match="RandomForestClassifier.*data only"):
        save_model(TrainedModel(learner, features), target)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file


class NearestCentroid:
    """A plugin's learner: rebuildable from its attributes."""

    def fit(self, X, y):
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.centroids_ = np.stack([X[codes == k].mean(0) for k in range(len(self.classes_))])
        return self

    def predict_proba(self, X):
        distance = ((X[:, None, :] - self.centroids_[None]) ** 2).sum(-1)
        weight = np.exp(-(distance - distance.min(1, keepdims=True)))
        return weight / weight.sum(1, keepdims=True)


def test_a_registered_plugin_class_round_trips(cells, tmp_path):
    adata, features = cells
    learner = NearestCentroid().fit(features.transform(adata), adata.obs["cell_type"].to_numpy())
    model = TrainedModel(learner, features)
    with pytest.raises(InputError, match="register_model_class"):
        save_model(model, tmp_path / "plugin.safetensors")
    register_model_class(NearestCentroid, "tests.NearestCentroid")
    loaded = load_model(save_model(model, tmp_path / "plugin.safetensors"))
    assert isinstance(loaded.learner, NearestCentroid)
    np.testing.assert_array_equal(loaded.predict_proba(adata), model.predict_proba(adata))


# -- any edit of a file is read or refused, never a crash -----------------------------------
def _nodes(node, path=()):
    """Every place in a JSON document: paths of keys and list positions."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _nodes(value, (*path, i))


@pytest.mark.parametrize("name", ["mlp2", "chetah", "knn-transfer", "logreg-ovr"])
def test_edited_documents_are_read_or_refused_with_an_input_error(cells, tmp_path, name):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    path = save_model(trained(cells, name, learner_input(name)), tmp_path / "model.safetensors")
    with safe_open(str(path), framework="numpy") as fh:
        document = json.loads(fh.metadata()[DOCUMENT_KEY])
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    places = [p for p in _nodes(document) if p]
    values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**40), 2**40)
        | st.floats(allow_subnormal=False)
        | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["kind", "class", "state", "items", "tensor"]), inner)
        ),
        max_leaves=6,
    )

    @settings(
        max_examples=int(os.environ.get("SCACTIVE_FUZZ_EXAMPLES", 100)),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(place=st.sampled_from(places), value=values)
    def edit(place, value):
        doc = json.loads(json.dumps(document))
        target = doc
        for key in place[:-1]:
            target = target[key]
        target[place[-1]] = value
        out = tmp_path / "edited.safetensors"
        save_file(arrays, str(out), metadata={DOCUMENT_KEY: json.dumps(doc)})
        try:
            load_model(out)
        except InputError as err:
            assert "\n" not in str(err)

    edit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.safetensors", "model.safetensors"]


def test_any_bytes_are_read_as_a_model_or_refused_with_an_input_error(cells, tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    raw = save_model(trained(cells, "logreg", "scaled"), tmp_path / "m.safetensors").read_bytes()

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(cut=st.integers(0, len(raw)), junk=st.binary(max_size=64), at=st.integers(0, len(raw)))
    def damage(cut, junk, at):
        out = tmp_path / "damaged.safetensors"
        out.write_bytes((raw[:at] + junk + raw[at:])[:cut] if junk else raw[:cut])
        try:
            load_model(out)
        except InputError as err:
            assert "\n" not in str(err)

    damage()
