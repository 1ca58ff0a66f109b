"""Errors raised for user mistakes.

Every message names the problem, what was received, what was expected and how to fix it. The
CLI prints :class:`InputError` messages without a traceback and exits with code 2.
"""

from __future__ import annotations

import difflib
import errno
import os
import shutil
from collections.abc import Iterable


class InputError(ValueError):
    """Bad input from the user: a file, an argument or the content of the data."""


class DiskFull(InputError):
    """The disk (or the user's quota) holding a file is full: not damage, nothing was lost.

    Built by :func:`disk_full`; :func:`is_disk_full` tells such an error from others. The CLI
    exits with code 2 on it, the web app answers 507 (Insufficient Storage).
    """


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


#: Words of a full disk in errors that carry no errno: SQLite's SQLITE_FULL, HDF5's messages.
_FULL_TEXT = ("database or disk is full", "no space left on device", "disk quota exceeded")
#: SQLite's result codes of a full disk and of an I/O error (``sqlite3.Error.sqlite_errorcode``,
#: whose low byte is the primary code).
_SQLITE_FULL, _SQLITE_IOERR = 13, 10
#: Bytes left on a disk under which an I/O error there is taken for a full disk: SQLite says
#: "disk I/O error" when it cannot grow its shared-memory file for want of space.
LOW_SPACE = 1 << 20


def is_disk_full(err: BaseException | None, where: str | os.PathLike | None = None) -> bool:
    """Whether ``err`` (or an error it was raised from) says the disk or the quota is full:
    ``ENOSPC`` / ``EDQUOT``, SQLite's ``SQLITE_FULL``, or HDF5's wording of either; with
    ``where`` (the file written), also an I/O error while its disk has less than
    :data:`LOW_SPACE` bytes free."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        code = getattr(err, "sqlite_errorcode", None)
        if isinstance(err, DiskFull) or code == _SQLITE_FULL:
            return True
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(words in str(err).lower() for words in _FULL_TEXT):
            return True
        io_error = isinstance(err, OSError) and err.errno == errno.EIO
        if where is not None and (io_error or (code or 0) & 0xFF == _SQLITE_IOERR):
            return _free_bytes(where) < LOW_SPACE
        err = err.__cause__ or err.__context__
    return False


def _free_bytes(where: str | os.PathLike) -> float:
    """Bytes free to this user on the disk holding ``where`` (or its nearest existing
    folder); infinite when that cannot be told."""
    path = os.path.abspath(os.fspath(where))
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        return float(shutil.disk_usage(path).free)
    except OSError:
        return float("inf")


def disk_full(
    where: str | os.PathLike,
    err: BaseException | None = None,
    *,
    what: str = "",
    unsaved: str = "it was not written",
    kept: str = "nothing was lost",
) -> DiskFull:
    """The message of a full disk: which file's disk, what was not saved, what is kept.

    ``where`` names the file (or folder) being written, ``what`` says what it is (``"the
    session file "``); ``err`` is the error that said so (an ``EDQUOT`` one speaks of the
    quota).
    """
    quota = False
    while err is not None and not quota:
        quota = isinstance(err, OSError) and err.errno == errno.EDQUOT
        quota = quota or "quota" in str(err).lower()
        err = err.__cause__ or err.__context__
    full = "your disk quota there is used up" if quota else "the disk holding it is full"
    return DiskFull(
        f"Cannot write {what}'{os.fspath(where)}': {full}, so {unsaved}. This is not damage: "
        f"{kept}. Free some space on that disk (or choose a place on another one) and run "
        "the command again."
    )
