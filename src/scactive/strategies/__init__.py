"""Query strategies: pure scores, selectors, the strategies and their registry."""

from ._registry import PAPER_STRATEGIES, STRATEGIES, get_strategy, register_strategy
from ._scores import bald_scores, entropy_scores, least_confidence_scores, margin_scores
from ._select import kmeans_one_per_cluster, top_k
from ._strategies import (
    BALD,
    DiversitySampling,
    QueryByCommittee,
    RandomSampling,
    Strategy,
    UncertaintySampling,
    WeightedKMeans,
)

__all__ = [
    "BALD",
    "PAPER_STRATEGIES",
    "STRATEGIES",
    "DiversitySampling",
    "QueryByCommittee",
    "RandomSampling",
    "Strategy",
    "UncertaintySampling",
    "WeightedKMeans",
    "bald_scores",
    "entropy_scores",
    "get_strategy",
    "kmeans_one_per_cluster",
    "least_confidence_scores",
    "margin_scores",
    "register_strategy",
    "top_k",
]
