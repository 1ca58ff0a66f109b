"""Writing files without losing the user's: atomic writes, protected paths, folder locks.

Every file scactive writes goes through :func:`atomic_write`: the content lands in a uniquely
named temporary file beside the target and is renamed over it only when complete, so a crash,
a full disk or Ctrl-C leaves either the old file or the new one, never half of one, and two
writers never share a temporary name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ._errors import InputError

Writer = Callable[[Path], object]

#: The lock file :func:`folder_lock` keeps in an output folder.
LOCK_NAME = ".scactive.lock"


def atomic_write(path: str | os.PathLike, data: bytes | str | Writer) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it, then rename.

    ``data`` is the content (``str`` is written as UTF-8) or a function called with the
    temporary path that writes the file itself (``adata.write_h5ad``, ``joblib.dump``...).
    The parent folder is created if needed. Returns ``path``.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
    )
    tmp = Path(name)
    try:
        os.chmod(tmp, _file_mode())  # mkstemp creates 0600; give the usual umask-based mode
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def _file_mode() -> int:
    """Mode of a new file under the current umask (read without changing it when possible)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


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
) -> Path:
    """Refuse to write ``target`` where it would replace a file the user needs.

    ``protected`` holds ``(path, what)`` pairs: the input data, a session file... A target
    equal to one of them (also through a link), inside a protected folder, or a folder that
    holds one is refused with an :class:`InputError` naming both paths. Also refused: a
    target that is an existing folder or sits under a file. Returns the resolved target.
    """
    path = Path(target).expanduser().resolve()
    for item, what in protected:
        other = Path(item).expanduser().resolve()
        inside = other.is_dir() and other in path.parents
        holds = path in other.parents
        if _same(path, other) or inside or holds:
            raise InputError(
                f"{option} '{target}' would overwrite {what} '{other}'. Nothing was written; "
                f"choose another {option} path."
            )
    if path.is_dir():
        raise InputError(
            f"{option} '{target}' is a folder; give a file name inside it, such as "
            f"'{Path(target) / ('annotated' + (path.suffix or '.h5ad'))}'."
        )
    check_writable_parent(path, option=option, shown=target)
    return path


def check_writable_parent(
    path: str | os.PathLike, *, option: str = "--out", shown: object = None
) -> None:
    """Refuse a path whose nearest existing ancestor is a file or cannot be written into."""
    path = Path(path).expanduser().absolute()
    shown = path if shown is None else shown
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(
            f"{option} '{shown}' lies under '{ancestor}', which is a file, not a folder. "
            f"Choose another {option} path."
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(
            f"{option} '{shown}' cannot be written: no write permission in '{ancestor}'. "
            f"Choose a folder you can write to."
        )


def check_out_folder(path: str | os.PathLike, *, option: str = "--out") -> Path:
    """Refuse an output folder that is a file, lies under a file, or cannot be written."""
    folder = Path(path).expanduser()
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
    else:
        check_writable_parent(folder, option=option, shown=path)
    return folder


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, *, what: str = "run") -> Iterator[None]:
    """Hold ``folder/.scactive.lock`` while the block runs; a second holder is refused.

    The lock is an OS file lock (``filelock``): it is released when the process ends, even
    after ``kill -9``, so a stale lock never blocks a resumed run.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_NAME, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise InputError(
            f"Another scactive {what} is writing into '{folder}' right now. Wait for it to "
            "finish (running the same command then resumes it), or choose another --out folder."
        ) from None
    try:
        yield
    finally:
        lock.release()


_HELD: set[Path] = set()  # output folders this process holds the lock of


@contextlib.contextmanager
def run_lock(out: Path, *, what: str = "run") -> Iterator[None]:
    """Hold the lock of the output folder ``out`` for a run: a second run is refused.

    Taken again in the same process (a comparison running its simulation) it is held
    already. A run that wrote nothing leaves no lock file, and no folder it created.
    """
    out = Path(out)
    key = out.absolute()
    if key in _HELD:
        yield
        return
    new_folder = not out.exists()
    new_lock = not (out / LOCK_NAME).exists()
    with folder_lock(out, what=what):
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
            with contextlib.suppress(OSError):
                if new_lock and [p.name for p in out.iterdir()] == [LOCK_NAME]:
                    (out / LOCK_NAME).unlink()
                    if new_folder:
                        out.rmdir()


def is_empty(folder: Path) -> bool:
    """No file of the user's in ``folder`` (the lock file does not count)."""
    return not folder.exists() or all(p.name == LOCK_NAME for p in folder.iterdir())
