"""Query strategies (paper section 2.3).

Every strategy is called as ``strategy(learner, X, *, labeled, batch_size, rng, embedding=None)``
and returns ``batch_size`` distinct positions of unlabeled cells. ``learner`` is fitted on the
labeled cells; ``X`` holds the features of all pool cells; ``embedding`` (optional) is a
low-dimensional view of the same cells (the pool PCA) that clustering strategies use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._checks import check_batch_size
from .._errors import InputError
from .._random import derive_seed
from ._scores import bald_scores, entropy_scores, least_confidence_scores, margin_scores
from ._select import kmeans_one_per_cluster, top_k

#: Unlabeled cells the costly strategies (MC dropout, k-means) choose among, at most.
MAX_CANDIDATES = 50_000

_UNCERTAINTY = {
    "entropy": entropy_scores,
    "margin": margin_scores,
    "least_confidence": least_confidence_scores,
}


class Strategy:
    """Base class: validates the call, restricts to unlabeled cells, maps picks back.

    A strategy declares what it needs, the way scikit-learn estimators declare tags; the grid,
    the engine, ``compare`` and the command line read these instead of lists of names:

    - ``needs_learner``: reads the predictions of a fitted learner (else it may run before
      any model exists, e.g. on the first cells of an annotation session);
    - ``needs_mc_draws``: calls the learner's ``sample_proba`` (MC dropout), which only
      stochastic learners have;
    - ``uses_embedding``: clusters the low-dimensional view of the pool, and takes a
      ``use_pca`` parameter (False: cluster the features themselves).

    A strategy whose cost grows faster than one forward pass (MC dropout, k-means) has a
    ``max_candidates`` parameter: above that many unlabeled cells it chooses among a random
    sample of them of that size (:data:`MAX_CANDIDATES` by default, ``None``: never), so a
    round over a million cells costs what one over 50,000 does; smaller pools are not sampled
    and give the picks they always gave.
    """

    name = "strategy"
    needs_learner: ClassVar[bool] = True
    needs_mc_draws: ClassVar[bool] = False
    uses_embedding: ClassVar[bool] = False
    max_candidates: int | None = None

    def __call__(
        self,
        learner,
        X: np.ndarray,
        *,
        labeled: np.ndarray,
        batch_size: int,
        rng: np.random.Generator | int | None = None,
        embedding: np.ndarray | None = None,
    ) -> np.ndarray:
        candidates, batch_size, rng = self._checked(X, labeled, batch_size, rng, embedding)
        emb = None if embedding is None else embedding[candidates]
        return self._pick(learner, X, candidates, emb, batch_size, rng)

    def _checked(self, X, labeled, batch_size, rng, embedding):
        """The call's checks: the unlabeled cells to choose among (a sample of at most
        ``max_candidates``), the batch size and the generator."""
        labeled = np.asarray(labeled, dtype=bool)
        if labeled.shape != (len(X),):
            raise InputError(
                f"labeled has shape {labeled.shape}; expected one flag per cell, ({len(X)},)."
            )
        candidates = np.flatnonzero(~labeled)
        batch_size = check_batch_size(batch_size)
        if batch_size > len(candidates):
            raise InputError(
                f"batch_size={batch_size} is larger than the {len(candidates)} unlabeled cells "
                "left in the pool. Use a smaller batch size or fewer rounds."
            )
        if embedding is not None and len(embedding) != len(X):
            raise InputError(f"embedding has {len(embedding)} rows; X has {len(X)}.")
        rng = np.random.default_rng(rng)
        limit = self.max_candidates
        if limit is not None and len(candidates) > max(limit, batch_size):
            candidates = np.sort(rng.choice(candidates, max(limit, batch_size), replace=False))
        return candidates, batch_size, rng

    def _pick(self, learner, X, candidates, embedding, k: int, rng) -> np.ndarray:
        """Positions into ``X`` of the picks among ``candidates`` (by :meth:`select`)."""
        picks = self.select(learner, X[candidates], embedding, k, rng)
        return candidates[np.asarray(picks, dtype=np.int64)]

    def select(self, learner, X, embedding, k: int, rng: np.random.Generator) -> np.ndarray:
        """Positions into the unlabeled cells ``X``; implemented by each strategy."""
        raise NotImplementedError


def _rows(strategy, X: np.ndarray, candidates: np.ndarray, embedding) -> np.ndarray | None:
    """The candidates' rows of ``X``, copied only when a clustering strategy clusters them
    (no embedding, or ``use_pca=False``): on the pool's PCA it needs none."""
    if strategy.use_pca and embedding is not None:
        return None
    return X[candidates]


def _space(X: np.ndarray, embedding: np.ndarray | None, use_pca: bool, rng) -> np.ndarray:
    if not use_pca:
        return X
    if embedding is not None:
        return embedding
    from sklearn.decomposition import PCA

    n_pcs = max(1, min(50, X.shape[0] - 1, X.shape[1]))
    return PCA(n_pcs, svd_solver="randomized", random_state=derive_seed(rng)).fit_transform(X)


