"""Strategies by name: the one list every part of scactive reads.

The grid, the annotation engine, ``compare``, the command line's help and the plot colours
all read this registry (and each strategy's declared needs, :func:`strategy_tags`); no other
module types a list of strategy names. A strategy of your own joins with one call:

>>> from scactive.strategies import register_strategy
>>> register_strategy("my-strategy", MyStrategy, color="#e377c2")  # doctest: +SKIP

Packages can also declare strategies as entry points in the group ``scactive.strategies``
(``name = "package.module:Factory"``); they are loaded on first use, in every process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .._errors import InputError, unknown_name
from .._plugins import load_entry_points
from ._badge import BADGE
from ._cold import ColdStart
from ._strategies import (
    BALD,
    DiversitySampling,
    QueryByCommittee,
    RandomSampling,
    Strategy,
    UncertaintySampling,
    WeightedKMeans,
)
from ._typicality import FACTORIES as _TYPICALITY
from ._typicality import Hybrid

#: Entry-point group of strategies declared by other packages.
ENTRY_POINT_GROUP = "scactive.strategies"

#: Registered strategies: name -> factory taking keyword parameters.
STRATEGIES: dict[str, Callable[..., Strategy]] = {}
#: The colour of each registered strategy in every plot.
STRATEGY_COLORS: dict[str, str] = {}
_BUILT_IN: set[str] = set()

#: Colours given, in turn, to strategies registered without one.
SPARE_COLORS = (
    "#9467bd", "#e377c2", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363",
)  # fmt: skip


@dataclass(frozen=True)
class StrategyTags:
    """What a strategy needs (declared by its class; see :class:`Strategy`)."""

    needs_learner: bool
    needs_mc_draws: bool
    uses_embedding: bool


def register_strategy(
    name: str,
    factory: Callable[..., Strategy],
    *,
    color: str | None = None,
    replace: bool = False,
) -> None:
    """Add a query strategy under ``name``.

    Parameters
    ----------
    name
        The name used by ``--strategies``, the results tables and the plots.
    factory
        Called with keyword parameters (none for the defaults) to build the strategy: usually
        a :class:`Strategy` subclass (a frozen dataclass when it has parameters). The
        strategy is called as ``strategy(learner, X, *, labeled, batch_size, rng,
        embedding=None)`` and returns ``batch_size`` distinct positions of unlabeled cells;
        subclassing :class:`Strategy` and writing ``select`` gives the checks for free.
    color
        Its colour in every figure (default: the next of :data:`SPARE_COLORS`).
    replace
        Allow replacing a strategy registered under ``name`` with another factory.

    A factory defined at module level (not a lambda) also reaches the worker processes of
    ``simulate(n_jobs=...)``.
    """
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"A strategy name is a non-empty string; got {name!r}.")
    if not callable(factory):
        raise InputError(f"The factory of strategy {name!r} is not callable: {factory!r}.")
    if name in STRATEGIES and STRATEGIES[name] is not factory and not replace:
        raise InputError(
            f"A strategy named {name!r} is registered already; pass replace=True to replace it "
            "or choose another name."
        )
    STRATEGIES[name] = factory
    if color is not None or name not in STRATEGY_COLORS:
        spare = len([n for n in STRATEGY_COLORS if n not in _BUILT_IN])
        STRATEGY_COLORS[name] = color or SPARE_COLORS[spare % len(SPARE_COLORS)]


#: Other names of registered strategies: the paper calls entropy sampling "uncertainty".
ALIASES = {"uncertainty": "entropy"}


def canonical_name(name: str) -> str:
    """The registered name ``name`` stands for (itself unless it is an alias)."""
    return ALIASES.get(name, name) if name not in STRATEGIES else name


def get_strategy(name: str, **params) -> Strategy:
    """The strategy registered as ``name`` (or an alias of it, see :data:`ALIASES`), built
    with ``params`` (e.g. ``use_pca=False``)."""
    _load_entry_points()
    name = canonical_name(name)
    if name not in STRATEGIES:
        raise unknown_name("strategy", name, STRATEGIES, plural="strategies")
    return STRATEGIES[name](**params)


def strategy_names() -> list[str]:
    """Every registered strategy, entry points of other packages included."""
    _load_entry_points()
    return list(STRATEGIES)


def strategy_tags(name: str) -> StrategyTags:
    """What the strategy ``name`` needs: a learner, MC draws, the embedding."""
    strategy = get_strategy(name)
    return StrategyTags(
        needs_learner=bool(getattr(strategy, "needs_learner", True)),
        needs_mc_draws=bool(getattr(strategy, "needs_mc_draws", False)),
        uses_embedding=bool(getattr(strategy, "uses_embedding", False)),
    )


def user_strategies() -> dict[str, tuple[Callable[..., Strategy], str]]:
    """The strategies registered at run time (not shipped, not entry points): name ->
    (factory, colour), for worker processes to register in turn."""
    _load_entry_points()
    return {n: (f, STRATEGY_COLORS[n]) for n, f in STRATEGIES.items() if n not in _BUILT_IN}


def _load_entry_points() -> None:
    def register(name: str, factory) -> None:
        register_strategy(name, factory)
        _BUILT_IN.add(name)  # every process loads entry points itself

    load_entry_points(ENTRY_POINT_GROUP, register)


def _shipped(name: str, factory: Callable[..., Strategy], color: str) -> None:
    register_strategy(name, factory, color=color)
    _BUILT_IN.add(name)


_shipped("random", RandomSampling, "#7f7f7f")
_shipped("entropy", partial(UncertaintySampling, score="entropy"), "#1f77b4")
_shipped("margin", partial(UncertaintySampling, score="margin"), "#17becf")
_shipped("least-confidence", partial(UncertaintySampling, score="least_confidence"), "#9edae5")
_shipped("bald", BALD, "#8c564b")
_shipped("qbc", QueryByCommittee, "#d62728")
_shipped("diversity", DiversitySampling, "#2ca02c")
_shipped("wkmc", WeightedKMeans, "#ff7f0e")
_shipped("cold-start", ColdStart, "#bcbd22")
for _name, _color in (
    ("typiclust", "#5254a3"),
    ("coreset", "#8ca252"),
    ("probcover", "#bd9e39"),
    ("maxherding", "#ad494a"),
):
    _shipped(_name, _TYPICALITY[_name], _color)
_shipped("hybrid", Hybrid, "#e7969c")
_shipped("badge", BADGE, "#6b6ecf")

#: The paper's five strategies.
PAPER_STRATEGIES = ("random", "entropy", "qbc", "diversity", "wkmc")
#: The default grid: the paper's strategies, BALD, and those made for tiny budgets
#: (MaxHerding was the best at 50 labels on pbmc3k, docs/learning-curves.md).
DEFAULT_STRATEGIES = (*PAPER_STRATEGIES, "bald", "typiclust", "maxherding", "hybrid")
