"""What an existing session file must hold before a session opens on it.

A session file is SQLite: it can be edited by hand, or damaged in ways SQLite's own checks do
not see. Before anything uses it (and before anything is written into it), its seed, its cached
embeddings and the cells its answers name are checked against the data; a file that fails is
refused with a message, and left as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from .._errors import InputError
from ._store import SessionStore

#: Seeds the PCA, UMAP and learners accept: ``0 .. 2**32 - 1``.
MAX_SEED = 2**32 - 1


def check_seed(value: object, *, name: str = "seed") -> int:
    """``value`` as a seed: a whole number from 0 to :data:`MAX_SEED` (text allowed)."""
    text = str(value).strip()
    if not isinstance(value, bool) and text.isdigit() and int(text) <= MAX_SEED:
        return int(text)
    raise InputError(f"{name}={value!r} is not a seed: give a whole number from 0 to {MAX_SEED}.")


def check_contents(store: SessionStore, meta: Mapping[str, str], cells: Iterable[str]) -> int:
    """Refuse a session file whose seed, cached embeddings or answers do not fit the data
    (``cells``: its cell names); returns the session's seed (0 when it records none)."""
    path = store.path
    seed = 0
    if "seed" in meta:
        try:
            seed = check_seed(meta["seed"])
        except InputError:
            raise InputError(
                _edited(
                    path,
                    f"records the seed {meta['seed']!r}, not a whole number from 0 to {MAX_SEED}",
                )  # fmt: skip
            ) from None
    cells = set(cells)
    for name, (n_cells, n_dims, n_bytes) in store.embedding_sizes().items():
        width = 2 if name == "umap" else max(n_dims, 1)  # a map has two coordinates
        if (n_cells, n_dims, n_bytes) != (len(cells), width, 4 * len(cells) * width):
            raise InputError(
                _edited(
                    path,
                    f"caches the embedding {name!r} as {n_cells} x {n_dims} values stored in "
                    f"{n_bytes} bytes, where the data's {len(cells)} cells need "
                    f"{len(cells)} x {width} values ({4 * len(cells) * width} bytes)",
                )
            )
    unknown = sorted({answer["cell"] for answer in store.history()} - cells)
    if unknown:
        shown = ", ".join(map(repr, unknown[:3])) + (", ..." if len(unknown) > 3 else "")
        raise InputError(
            _edited(path, f"holds answers for {len(unknown)} cell(s) not in the data ({shown})")
        )
    return seed


def _edited(path: Path, problem: str) -> str:
    return (
        f"The session file '{path}' {problem}: it was edited or damaged, and cannot be opened. "
        "It was left untouched. Open a copy made before the change, or start a new session "
        "with another --session file."
    )