def labeled_and_candidates(
    strategy, X: np.ndarray, labeled, candidates: np.ndarray, embedding, rng, *, cap: bool
) -> tuple[np.ndarray, int, np.ndarray]:
    """For a strategy that weighs the candidates against the labeled cells: the cells (the
    labeled first, at most as many as the candidates when ``cap``), how many are labeled, and
    their points (the pool's PCA, or their rows of ``X`` as :func:`_space` makes them)."""
    known = np.flatnonzero(np.asarray(labeled, dtype=bool))
    if cap and len(known) > len(candidates):
        known = np.sort(rng.choice(known, len(candidates), replace=False))
    cells = np.concatenate([known, candidates])
    if strategy.use_pca and embedding is not None:
        points = embedding[cells]  # no row of X read
    else:
        points = _space(X[cells], None, strategy.use_pca, rng)
    return cells, len(known), np.asarray(points, dtype=np.float64)


@dataclass(frozen=True)
class RandomSampling(Strategy):
    """Cells drawn uniformly at random: the baseline."""

    name = "random"
    needs_learner = False

    def select(self, learner, X, embedding, k, rng):
        return rng.choice(len(X), size=k, replace=False)

    def _pick(self, learner, X, candidates, embedding, k, rng):
        # the same draw as select, without copying the candidates' rows of X
        return candidates[rng.choice(len(candidates), size=k, replace=False)]


@dataclass(frozen=True)
class UncertaintySampling(Strategy):
    """Top-k uncertainty of one forward pass (``score``: entropy, margin, least_confidence)."""

    score: str = "entropy"

    @property
    def name(self) -> str:
        return self.score.replace("_", "-")

    def select(self, learner, X, embedding, k, rng):
        return top_k(_UNCERTAINTY[self.score](learner.predict_proba(X)), k, rng)

    def _pick(self, learner, X, candidates, embedding, k, rng):
        # score every cell and keep the candidates' scores: copying the candidates' rows
        # first costs more than predicting the few labeled cells too (0.6 s at 30,000 x 2,000)
        scores = _UNCERTAINTY[self.score](learner.predict_proba(X))[candidates]
        return candidates[np.asarray(top_k(scores, k, rng), dtype=np.int64)]


def _mc_draws(learner, X, n_draws: int, rng) -> np.ndarray:
    if not hasattr(learner, "sample_proba"):
        raise InputError(
            f"This strategy needs a learner with sample_proba (MC dropout), such as the MLP "
            f"presets; {type(learner).__name__} has none. Choose an MLP model or another "
            "strategy."
        )
    return learner.sample_proba(X, n_draws, rng=rng)


@dataclass(frozen=True)
class QueryByCommittee(Strategy):
    """MC-dropout committee: ``n_draws`` passes, top-k entropy of the mean prediction."""

    n_draws: int = 10
    max_candidates: int | None = MAX_CANDIDATES
    name = "qbc"
    needs_mc_draws = True

    def select(self, learner, X, embedding, k, rng):
        draws = _mc_draws(learner, X, self.n_draws, rng)
        return top_k(entropy_scores(draws.mean(axis=0)), k, rng)


@dataclass(frozen=True)
class BALD(Strategy):
    """MC-dropout committee scored by BALD (mutual information), top-k."""

    n_draws: int = 10
    max_candidates: int | None = MAX_CANDIDATES
    name = "bald"
    needs_mc_draws = True

    def select(self, learner, X, embedding, k, rng):
        return top_k(bald_scores(_mc_draws(learner, X, self.n_draws, rng)), k, rng)


@dataclass(frozen=True)
class DiversitySampling(Strategy):
    """k-means (k-means++ seeding, k = batch size), one random cell from each cluster."""

    use_pca: bool = True
    max_candidates: int | None = MAX_CANDIDATES
    name = "diversity"
    needs_learner = False
    uses_embedding = True

    def select(self, learner, X, embedding, k, rng):
        return kmeans_one_per_cluster(_space(X, embedding, self.use_pca, rng), k, rng)

    def _pick(self, learner, X, candidates, embedding, k, rng):
        return candidates[
            self.select(learner, _rows(self, X, candidates, embedding), embedding, k, rng)
        ]


@dataclass(frozen=True)
class WeightedKMeans(Strategy):
    """The ``factor`` x batch most uncertain cells (entropy), then diversity sampling on them."""

    factor: int = 5
    use_pca: bool = True
    name = "wkmc"
    uses_embedding = True

    def select(self, learner, X, embedding, k, rng):
        shortlist = top_k(
            entropy_scores(learner.predict_proba(X)), min(len(X), self.factor * k), rng
        )
        space = _space(X, embedding, self.use_pca, rng)[shortlist]
        return shortlist[kmeans_one_per_cluster(space, k, rng)]

    def _pick(self, learner, X, candidates, embedding, k, rng):
        # as select, scoring every cell (cheaper than copying the candidates' rows first)
        scores = entropy_scores(learner.predict_proba(X))[candidates]
        shortlist = top_k(scores, min(len(candidates), self.factor * k), rng)
        rows = _rows(self, X, candidates, embedding)
        space = _space(rows, embedding, self.use_pca, rng)[shortlist]
        return candidates[shortlist[kmeans_one_per_cluster(space, k, rng)]]
