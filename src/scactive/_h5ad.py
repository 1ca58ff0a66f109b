"""Checks of an h5ad file's layout before anndata reads it, and of a sparse matrix's structure.

anndata reads every dataset of an h5ad whole and builds sparse matrices without checking their
index arrays, so a damaged or hand-made file could make it allocate terabytes (a dataset that
declares 2^40 entries and stores none) or hand on a matrix whose index pointer runs backwards.
:func:`check_h5ad` compares each dataset's declared size with what the file stores and with
the machine's memory, and checks the structure of every sparse matrix group, reading only the
small index pointers; :func:`sparse_problem` checks a matrix in memory.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ._errors import InputError

#: ``encoding-type`` of anndata's sparse groups, and the axis their ``indptr`` runs over.
SPARSE_ENCODINGS = {"csr_matrix": 0, "csc_matrix": 1}

_DAMAGED = "The file is damaged or was not written completely: re-export or re-download it."


def check_h5ad(path: Path) -> None:
    """Refuse ``path`` (an h5ad) when a dataset declares more entries than the file stores,
    when reading it would take more memory than the machine has, or when a sparse matrix
    group is malformed; raises :class:`InputError` naming the dataset. Reads no matrix."""
    import h5py

    with h5py.File(path, "r") as f:
        datasets: list[tuple[str, h5py.Dataset]] = []
        f.visititems(lambda name, obj: datasets.append((name, obj)) if _is_dataset(obj) else None)
        declared = 0
        for name, dataset in datasets:
            _check_stored(path, name, dataset)
            declared += dataset.size * dataset.dtype.itemsize
        memory = _physical_memory()
        if memory is not None and declared > memory:
            raise InputError(
                f"'{path}' declares {_size(declared)} of data, more than this machine's "
                f"{_size(memory)} of memory, so it cannot be read here. Read it on a machine "
                f"with more memory, or subset it first. If the file is much smaller than that, "
                f"it is damaged: re-export or re-download it."
            )
        groups: list[tuple[str, h5py.Group]] = []
        f.visititems(lambda name, obj: groups.append((name, obj)) if _is_sparse(obj) else None)
        if _is_sparse(f):
            groups.append(("", f))
        for name, group in groups:
            _check_sparse_group(path, name, group)


def _is_dataset(obj) -> bool:
    import h5py

    return isinstance(obj, h5py.Dataset)


def _is_sparse(obj) -> bool:
    import h5py

    return isinstance(obj, h5py.Group) and _text(obj.attrs.get("encoding-type")) in SPARSE_ENCODINGS


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_stored(path: Path, name: str, dataset) -> None:
    """Refuse a dataset whose declared entries the file does not store (never-written chunks
    or storage, read back as fill values)."""
    if dataset.size == 0 or dataset.is_virtual or dataset.external:
        return
    shape = "x".join(map(str, dataset.shape))
    if dataset.chunks is not None:
        total = math.prod(-(-n // c) for n, c in zip(dataset.shape, dataset.chunks, strict=True))
        stored = dataset.id.get_num_chunks()
        if stored < total:
            raise InputError(
                f"'{path}': the dataset '/{name}' declares {shape} entries but the file stores "
                f"only {stored} of its {total} chunks. {_DAMAGED}"
            )
    elif dataset.dtype.kind != "O" and dataset.id.get_storage_size() < dataset.nbytes:
        raise InputError(
            f"'{path}': the dataset '/{name}' declares {shape} entries "
            f"({_size(dataset.nbytes)}) but the file stores "
            f"{_size(dataset.id.get_storage_size())} of them. {_DAMAGED}"
        )


def _check_sparse_group(path: Path, name: str, group) -> None:
    """Refuse a sparse matrix group whose shape, array lengths or index pointer disagree."""
    where = f"'{path}': the sparse matrix '/{name}'"
    members = [group.get(k) for k in ("data", "indices", "indptr")]
    if not all(_is_dataset(m) and m.ndim == 1 for m in members):
        raise InputError(f"{where} lacks one of its arrays data, indices, indptr. {_DAMAGED}")
    data, indices, indptr = members
    shape = np.asarray(group.attrs.get("shape", ()))
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 0).any():
        raise InputError(f"{where} has no valid shape (got {shape.tolist()}). {_DAMAGED}")
    if data.shape != indices.shape:
        raise InputError(
            f"{where} holds {data.shape[0]} values but {indices.shape[0]} column indices. "
            f"{_DAMAGED}"
        )
    axis = SPARSE_ENCODINGS[_text(group.attrs["encoding-type"])]
    problem = sparse_problem(
        indptr[()], int(shape[axis]), data.shape[0], name=f"{name}/indptr", axis=axis
    )
    if problem:
        raise InputError(f"'{path}': {problem} {_DAMAGED}")


def sparse_problem(
    indptr: np.ndarray,
    n_major: int,
    n_stored: int,
    *,
    name: str = "indptr",
    axis: int = 0,
    indices: np.ndarray | None = None,
    n_minor: int | None = None,
) -> str | None:
    """What is wrong with a compressed sparse matrix's index arrays, or None.

    ``indptr`` must hold ``n_major + 1`` whole numbers (``n_major``: rows of a CSR matrix,
    columns of a CSC one), start at 0, never decrease and end at ``n_stored`` (the stored
    values); with ``indices`` and ``n_minor``, every index must lie in ``0 .. n_minor - 1``.
    """
    rows = ("rows", "columns")[axis]
    if indptr.ndim != 1 or indptr.dtype.kind not in "iu":
        return f"'{name}' is not a list of whole numbers (dtype {indptr.dtype})."
    indptr = indptr.astype(np.int64, copy=False)  # unsigned steps cannot go below 0
    if len(indptr) != n_major + 1:
        return (
            f"'{name}' holds {len(indptr)} entries; a matrix of {n_major} {rows} needs "
            f"{n_major + 1}."
        )
    if indptr[0] != 0:
        return f"'{name}' starts at {indptr[0]}, not 0."
    steps = np.diff(indptr)
    if (steps < 0).any():
        at = int(np.flatnonzero(steps < 0)[0])
        return f"'{name}' decreases at {rows[:-1]} {at} ({indptr[at]} then {indptr[at + 1]})."
    if indptr[-1] != n_stored:
        return f"'{name}' ends at {indptr[-1]}, but the matrix stores {n_stored} values."
    if indices is not None and n_minor is not None and len(indices):
        low, high = int(indices.min()), int(indices.max())
        if low < 0 or high >= n_minor:
            other = ("columns", "rows")[axis]
            bad = low if low < 0 else high
            return f"its indices point at {other[:-1]} {bad}, outside its {n_minor} {other}."
    return None


def _physical_memory() -> int | None:
    """Bytes of physical memory, None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _size(n_bytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")
