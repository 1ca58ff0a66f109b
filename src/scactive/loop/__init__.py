"""The active-learning engine: label state, oracles, the engine and the simulation loop."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    attributes={
        "._engine": ("COLD_START_TYPES", "Engine"),
        "._loop": ("LoopResult", "active_learning"),
        "._oracle": ("Oracle", "SimulatedOracle", "StoreOracle"),
        "._state": ("KINDS", "LabelState"),
    },
)
