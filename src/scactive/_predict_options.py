"""The defaults and argument checks of :func:`scactive.predict`, light enough for the command
line to read when it starts (this module imports neither anndata nor scikit-learn)."""

from __future__ import annotations

import numpy as np

from ._errors import InputError

#: The call of a cell the model is not sure enough of (``scactive.io`` reads it as no label).
UNKNOWN = "unknown"
#: Below this probability of its most probable type a cell is called :data:`UNKNOWN`
#: (CellTypist's ``p_thres``: the call is kept when the model gives it better than even odds).
UNKNOWN_BELOW = 0.5
#: The fewest of the model's genes, as a fraction, the data must hold.
MIN_SHARED_GENES = 0.5


def check_predict_options(
    *,
    unknown_below: float,
    min_shared_genes: float,
    majority_vote: bool = False,
    over_clustering: object = None,
    cli: bool = False,
) -> None:
    """Refuse a threshold or gene fraction outside 0..1 (``min_shared_genes`` above 0), and
    clusters without majority voting; ``cli``: name the command-line options."""
    for name, value, low_open in (
        ("unknown_below", unknown_below, False),
        ("min_shared_genes", min_shared_genes, True),
    ):
        number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        if not number or not (0 < value <= 1 if low_open else 0 <= value <= 1):
            given = f"--{name.replace('_', '-')} {value!r}" if cli else f"{name}={value!r}"
            expected = "above 0 and at most 1" if low_open else "from 0 to 1"
            raise InputError(f"{given}; expected a fraction {expected}, e.g. 0.5.")
    if over_clustering is not None and not majority_vote:
        option = "--over-clustering" if cli else "over_clustering"
        raise InputError(
            f"{option} gives the clusters of majority voting; add "
            f"{'--majority-vote' if cli else 'majority_vote=True'}, or leave {option} out."
        )
