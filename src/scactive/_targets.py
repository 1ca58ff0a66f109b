"""Where a file may be written: the checks of an output path made before any work, and the
messages of a write the system refuses.

A target is refused when it would replace a file the user needs (the input data, a session
file), is a folder or lies under a file, is a special file that cannot take the output (a
named pipe, a device, a socket: never replaced), has a name too long for its file system,
or lies where nothing can be written (no permission, a read-only disk, ``/proc``, ``/sys``).
Each refusal is one :class:`~scactive._errors.InputError` naming the option, the path and
the fix; a full disk is a :class:`~scactive._errors.DiskFull`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ._errors import InputError, disk_full, is_disk_full

#: The target naming standard output, where a stream may go.
STDOUT = "-"
#: Bytes a file name may have on common file systems (ext4, xfs, btrfs, tmpfs).
NAME_MAX = 255
#: Bytes a whole path may have (Linux's ``PATH_MAX``, its final zero byte included).
PATH_MAX = 4096
#: Kinds of existing targets that are not regular files, by ``stat.S_IFMT``.
SPECIAL_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
#: The special kinds a stream is written into in place.
STREAMED_KINDS = (stat.S_IFIFO, stat.S_IFCHR)
#: Folders of the kernel's own files, where no output belongs.
KERNEL_FOLDERS = (Path("/proc"), Path("/sys"))


def shown_path(path: str | os.PathLike) -> str:
    """How a target is named to the user: its path, or ``standard output`` for ``-``."""
    return "standard output" if os.fspath(path) == STDOUT else os.fspath(path)


def file_kind(path: str | os.PathLike) -> int | None:
    """``stat.S_IFMT`` of what ``path`` names (links followed), or None when it is missing or
    cannot be looked at (the write then says why)."""
    try:
        return stat.S_IFMT(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None


def _name(shown: object, option: str | None) -> str:
    return f"{option} '{shown}'" if option else f"'{shown}'"


def not_regular(shown: object, kind: int, *, stream: bool, option: str | None = None) -> str:
    """The message of a target that is a special file, which is never replaced."""
    why = (
        f"{SPECIAL_KINDS[kind]} cannot be written into; give a regular file, a named pipe, "
        f"or {STDOUT} for standard output"
        if stream
        else "this output needs a regular file it can seek in (only a CSV table can be "
        "written into a pipe or a device); give the path of a regular file"
    )
    return (
        f"{_name(shown, option)} is {SPECIAL_KINDS[kind]}, not a regular file, and scactive "
        f"never replaces one: {why}. Nothing was written."
    )


def write_refused(
    err: BaseException, path: str | os.PathLike, *, option: str | None = None, shown=None
) -> InputError:
    """The message of a write to ``path`` that the system refused with ``err``: a full disk
    (:class:`~scactive._errors.DiskFull`), a name too long, another file system, a kernel
    folder, no permission..."""
    shown = path if shown is None else shown
    if is_disk_full(err, path):
        return disk_full(shown, err)
    name = _name(shown, option)
    code = getattr(err, "errno", None)
    reason = getattr(err, "strerror", None) or str(err)
    if code == errno.ENAMETOOLONG:
        return _too_long(name, reason)
    if code == errno.EXDEV:
        return InputError(
            f"{name} cannot be replaced in one step: it lies on another file system than the "
            "folder it is in (a file mounted over that path?). Nothing was written; choose a "
            "path in an ordinary folder."
        )
    kernel = _kernel_folder(Path(os.path.abspath(os.fspath(path))))
    if kernel is not None:
        return InputError(
            f"{name} cannot be written ({reason}): '{kernel}' holds the kernel's own files, "
            "not a place for yours. Nothing was written; choose a path in one of your folders."
        )
    return InputError(
        f"{name} cannot be written ({reason}). Nothing was written; choose a folder you can "
        "write to."
    )


def _too_long(name: str, reason: str) -> InputError:
    return InputError(
        f"{name} cannot be written: the name is too long ({reason}; a name may have "
        f"{NAME_MAX} bytes at most, a path {PATH_MAX - 1}). Nothing was written; choose a "
        "shorter name."
    )


def _kernel_folder(path: Path) -> Path | None:
    return next((k for k in KERNEL_FOLDERS if k == path or k in path.parents), None)


def check_name_lengths(path: Path, *, option: str | None = None, shown: object = None) -> None:
    """Refuse a path with a name longer than :data:`NAME_MAX` bytes, or longer than
    :data:`PATH_MAX` as a whole, before the system is asked about it."""
    shown = path if shown is None else shown
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > NAME_MAX:
        reason = f"one of its names has {longest} bytes"
    elif len(os.fsencode(os.fspath(path))) >= PATH_MAX:
        reason = f"the path has {len(os.fsencode(os.fspath(path)))} bytes"
    else:
        return
    raise _too_long(_name(shown, option), reason)


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    with contextlib.suppress(OSError):
        return a.exists() and b.exists() and os.path.samefile(a, b)
    return False


def check_target(
    target: str | os.PathLike,
    protected: Iterable[tuple[str | os.PathLike, str]],
    *,
    option: str = "--out",
    stream: bool = False,
) -> Path:
    """Refuse to write ``target`` where it would replace a file the user needs.

    ``protected`` holds ``(path, what)`` pairs: the input data, a session file... A target
    equal to one of them (also through a link), inside a protected folder, or a folder that
    holds one is refused with an :class:`InputError` naming both paths. Also refused: a
    target that is an existing folder, sits under a file, has a name too long, lies where
    nothing can be written, or is a special file (with ``stream=True`` a named pipe or
    character device is taken as it is, and ``-`` stands for standard output). Returns the
    resolved target (a special file: as given).
    """
    if stream and os.fspath(target) == STDOUT:
        return Path(STDOUT)
    given = Path(target).expanduser()
    check_name_lengths(given, option=option, shown=target)
    kind = file_kind(given)
    if kind in SPECIAL_KINDS:
        if stream and kind in STREAMED_KINDS:
            return given
        raise InputError(not_regular(target, kind, stream=stream, option=option))
    try:
        path = given.resolve()
        for item, what in protected:
            other = Path(item).expanduser().resolve()
            inside = other.is_dir() and other in path.parents
            holds = path in other.parents
            if _same(path, other) or inside or holds:
                raise InputError(
                    f"{option} '{target}' would overwrite {what} '{other}'. Nothing was "
                    f"written; choose another {option} path."
                )
        if path.is_dir():
            raise InputError(
                f"{option} '{target}' is a folder; give a file name inside it, such as "
                f"'{Path(target) / ('annotated' + (path.suffix or '.h5ad'))}'."
            )
    except OSError as err:
        raise write_refused(err, given, option=option, shown=target) from err
    check_writable_parent(path, option=option, shown=target)
    return path


def check_writable_parent(
    path: str | os.PathLike, *, option: str = "--out", shown: object = None
) -> None:
    """Refuse a path whose nearest existing ancestor is a file or cannot be written into:
    no permission, a read-only or full disk, a kernel folder (tried with a file made there
    and removed at once, since permissions alone do not tell, for root least of all)."""
    path = Path(path).expanduser().absolute()
    shown = path if shown is None else shown
    check_name_lengths(path, option=option, shown=shown)
    ancestor = path.parent
    try:
        while not ancestor.exists():
            ancestor = ancestor.parent
        is_folder = ancestor.is_dir()
    except OSError as err:
        raise write_refused(err, path, option=option, shown=shown) from err
    if not is_folder:
        raise InputError(
            f"{option} '{shown}' lies under '{ancestor}', which is a file, not a folder. "
            f"Choose another {option} path."
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(
            f"{option} '{shown}' cannot be written: no write permission in '{ancestor}'. "
            f"Choose a folder you can write to."
        )
    _try_writing(ancestor, path, option=option, shown=shown)


def _try_writing(folder: Path, path: Path, *, option: str, shown: object) -> None:
    """Make a file in ``folder`` and remove it: refuse ``path`` when that fails."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".scactive-probe.")
    except OSError as err:
        raise write_refused(err, path, option=option, shown=shown) from err
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_out_folder(path: str | os.PathLike, *, option: str = "--out") -> Path:
    """Refuse an output folder that is a file, lies under a file, or cannot be written."""
    folder = Path(path).expanduser()
    check_name_lengths(folder, option=option, shown=path)
    if folder.exists() and not folder.is_dir():
        raise InputError(
            f"{option} '{path}' is an existing file, not a folder. Choose a new or empty "
            f"folder for the results."
        )
    if folder.is_dir():
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(
                f"{option} '{path}' cannot be written: no write permission. Choose a folder "
                "you can write to."
            )
        _try_writing(folder, folder, option=option, shown=path)
    else:
        check_writable_parent(folder, option=option, shown=path)
    return folder
