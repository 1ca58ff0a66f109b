"""Query strategies: pure scores, selectors, the strategies and their registry."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    attributes={
        "._registry": (
            "DEFAULT_STRATEGIES",
            "PAPER_STRATEGIES",
            "STRATEGIES",
            "STRATEGY_COLORS",
            "StrategyTags",
            "get_strategy",
            "register_strategy",
            "strategy_names",
            "strategy_tags",
        ),
        "._badge": ("BADGE", "gradient_embedding"),
        "._cold": (
            "ColdStart",
            "MarkerColdStart",
            "cold_start",
            "marker_positions",
            "marker_scores",
            "typicality",
        ),
        "._scores": (
            "bald_scores",
            "entropy_scores",
            "least_confidence_scores",
            "margin_scores",
        ),
        "._select": ("kmeans_nearest_centre", "kmeans_one_per_cluster", "top_k"),
        "._strategies": (
            "BALD",
            "DiversitySampling",
            "QueryByCommittee",
            "RandomSampling",
            "Strategy",
            "UncertaintySampling",
            "WeightedKMeans",
        ),
    },
)
