"""Where a session's exports go, and the files an export may never replace.

The app writes its exports into a folder named after the session file
(``cells.scactive`` -> ``cells.scactive.export/``), so they can never collide with the input
data or the session itself; an existing export there is kept, and the next one gets a numbered
name (``annotated-2.h5ad``), unless the caller asks to overwrite. Every export target, the app's
or one named by the user, is checked against the protected files first.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

from .._errors import InputError
from .._files import check_target

#: File names inside the export folder, by what they hold.
EXPORT_NAMES = {"h5ad": "annotated.h5ad", "csv": "labels.csv", "model": "model.joblib"}
#: Files SQLite keeps beside a session file while it is open.
SIDE_FILES = ("-wal", "-shm", "-journal")


def export_folder(session_path: Path) -> Path:
    """The app's export folder of a session file: ``<session file>.export``."""
    return session_path.with_name(session_path.name + ".export")


def export_paths(session_path: Path, *, overwrite: bool = False) -> dict[str, Path]:
    """The app's export files: the plain names, or with ``overwrite=False`` the first
    numbered set (``annotated-2.h5ad``, ``labels-2.csv``...) of which no file exists yet."""
    folder = export_folder(session_path)
    for n in itertools.count(1):
        paths = {
            kind: folder / (name if n == 1 else f"{Path(name).stem}-{n}{Path(name).suffix}")
            for kind, name in EXPORT_NAMES.items()
        }
        if overwrite or not any(p.exists() for p in paths.values()):
            return paths
    raise AssertionError("unreachable")


def protected_paths(session_path: Path, data_path: str | None) -> list[tuple[Path, str]]:
    """The files no export may replace: the session file, SQLite's files beside it, and
    the input data (file or folder) the session was made from, when known."""
    protected = [(session_path, "the session file")]
    protected += [
        (session_path.with_name(session_path.name + s), "the session's SQLite file")
        for s in SIDE_FILES
    ]
    if data_path:
        protected.append((Path(data_path), "the input data"))
    return protected


def check_export_targets(
    targets: dict[str, str | Path | None], protected: Iterable[tuple[Path, str]]
) -> dict[str, Path]:
    """Resolve the export targets (``kind -> path``; None skipped) and refuse any that would
    replace a protected file or another target of the same export."""
    options = {"h5ad": "--out", "csv": "--csv", "model": "--model"}
    protected = list(protected)
    checked: dict[str, Path] = {}
    for kind, target in targets.items():
        if target is None:
            continue
        path = check_target(target, protected, option=options.get(kind, kind))
        for other_kind, other in checked.items():
            if other == path:
                raise InputError(
                    f"{options[kind]} and {options[other_kind]} are the same file '{path}'; "
                    "give each export its own name. Nothing was written."
                )
        checked[kind] = path
    return checked
