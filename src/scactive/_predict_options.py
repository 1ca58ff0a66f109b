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


def call_labels(
    predicted: np.ndarray,
    confidence: np.ndarray,
    unknown_below: float,
    *,
    levels: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> np.ndarray:
    """Each cell's call: its prediction where the confidence reaches ``unknown_below``, else
    :data:`UNKNOWN`. With ``levels`` (a hierarchy's per-level ``(labels, confidence)``, top
    level first, as :meth:`~scactive._hierarchy.Hierarchy.decode` gives them) the call is the
    finest level whose confidence reaches the threshold, so a cell sure to be a T cell but not
    of which subtype is called ``T cell``."""
    predicted = np.asarray(predicted, dtype=object)
    calls = np.where(np.asarray(confidence) >= unknown_below, predicted, UNKNOWN).astype(object)
    if levels:
        calls[:] = UNKNOWN
        for labels, level_confidence in levels:  # coarse to fine: the finest sure one wins
            sure = np.asarray(level_confidence) >= unknown_below
            calls[sure] = np.asarray(labels, dtype=object)[sure]
    return calls
