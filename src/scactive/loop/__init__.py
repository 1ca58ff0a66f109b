"""The active-learning loop: label state, oracles and the loop itself."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    attributes={
        "._loop": ("LoopResult", "active_learning"),
        "._oracle": ("SimulatedOracle",),
        "._state": ("LabelState",),
    },
)
