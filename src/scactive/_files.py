"""Writing files without losing the user's: atomic writes, protected paths, folder locks.

Every file scactive writes goes through :func:`atomic_write`: the content lands in a uniquely
named temporary file beside the target and is renamed over it only when complete, so a crash,
a full disk or Ctrl-C leaves either the old file or the new one, never half of one, and two
writers never share a temporary name. Inside :func:`written_together` the renames wait for the
end of the block, so files written together (an h5ad and its CSV) land together or not at all.

A target that exists and is not a regular file is never replaced: a table may be written into
a named pipe or a character device in place (``/dev/stdout``, a shell's ``>(...)``; ``-`` is
standard output), anything else is refused. A write the system refuses (a full disk, a name too
long, a read-only or kernel file system) is an :class:`~scactive._errors.InputError` that names
the file; a full disk is a :class:`~scactive._errors.DiskFull`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ._errors import InputError, is_disk_full
from ._targets import (  # noqa: F401 - the checks of a target, where writers look for them
    NAME_MAX,
    SPECIAL_KINDS,
    STDOUT,
    STREAMED_KINDS,
    check_out_folder,
    check_target,
    check_writable_parent,
    file_kind,
    not_regular,
    shown_path,
    write_refused,
)

Writer = Callable[[Path], object]

#: The lock file :func:`folder_lock` keeps in an output folder.
LOCK_NAME = ".scactive.lock"
_STAGED: contextvars.ContextVar[list | None] = contextvars.ContextVar("staged", default=None)


def atomic_write(
    path: str | os.PathLike, data: bytes | str | Writer, *, stream: bool = False
) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it, then rename.

    ``data`` is the content (``str`` is written as UTF-8) or a function called with the
    temporary path that writes the file itself (``adata.write_h5ad``, ``joblib.dump``...).
    The parent folder is created if needed. With ``stream=True`` (a table, read front to back)
    a target that is a named pipe or character device is written into in place, and ``-``
    is standard output; without, such a target is refused. Returns ``path``.

    Raises
    ------
    InputError
        The target is a special file, or the system refused the write (the message names the
        file and why); :class:`~scactive._errors.DiskFull` for a full disk or quota. Nothing is
        left behind, and an existing target is kept as it was.
    """
    if stream and os.fspath(path) == STDOUT:
        item: _Stream | _Replacement = _Stream(None, data)
    else:
        path = Path(path).expanduser()
        kind = file_kind(path)
        if kind in SPECIAL_KINDS:
            if not (stream and kind in STREAMED_KINDS):
                raise InputError(not_regular(path, kind, stream=stream))
            item = _Stream(path, data)
        else:
            item = _Replacement(path, data)
    staged = _STAGED.get()
    if staged is None:
        item.commit()
    else:
        staged.append(item)
    return Path(path)


@contextlib.contextmanager
def written_together() -> Iterator[None]:
    """Hold back the renames of the :func:`atomic_write` calls in the block until it ends.

    Each file is written to its temporary file at once (a full disk fails there, before any
    target is replaced); when the block ends without error every target is replaced, streams
    last; an error removes every temporary file and replaces nothing. Should a rename itself
    fail, the message names the files written before it. A nested block joins the outer one.
    """
    if _STAGED.get() is not None:
        yield
        return
    staged: list = []
    token = _STAGED.set(staged)
    try:
        yield
    except BaseException:
        for item in staged:
            item.discard()
        raise
    finally:
        _STAGED.reset(token)
    _commit_all(sorted(staged, key=lambda item: isinstance(item, _Stream)))


def _commit_all(items: list) -> None:
    done: list[str] = []
    for i, item in enumerate(items):
        try:
            item.commit()
        except BaseException as err:
            for rest in items[i + 1 :]:
                rest.discard()
            if not done or not isinstance(err, InputError):
                raise
            missing = ", ".join(str(rest.shown) for rest in items[i:])
            raise type(err)(
                f"{err} Written before this failed: {', '.join(done)}; not written: {missing}."
            ) from err
        done.append(str(item.shown))


