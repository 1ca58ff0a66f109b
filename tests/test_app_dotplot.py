"""The selected cell's dot plot through the server (mean and fraction expressing of marker and
neighbourhood genes per type or cluster), and why the model's sections are empty."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from starlette.testclient import TestClient

from conftest import make_counts
from scactive.app import open_session
from scactive.app._server import create_app
from scactive.loop import COLD_START_TYPES
from serving import DEADLINE

LOCAL = "http://127.0.0.1:8765"
#: The planted gene's column: counts only in the cells of type0.
PLANTED = 250


def planted_data():
    adata = make_counts(n_cells=150, n_genes=300, n_types=3)
    counts = adata.X.toarray()
    truth = adata.obs["cell_type"].astype(str).to_numpy()
    rng = np.random.default_rng(1)
    counts[:, PLANTED] = np.where(truth == "type0", rng.poisson(6.0, len(truth)), 0)
    adata.X = sp.csr_matrix(counts)
    adata.var_names = [*adata.var_names[:PLANTED], "ONLY0", *adata.var_names[PLANTED + 1 :]]
    # the log-normalised matrix, computed here independently: to 10^4 per cell, log1p
    log = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)
    return adata, log, truth


@pytest.fixture
def served(tmp_path):
    adata, log, truth = planted_data()
    session = open_session(adata, tmp_path / "d.scactive", markers={"type0": ["ONLY0", "G1"]})
    app = create_app(session, batch_size=4)
    app.state.trainer.wait(DEADLINE)
    with TestClient(app, base_url=LOCAL, headers={"Origin": LOCAL}) as client:
        client.session, client.log, client.truth = session, log, truth
        yield client
    session.close()


def expected(log, groups, n_groups, genes):
    """Mean and fraction above 0 per group (rows) and gene (columns), with numpy."""
    mean = np.array([log[groups == g][:, genes].mean(axis=0) for g in range(n_groups)])
    fraction = np.array([(log[groups == g][:, genes] > 0).mean(axis=0) for g in range(n_groups)])
    return mean, fraction


def columns_of(names, genes):
    return [list(names).index(g) for g in genes]


def test_before_two_types_the_rows_are_the_clusters(served):
    session, log = served.session, served.log
    first = session.labels()
    assert len(first) == 0
    reply = served.get("/api/dotplot", params={"cell": "3"})
    assert reply.status_code == 200
    plot = reply.json()
    clusters = session.map.clusters()
    n = int(clusters.max()) + 1
    assert plot["grouping"] == "clusters"
    assert [g["name"] for g in plot["groups"]] == [str(k) for k in range(n)]
    assert [g["n_cells"] for g in plot["groups"]] == np.bincount(clusters).tolist()
    # the markers first (as the markers table holds them), then the neighbourhood's genes
    assert plot["genes"][:2] == ["ONLY0", "G1"]
    assert plot["gene_sources"][:2] == ["marker", "marker"]
    assert "neighbourhood" in plot["gene_sources"]
    genes = columns_of(_names(session), plot["genes"])
    mean, fraction = expected(log, clusters, n, genes)
    np.testing.assert_allclose(plot["mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plot["fraction"], fraction, rtol=1e-12)
    np.testing.assert_allclose(plot["cell"]["values"], log[3, genes], rtol=1e-5, atol=1e-6)
    assert plot["cell"]["group"] == clusters[3] and plot["cell"]["cell"] == session.cells[3]
    # one type labeled is still fewer than two: clusters
    type0 = np.flatnonzero(served.truth == "type0")[:3]
    for p in type0:
        served.post("/api/answer", json={"cell": session.cells[p], "label": "type0"})
    assert served.get("/api/dotplot", params={"cell": "3"}).json()["grouping"] == "clusters"


def _names(session):
    return [str(g) for g in session._data.log.var_names]


def test_with_two_types_the_rows_are_the_types_and_the_planted_gene_is_theirs(served):
    session, log, truth = served.session, served.log, served.truth
    chosen = {t: np.flatnonzero(truth == t)[:4] for t in ("type0", "type1")}
    # answered straight into the session: no batch finishes, so no model (labels only)
    session.answer_many([(session.cells[p], t) for t, ps in chosen.items() for p in ps])
    cell = int(chosen["type1"][0])
    plot = served.get("/api/dotplot", params={"cell": str(cell)}).json()
    assert plot["grouping"] == "types"
    names = [g["name"] for g in plot["groups"]]
    assert names == ["type0", "type1"]  # the vocabulary's types that hold a cell
    assert [g["n_cells"] for g in plot["groups"]] == [4, 4]
    groups = np.full(len(truth), -1)
    for k, t in enumerate(names):
        groups[chosen[t]] = k
    genes = columns_of(_names(session), plot["genes"])
    mean, fraction = expected(log, groups, 2, genes)
    np.testing.assert_allclose(plot["mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plot["fraction"], fraction, rtol=1e-12)
    j = plot["genes"].index("ONLY0")
    assert plot["mean"][0][j] > 0 and plot["fraction"][0][j] == pytest.approx(
        (log[chosen["type0"], PLANTED] > 0).mean()
    )
    assert plot["mean"][1][j] == 0 and plot["fraction"][1][j] == 0  # only in type0
    assert plot["cell"]["group"] == 1
    np.testing.assert_allclose(plot["cell"]["values"], log[cell, genes], rtol=1e-5, atol=1e-6)
    assert plot["cell"]["values"][j] == 0
    assert plot["max_mean"] == pytest.approx(np.max(mean))


def test_a_trained_model_puts_every_cell_in_its_called_type(served):
    session, log, truth = served.session, served.log, served.truth
    picks = [(session.cells[p], t) for t in ("type0", "type1", "type2")
             for p in np.flatnonzero(truth == t)[:5]]  # fmt: skip
    session.answer_many(picks)
    session.train()
    plot = served.get("/api/dotplot", params={"cell": "0"}).json()
    called = session.predictions()["predicted"].to_numpy(object)
    for cell, label in picks:
        called[session.cells.get_loc(cell)] = label
    names = [g["name"] for g in plot["groups"]]
    groups = np.array([names.index(c) for c in called])
    assert [g["n_cells"] for g in plot["groups"]] == np.bincount(groups).tolist()
    genes = columns_of(_names(session), plot["genes"])
    mean, fraction = expected(log, groups, len(names), genes)
    np.testing.assert_allclose(plot["mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plot["fraction"], fraction, rtol=1e-12)


def test_the_dot_plot_is_a_read_under_the_guards_rules(served):
    # a GET from elsewhere: Host must be a loopback name, as for every route
    assert served.get("/api/dotplot?cell=1", headers={"Host": "evil.example"}).status_code == 403
    # a POST from another origin is refused before any route runs
    evil = {"Origin": "http://evil.example"}
    assert served.post("/api/dotplot?cell=1", json={}, headers=evil).status_code == 403
    assert served.post("/api/model-needs", json={}, headers=evil).status_code == 403
    assert served.post("/api/dotplot?cell=1", json={}).status_code == 405  # read only
    for bad, status in (("x", 400), ("-1", 400), ("", 400), ("150", 404), ("1e3", 400)):
        assert served.get("/api/dotplot", params={"cell": bad}).status_code == status, bad


def test_the_empty_sections_say_what_training_needs(served):
    session, truth = served.session, served.truth
    needs = served.get("/api/model-needs").json()
    assert needs["trained"] is False and needs["min_types"] == COLD_START_TYPES
    assert f"at least {COLD_START_TYPES} types" in needs["predictions"]
    assert needs["neighbours"] is not None
    one = [(session.cells[p], "type0") for p in np.flatnonzero(truth == "type0")[:2]]
    session.answer_many(one)
    needs = served.get("/api/model-needs").json()
    assert "now 2 labeled cells of 1 type" in needs["predictions"]
    assert needs["neighbours"] is None  # labeled cells exist: the neighbours show
    session.answer(session.cells[int(np.flatnonzero(truth == "type1")[0])], "type1")
    needs = served.get("/api/model-needs").json()
    assert needs["n_types"] == COLD_START_TYPES
    pending = served.get("/api/state").json()["pending"]
    assert needs["pending"] == len(pending)
    words = f"{len(pending)} cell" if pending else "New batch"
    assert words in needs["predictions"] and "types" in needs["predictions"]
    session.train()
    needs = served.get("/api/model-needs").json()
    assert needs["trained"] is True and needs["predictions"] is None
