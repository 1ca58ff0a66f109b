"""scikit-learn's estimator checks over the MLP classifier and every baseline annotator.

Checks are skipped by name, each with its reason, only where they cannot apply: the
baselines with a rejection rule (scmap-cluster, scmap-cell, CHETAH) may answer
:data:`~scactive.models.UNASSIGNED` (CHETAH also an inner node), so with the checks' integer
labels their calls are an object array mixing numbers and strings, which the checks'
numeric comparisons and scikit-learn's metrics cannot take. The properties those checks
test are tested below on cell-type names instead. Everything else (input validation,
``n_features_in_``, sparse input, non-negative input for the baselines, cloning, pickling
of the plain classifiers...) runs as scikit-learn wrote it.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from scactive.models import (
    CellTypistLogReg,
    Chetah,
    KNNTransfer,
    LabelSpreading,
    MLPClassifier,
    ScmapCell,
    ScmapCluster,
    SelfTrainingMLP,
)

# Small and fast: one hidden layer of 8 units, 50 optimiser steps.
FAST_MLP = MLPClassifier(hidden=(8,), lr=1e-2, epochs=2, min_steps=50, max_steps=50, random_state=0)

FAST_SELF = SelfTrainingMLP(
    hidden=(8,), lr=1e-2, epochs=2, min_steps=50, max_steps=50, random_state=0
)

REJECTING = [ScmapCluster(), ScmapCell(), Chetah()]
PLAIN = [KNNTransfer(), CellTypistLogReg()]
SEMI = [FAST_SELF, LabelSpreading()]

_OBJECT_CALLS = (
    "predict may answer 'unassigned' (a rejection rule), so with integer labels it returns an "
    "object array of numbers and strings, which the check's assert_allclose cannot compare; "
    "tested on cell-type names in test_rejecting_baselines_are_consistent"
)
_REJECTING_SKIPS = {
    "check_classifiers_train": (
        "'unassigned' calls are not in classes_ and count as errors in the accuracy bound: "
        "a method with a rejection rule is not a plain classifier"
    ),
    "check_fit_score_takes_y": (
        "score is the accuracy of calls that may be 'unassigned', a string, which "
        "scikit-learn's metrics refuse to mix with the check's integer labels"
    ),
    "check_pipeline_consistency": (
        "compares score (accuracy of calls that may be 'unassigned', refused by scikit-learn's "
        "metrics with integer labels) and the object array of calls"
    ),
    "check_classifier_data_not_an_array": _OBJECT_CALLS,
    "check_estimators_pickle": _OBJECT_CALLS,
    "check_fit_idempotent": _OBJECT_CALLS,
    "check_methods_sample_order_invariance": _OBJECT_CALLS,
    "check_methods_subset_invariance": _OBJECT_CALLS,
    "check_supervised_y_2d": _OBJECT_CALLS,
}


_WEIGHTED_BATCHES = (
    "the MLP trains on mini-batches for a fixed number of steps: a weight scales a cell's "
    "loss, while a repeated cell also changes the batches, so the two fits differ; "
    "test_semi.py checks what weights do (a zero weight ignores a cell, unit weights change "
    "nothing)"
)


def expected_failed_checks(estimator) -> dict[str, str]:
    """The checks that do not apply to ``estimator``, each with its reason."""
    if isinstance(estimator, MLPClassifier):
        return {
            "check_sample_weight_equivalence_on_dense_data": _WEIGHTED_BATCHES,
            "check_sample_weight_equivalence_on_sparse_data": _WEIGHTED_BATCHES,
        }
    return dict(_REJECTING_SKIPS) if getattr(estimator, "_rejects", False) else {}


@parametrize_with_checks(
    [FAST_MLP, *SEMI, *REJECTING, *PLAIN], expected_failed_checks=expected_failed_checks
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_only_the_rejecting_baselines_skip_checks():
    assert all(e._rejects for e in REJECTING)
    assert not any(e._rejects for e in PLAIN)
    assert set(expected_failed_checks(FAST_MLP)) == {
        "check_sample_weight_equivalence_on_dense_data",
        "check_sample_weight_equivalence_on_sparse_data",
    }
    assert not any(expected_failed_checks(e) for e in PLAIN)


# -- what the skipped checks test, on cell-type names ------------------------------------------
def _log_expression(n_per_type: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-normalised Poisson counts of 3 types, each with 10 marker genes out of 60."""
    rng = np.random.default_rng(seed)
    y = np.repeat(["B cell", "NK", "T cell"], n_per_type)
    rates = np.full((len(y), 60), 0.5)
    for k in range(3):
        rates[y == y[k * n_per_type], 10 * k : 10 * k + 10] = 8.0
    counts = rng.poisson(rates)
    library = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return np.log1p(counts / library * 1e4), y


def _answers(model, X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return model.predict(X), model.predict_proba(X), model.predict_score(X)


def _assert_same(got, expected) -> None:
    assert (got[0] == expected[0]).all()
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-6)  # float32 arithmetic
    np.testing.assert_allclose(got[2], expected[2], rtol=1e-6)  # nan where scmap has none


@pytest.mark.parametrize("estimator", REJECTING, ids=lambda e: type(e).__name__)
def test_rejecting_baselines_are_consistent(estimator):
    X, y = _log_expression(20, seed=0)
    X_test, _ = _log_expression(10, seed=1)
    X_test[0] = 0.0  # a cell without counts: no call
    model = clone(estimator).fit(X, y)
    expected = _answers(model, X_test)
    types = set(model.classes_)
    assert expected[0][0] not in types  # UNASSIGNED, or a CHETAH node
    assert types & set(expected[0])

    _assert_same(_answers(pickle.loads(pickle.dumps(model)), X_test), expected)
    _assert_same(_answers(clone(estimator).fit(X, y).fit(X, y), X_test), expected)
    _assert_same(_answers(clone(estimator).fit(X.tolist(), list(y)), X_test.tolist()), expected)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        column = clone(estimator).fit(X, y[:, None])
    _assert_same(_answers(column, X_test), expected)
    order = np.random.default_rng(0).permutation(len(X_test))
    _assert_same(_answers(model, X_test[order]), [a[order] for a in expected])
    _assert_same(_answers(model, X_test[3:9]), [a[3:9] for a in expected])


@pytest.mark.parametrize("estimator", [*REJECTING, *PLAIN], ids=lambda e: type(e).__name__)
def test_baselines_refuse_negative_values_but_not_rounding(estimator):
    X, y = _log_expression(20, seed=0)
    X[X == 0] = -6e-8  # log values rebuilt from scaled float32 features
    model = clone(estimator).fit(X, y)
    X[2, 5] = -0.5  # z-scores, not log expression
    with pytest.raises(ValueError, match=r"Negative values .*cell 2, gene 5: -0\.5.*normalize"):
        model.predict(X)
    with pytest.raises(ValueError, match="Negative values"):
        clone(estimator).fit(sp.csr_matrix(X), y)