class _Replacement:
    """A regular target: its content in a temporary file beside it, renamed over it."""

    def __init__(self, path: Path, data: bytes | str | Writer) -> None:
        self.path = self.shown = path
        self.tmp: Path | None = None
        try:
            make_folder(path.parent, shown=path)
            prefix, suffix = _temp_affixes(path)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
            self.tmp = Path(name)
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), _file_mode())  # mkstemp makes 0600: the umask's mode
                if not callable(data):
                    fh.write(data.encode("utf-8") if isinstance(data, str) else data)
                    fh.flush()
                    os.fsync(fh.fileno())
            if callable(data):
                data(self.tmp)
        except BaseException as err:
            self.discard()
            _raise_refused(err, path)
            raise

    def commit(self) -> None:
        try:
            os.replace(self.tmp, self.path)
        except OSError as err:
            self.discard()
            raise write_refused(err, self.path) from err
        self.tmp = None

    def discard(self) -> None:
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()
            self.tmp = None


class _Stream:
    """A target written into in place: a named pipe, a character device, standard output."""

    def __init__(self, path: Path | None, data: bytes | str | Writer) -> None:
        self.path, self.data = path, data
        self.shown = shown_path(STDOUT if path is None else path)

    def commit(self) -> None:
        data, shown = self.data, self.shown
        try:
            if self.path is not None and callable(data):
                data(self.path)  # opened for writing: never created, never replaced
            elif self.path is not None:
                with open(self.path, "wb") as fh:
                    fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            else:
                _to_stdout(data)
        except BrokenPipeError as err:
            raise InputError(
                f"The reader of {shown} closed it before the whole file was written; "
                "keep the reading program open to the end, or write to a file instead."
            ) from err
        except BaseException as err:
            _raise_refused(err, self.path or Path(STDOUT), shown=shown)
            raise

    def discard(self) -> None:
        """Nothing is written into a stream before :meth:`commit`."""


def _to_stdout(data: bytes | str | Writer) -> None:
    """Copy ``data`` to standard output (a writer writes into a temporary file first)."""
    sys.stdout.flush()
    out = getattr(sys.stdout, "buffer", None)
    if not callable(data):
        content = data.encode("utf-8") if isinstance(data, str) else data
        out.write(content) if out is not None else sys.stdout.write(content.decode("utf-8"))
    else:
        fd, name = tempfile.mkstemp(prefix=".scactive-stdout.")
        os.close(fd)
        try:
            try:
                data(Path(name))
            except BaseException as err:  # the temporary folder's disk, say
                _raise_refused(err, Path(name))
                raise
            with open(name, "rb") as fh:
                if out is not None:
                    shutil.copyfileobj(fh, out)
                else:
                    sys.stdout.write(fh.read().decode("utf-8"))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)
    sys.stdout.flush()


def _raise_refused(err: BaseException, path: Path, *, shown: object = None) -> None:
    """Raise the message of a write the system refused (or of a full disk), if it is one."""
    if isinstance(err, InputError) or not isinstance(err, Exception):
        return
    if isinstance(err, OSError) or is_disk_full(err):
        raise write_refused(err, path, shown=shown) from err


def _temp_affixes(path: Path) -> tuple[str, str]:
    """Prefix and suffix of a temporary file beside ``path``: its name shortened so that the
    temporary name fits in :data:`NAME_MAX` bytes, its ending kept (a writer may read it)."""
    suffix = path.suffix if len(os.fsencode(path.suffix)) <= 16 else ""
    room = NAME_MAX - len(os.fsencode(suffix)) - 24  # dot, random part, ".tmp", margin
    stem = os.fsencode(path.name[: len(path.name) - len(suffix)])[:room]
    return f".{os.fsdecode(stem)}.", f".tmp{suffix}"


def make_folder(folder: str | os.PathLike, *, shown: object = None) -> Path:
    """Create ``folder`` and its parents if missing; a refusal is an :class:`InputError`
    naming ``shown`` (default: the folder)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_refused(err, folder, shown=shown) from err
    return folder


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


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, *, what: str = "run") -> Iterator[None]:
    """Hold ``folder/.scactive.lock`` while the block runs; a second holder is refused.

    The lock is an OS file lock (``filelock``): it is released when the process ends, even
    after ``kill -9``, so a stale lock never blocks a resumed run.
    """
    from filelock import FileLock, Timeout

    folder = make_folder(folder)
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
