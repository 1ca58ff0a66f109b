"""Strategies for tiny budgets, from scikit-activeml: typical and covering cells, no learner.

TypiClust (Hacohen et al. 2022) clusters the pool into as many clusters as there will be
labeled cells and asks about the most typical (densest) cell of each cluster without a label;
core-set (Sener & Savarese 2018) asks about the cell farthest from every labeled one, greedily;
ProbCover (Yehuda et al. 2022) the cells whose balls of a chosen radius cover the most
uncovered cells; MaxHerding (Bae et al. 2025) a kernel version of that coverage, less
sensitive to its scale. All of them read the pool's PCA, need no learner and run from the very
first label, and scikit-activeml's implementations (``skactiveml.pool``) do the work: here
they get the cells through scactive's strategy contract.

ProbCover and MaxHerding compare every pair of cells they are given, so they see at most
``max_candidates`` unlabeled cells and as many labeled ones (5,000 each by default: 0.8 GB of
distances); TypiClust and core-set see up to 50,000 unlabeled cells and every labeled one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from .._random import derive_seed
from ._strategies import MAX_CANDIDATES, Strategy, labeled_and_candidates

#: Cells the pairwise strategies (ProbCover, MaxHerding) compare, per kind (unlabeled, labeled).
PAIRWISE_CANDIDATES = 5_000


@dataclass(frozen=True)
class SkactivemlStrategy(Strategy):
    """A scikit-activeml pool strategy that needs no learner, on the pool's PCA.

    Parameters
    ----------
    method
        The class name in ``skactiveml.pool`` (``"TypiClust"``, ``"CoreSet"``, ``"ProbCover"``,
        ``"MaxHerding"``).
    params
        Its parameters (``random_state`` is set from the call's generator).
    max_candidates
        Unlabeled cells it chooses among, at most (a random sample above); the labeled cells
        it sees are sampled to the same number for the pairwise strategies.
    use_pca
        Work on the pool's PCA (else on the features themselves).
    """

    method: str = "TypiClust"
    params: dict[str, Any] = field(default_factory=dict)
    max_candidates: int | None = MAX_CANDIDATES
    use_pca: bool = True
    needs_learner = False
    uses_embedding = True

    @property
    def name(self) -> str:
        return self.method.lower()

    def __call__(self, learner, X, *, labeled, batch_size, rng=None, embedding=None):
        candidates, batch_size, rng = self._checked(X, labeled, batch_size, rng, embedding)
        cells, n_known, points = labeled_and_candidates(
            self, X, labeled, candidates, embedding, rng, cap=self.method in PAIRWISE
        )
        y = np.full(len(cells), np.nan)
        y[:n_known] = 0.0  # which cells are labeled matters, not their types
        import skactiveml.pool

        query = getattr(skactiveml.pool, self.method)(**self.params, random_state=derive_seed(rng))
        picks = query.query(points, y, batch_size=batch_size)
        return cells[np.asarray(picks, dtype=np.int64)]


#: Strategies that compare every pair of cells (memory grows with the square of the cells).
PAIRWISE = {"ProbCover", "MaxHerding"}


#: name -> factory, as the registry takes them.
FACTORIES = {
    "typiclust": partial(SkactivemlStrategy, "TypiClust"),
    "coreset": partial(SkactivemlStrategy, "CoreSet"),
    "probcover": partial(SkactivemlStrategy, "ProbCover", max_candidates=PAIRWISE_CANDIDATES),
    "maxherding": partial(SkactivemlStrategy, "MaxHerding", max_candidates=PAIRWISE_CANDIDATES),
}


@dataclass(frozen=True)
class Hybrid(Strategy):
    """Typical cells first, uncertain ones once the types are covered: ``first`` while fewer
    than ``per_type`` cells are labeled per type found so far (the learner's classes), then
    ``then``. The switch reads only the labels, never validation cells.

    With the defaults (``maxherding``, then ``bald``, 10 per type) a 9-type pool switches at
    90 labels once every type is found, earlier while types are missing.
    """

    first: str = "maxherding"
    then: str = "bald"
    per_type: int = 10
    use_pca: bool = True
    name = "hybrid"
    needs_mc_draws = True  # the default ``then``; a stochastic learner is needed
    uses_embedding = True

    def __call__(self, learner, X, *, labeled, batch_size, rng=None, embedding=None):
        from ._registry import get_strategy, strategy_tags

        n_labeled = int(np.asarray(labeled, dtype=bool).sum())
        n_types = len(getattr(learner, "classes_", ()))
        chosen = self.first if n_labeled < self.per_type * max(n_types, 1) else self.then
        params = {"use_pca": self.use_pca} if strategy_tags(chosen).uses_embedding else {}
        strategy = get_strategy(chosen, **params)
        return strategy(
            learner, X, labeled=labeled, batch_size=batch_size, rng=rng, embedding=embedding
        )
