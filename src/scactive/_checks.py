"""Checks of arguments shared by every public entry point, each written once."""

from __future__ import annotations

import numpy as np

from ._errors import InputError


def is_whole(value) -> bool:
    """A whole number (``int`` or numpy integer), not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_batch_size(
    value, *, name: str = "batch_size", most: int | None = None, error: type = InputError
) -> int:
    """``value`` as an int: the cells of one batch, a whole number from 1 (up to ``most``).

    ``name`` is the argument's name in the message: a keyword (``batch_size=0``) or a
    command-line option (``--batch-size 0``).
    """
    if is_whole(value) and value >= 1 and (most is None or value <= most):
        return int(value)
    expected = "a whole number >= 1" if most is None else f"a whole number from 1 to {most}"
    given = f"{name} {value!r}" if name.startswith("--") else f"{name}={value!r}"
    raise error(f"{given}; expected {expected}.")
