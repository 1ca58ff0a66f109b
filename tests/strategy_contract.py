"""The contract every query strategy obeys, checked by the same code for shipped and new ones."""

from __future__ import annotations

import numpy as np
import pytest

from scactive import InputError


def check_strategy_contract(strategy, learner, X: np.ndarray, labeled: np.ndarray) -> None:
    """Unique, unlabeled, exactly ``batch_size`` picks; same rng, same picks; bad arguments
    raise clear errors; the whole rest of the pool can be asked for."""
    picks = strategy(learner, X, labeled=labeled, batch_size=9, rng=3)
    assert picks.shape == (9,)
    assert len(np.unique(picks)) == 9
    assert not labeled[picks].any()
    again = strategy(learner, X, labeled=labeled, batch_size=9, rng=3)
    np.testing.assert_array_equal(picks, again)
    with pytest.raises(InputError, match="larger than"):
        strategy(learner, X, labeled=labeled, batch_size=int((~labeled).sum()) + 1, rng=0)
    with pytest.raises(InputError, match="batch_size"):
        strategy(learner, X, labeled=labeled, batch_size=0, rng=0)
    with pytest.raises(InputError, match="labeled"):
        strategy(learner, X, labeled=labeled[:-1], batch_size=3, rng=0)
    # the whole rest of the pool can be asked for
    rest = int((~labeled).sum())
    assert len(np.unique(strategy(learner, X, labeled=labeled, batch_size=rest, rng=0))) == rest
