"""Strategies and learners from other packages: entry points, loaded once per process."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger("scactive")

_loaded: set[str] = set()


def load_entry_points(group: str, register: Callable[[str, object], None]) -> None:
    """Call ``register(name, object)`` for every entry point of ``group``, the first time only.

    A plugin that fails to load is named in a warning and skipped: it must not break the
    strategies and learners that work.
    """
    if group in _loaded:
        return
    _loaded.add(group)
    from importlib.metadata import entry_points

    for point in entry_points(group=group):
        try:
            register(point.name, point.load())
        except Exception as err:  # noqa: BLE001 - any error of a third-party module
            logger.warning(
                "%s %r (%s) could not be loaded: %s", group, point.name, point.value, err
            )
