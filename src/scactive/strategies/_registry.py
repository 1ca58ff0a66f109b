"""Strategies by name."""

from __future__ import annotations

from collections.abc import Callable

from .._errors import unknown_name
from ._strategies import (
    BALD,
    DiversitySampling,
    QueryByCommittee,
    RandomSampling,
    Strategy,
    UncertaintySampling,
    WeightedKMeans,
)

#: Registered strategies: name -> factory taking keyword parameters.
STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "random": RandomSampling,
    "entropy": lambda **kw: UncertaintySampling(score="entropy", **kw),
    "margin": lambda **kw: UncertaintySampling(score="margin", **kw),
    "least-confidence": lambda **kw: UncertaintySampling(score="least_confidence", **kw),
    "qbc": QueryByCommittee,
    "bald": BALD,
    "diversity": DiversitySampling,
    "wkmc": WeightedKMeans,
}

#: The paper's five strategies, the default grid.
PAPER_STRATEGIES = ("random", "entropy", "qbc", "diversity", "wkmc")


def get_strategy(name: str, **params) -> Strategy:
    """The strategy registered as ``name``, built with ``params`` (e.g. ``use_pca=False``)."""
    if name not in STRATEGIES:
        raise unknown_name("strategy", name, STRATEGIES, plural="strategies")
    return STRATEGIES[name](**params)


def register_strategy(name: str, factory: Callable[..., Strategy]) -> None:
    """Add a strategy under ``name`` (a callable following the strategy contract)."""
    STRATEGIES[name] = factory
