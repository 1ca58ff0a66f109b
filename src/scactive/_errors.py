"""Errors raised for user mistakes.

Every message names the problem, what was received, what was expected and how to fix it. The
CLI prints :class:`InputError` messages without a traceback and exits with code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """Bad input from the user: a file, an argument or the content of the data."""


class ToolUnavailable(InputError):
    """An external annotation tool cannot run here; the message says what to install."""


class ToolError(RuntimeError):
    """An external annotation tool failed; the message ends with the tail of its error output."""


def unknown_name(kind: str, name: str, valid: Iterable[str], *, plural: str = "") -> InputError:
    """Build the error for a name that is not one of ``valid``, with a close match if any."""
    valid = sorted(valid)
    hint = difflib.get_close_matches(name, valid, n=1)
    did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
    return InputError(
        f"Unknown {kind} {name!r}.{did_you_mean} Valid {plural or kind + 's'}: "
        f"{', '.join(map(repr, valid))}."
    )
