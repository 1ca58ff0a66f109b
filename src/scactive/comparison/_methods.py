"""The annotation methods a comparison can run, and what input each one reads.

Three kinds, one calling convention (:func:`run_method`):

- ``learner``: the active-learning learners (:data:`scactive.models.PRESETS`), on the scaled
  feature genes, as in the simulation.
- ``baseline``: the learners that declare ``annotator=True`` (their calls may be "unassigned":
  scmap, CHETAH, the kNN transfer, the CellTypist-style ``logreg-ovr``) on the log-normalised
  expression of the feature genes.
- ``tool``: the real tools through their adapters (CellTypist, Seurat, SingleR) on the
  log-normalised expression of all genes; each selects its own genes as published.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property

import anndata as ad
import numpy as np
import scipy.sparse as sp

from .._errors import InputError, unknown_name
from ..models import DEFAULT_MODEL, PRESETS, make_baseline, make_learner
from ..pp import FeatureSpace
from ._tools import TOOLS, adapter_class


@dataclass(frozen=True)
class Method:
    name: str
    kind: str
    description: str


@cache
def _tools() -> dict[str, type]:
    return {name: adapter_class(name) for name in TOOLS}


def methods() -> dict[str, Method]:
    """Every method by name."""
    out = {
        name: Method(name, "baseline" if p.annotator else "learner", p.description)
        for name, p in PRESETS.items()
    }
    for name, tool in TOOLS.items():
        out[name] = Method(name, "tool", tool.description)
    return out


def tool_unavailable(name: str) -> str | None:
    """Why the real tool ``name`` cannot run here, or ``None``."""
    return adapter_class(name).unavailable()


def tool_version(name: str) -> str:
    return adapter_class(name).version()


def resolve_methods(names: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The methods to run and notes on the ones left out.

    ``None`` means every baseline, the default MLP and every real tool that can run here
    (a missing tool is left out with a note). A tool named explicitly that cannot run is an
    error naming what to install.
    """
    known = methods()
    if names is None:
        baselines = [name for name, p in PRESETS.items() if p.annotator]
        chosen = [DEFAULT_MODEL, *baselines, *TOOLS]
        explicit = False
    else:
        chosen = list(dict.fromkeys(names))
        explicit = True
        if not chosen:
            raise InputError("methods is empty; name at least one method.")
        for name in chosen:
            if name not in known:
                raise unknown_name("method", name, known)
    notes = []
    runnable = []
    for name in chosen:
        why = tool_unavailable(name) if known[name].kind == "tool" else None
        if why is None:
            runnable.append(name)
        elif explicit:
            raise InputError(f"Method {name!r} cannot run here: {why}")
        else:
            notes.append(f"{name} left out: {why}")
    return runnable, notes


class CellSet:
    """Cells as every kind of method reads them, computed on first use.

    Parameters
    ----------
    adata
        Log-normalised expression of all genes (cells x genes).
    features
        The feature space fitted on the training pool (genes, scaling, PCA).
    labels
        The cells' labels, or ``None`` when unknown.
    """

    def __init__(
        self, adata: ad.AnnData, features: FeatureSpace, labels: np.ndarray | None = None
    ) -> None:
        self.adata = adata
        self.features = features
        self.labels = labels

    @cached_property
    def scaled(self) -> np.ndarray:
        """Scaled feature genes, the learners' input."""
        return self.features.transform(self.adata)

    @cached_property
    def log(self) -> np.ndarray:
        """Log-normalised feature genes, the baselines' input."""
        X = self.adata[:, self.features.genes_].X
        return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float32)

    def subset(self, positions: np.ndarray) -> CellSet:
        """The cells at ``positions``, reusing what was computed for this set."""
        child = CellSet(
            self.adata[positions],
            self.features,
            None if self.labels is None else self.labels[positions],
        )
        for name in ("scaled", "log"):
            if name in self.__dict__:
                child.__dict__[name] = self.__dict__[name][positions]
        return child

    def __len__(self) -> int:
        return self.adata.n_obs


def run_method(
    name: str, train: CellSet, test: CellSet, *, rng: np.random.Generator | int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Train method ``name`` on ``train`` and annotate ``test``.

    Returns
    -------
    The predicted labels (which may be "unassigned" or an intermediate type for methods with
    a rejection rule) and the method's confidence in each call.
    """
    kind = methods()[name].kind
    if train.labels is None:
        raise ValueError("the training cells need labels")
    types = np.unique(train.labels)
    if len(types) == 1:  # all a method can learn from one type is that type (most refuse it)
        return np.repeat(types, len(test)).astype(object), np.ones(len(test))
    if kind == "learner":
        learner = make_learner(name, train.features, rng=rng).fit(train.scaled, train.labels)
        proba = learner.predict_proba(test.scaled)
        return np.asarray(learner.classes_)[proba.argmax(axis=1)], proba.max(axis=1)
    if kind == "baseline":
        model = make_baseline(name, rng=rng).fit(train.log, train.labels)
        return np.asarray(model.predict(test.log)), np.asarray(model.predict_score(test.log))
    tool = _tools()[name]().fit(train.adata, train.labels)
    return np.asarray(tool.predict(test.adata)), np.asarray(tool.predict_score(test.adata))
