"""The active-learning loop: label state, oracles and the loop itself."""

from ._loop import LoopResult, active_learning
from ._oracle import SimulatedOracle
from ._state import LabelState

__all__ = ["LabelState", "LoopResult", "SimulatedOracle", "active_learning"]
