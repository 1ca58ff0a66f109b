"""Reading expression data and choosing the matrix and labels to work on.

Supported inputs: ``.h5ad``; 10x Genomics matrices (an ``.h5`` file or a folder holding
``matrix.mtx[.gz]`` with barcodes and features); ``.csv`` / ``.tsv`` / ``.txt`` tables (cells in
rows, genes in columns, first column the cell names; ``transpose=True`` for the other way round);
``.loom``; and the names of bundled datasets (see :mod:`scactive.datasets`).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._errors import InputError
from ._h5ad import check_h5ad, sparse_problem

logger = logging.getLogger("scactive")

__all__ = [
    "MISSING_LABELS",
    "check_matrix",
    "data_checksum",
    "file_checksum",
    "labels_from",
    "looks_like_counts",
    "read",
    "read_small_table",
    "select_matrix",
]

#: Label values treated as "no label" (compared case-insensitively, after stripping).
MISSING_LABELS = frozenset(
    {"", "nan", "na", "n/a", "none", "null", "unknown", "unassigned", "unlabeled", "unlabelled"}
)


def read(path: str | Path, *, transpose: bool = False) -> ad.AnnData:
    """Read a dataset from a file, a 10x folder or the name of a bundled dataset.

    Parameters
    ----------
    path
        A file (``.h5ad``, ``.h5``, ``.csv``, ``.tsv``, ``.txt``, ``.loom``, optionally ``.gz``),
        a 10x ``matrix.mtx`` folder, a bundled dataset name such as ``"pbmc68k_reduced"``,
        or ``"synthetic:CELLS[xGENES]"``: PBMC counts from the bundled generator
        (:func:`scactive.datasets.synthetic`, seed 0), e.g. ``"synthetic:1000000x20000"``.
    transpose
        For text tables only: the file holds genes in rows and cells in columns.

    Returns
    -------
    The data as AnnData, cells in rows.
    """
    from . import datasets

    if datasets.is_named(path):
        return datasets.load_named(str(path))
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(
            f"Input file not found: '{path}'. Check the path, or name a bundled dataset: "
            f"{', '.join(sorted(datasets.BUNDLED))}, or generated counts: synthetic:CELLS or "
            "synthetic:CELLSxGENES (e.g. synthetic:100000x20000)."
        )
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    try:
        if path.is_dir():
            adata = _read_10x_folder(path)
        elif kind == ".h5ad":
            check_h5ad(path)  # declared sizes and sparse structure, before anything is read
            adata = ad.read_h5ad(path)
        elif kind == ".h5":
            import scanpy as sc

            adata = sc.read_10x_h5(path)
            adata.var_names_make_unique()
        elif kind in {".csv", ".tsv", ".txt"}:
            sep = "," if kind == ".csv" else "\t"
            table = pd.read_csv(path, sep=sep, index_col=0)
            if transpose:
                table = table.T
            adata = ad.AnnData(
                sp.csr_matrix(table.to_numpy(dtype=np.float32)),
                obs=pd.DataFrame(index=table.index.astype(str)),
                var=pd.DataFrame(index=table.columns.astype(str)),
            )
        elif kind == ".loom":
            adata = ad.read_loom(path, sparse=True, cleanup=True)
        else:
            raise InputError(
                f"Cannot tell the format of '{path}' from its name. Use .h5ad, .h5 (10x), "
                ".csv/.tsv/.txt, .loom, or a folder holding a 10x matrix.mtx."
            )
    except InputError:
        raise
    except MemoryError as err:
        raise InputError(
            f"'{path}' does not fit in this machine's memory ({err}). Read it on a machine with "
            "more memory, or subset it first."
        ) from err
    except (OSError, KeyError, ValueError, TypeError, UnicodeDecodeError) as err:
        raise InputError(
            f"Could not read '{path}' as {kind or 'a 10x folder'}: {err}. The file may be "
            "truncated or not in the format its name says; re-export or re-download it."
        ) from err
    return adata


#: The files of a 10x matrix folder, each plain or gzipped; genes.tsv in older versions.
_TENX_FILES = {
    "matrix": ("matrix.mtx", "matrix.mtx.gz"),
    "barcodes": ("barcodes.tsv", "barcodes.tsv.gz"),
    "features": ("features.tsv", "features.tsv.gz", "genes.tsv", "genes.tsv.gz"),
}
#: The layouts scanpy reads (10x's older plain one and the gzipped v3 one).
_SCANPY_LAYOUTS = (
    {"matrix.mtx", "barcodes.tsv", "genes.tsv"},
    {"matrix.mtx.gz", "barcodes.tsv.gz", "features.tsv.gz"},
)


def _read_10x_folder(path: Path) -> ad.AnnData:
    """A 10x matrix folder, its files plain or gzipped; the error names any file missing."""
    found, missing = {}, []
    for role, names in _TENX_FILES.items():
        found[role] = next((path / n for n in names if (path / n).is_file()), None)
        if found[role] is None:
            missing.append(" or ".join(f"'{n}'" for n in names))
    if missing:
        held = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
        shown = ", ".join(held[:8]) + (", ..." if len(held) > 8 else "") or "no files"
        raise InputError(
            f"The folder '{path}' is not a 10x matrix folder: it has no {'; no '.join(missing)} "
            f"(it holds {shown}). Point to the folder with the 10x files (matrix, barcodes and "
            "features or genes), or to a single data file."
        )
    if {p.name for p in found.values()} in _SCANPY_LAYOUTS:
        import scanpy as sc

        return sc.read_10x_mtx(path, var_names="gene_symbols", make_unique=True)
    # other mixes, such as v3 files left uncompressed: read them as scanpy would
    import scipy.io

    X = sp.csr_matrix(scipy.io.mmread(found["matrix"]).T, dtype=np.float32)
    features = pd.read_csv(found["features"], sep="\t", header=None, dtype=str)
    barcodes = pd.read_csv(found["barcodes"], sep="\t", header=None, dtype=str)
    var = pd.DataFrame(index=pd.Index(features[min(1, features.shape[1] - 1)], dtype=str))
    var["gene_ids"] = features[0].to_numpy()
    if features.shape[1] > 2:
        var["feature_types"] = features[2].to_numpy()
    var.index.name = None
    adata = ad.AnnData(
        X, obs=pd.DataFrame(index=pd.Index(barcodes[0], dtype=str, name=None)), var=var
    )
    adata.var_names_make_unique()
    return adata


def data_checksum(X: sp.spmatrix, *names) -> str:
    """SHA-256 of a CSR matrix (values and structure) and of lists of names (cells, genes,
    labels...), each joined by newlines: what identifies a dataset, whatever file it came from."""
    digest = hashlib.sha256()
    for part in (X.data, X.indices, X.indptr):
        # the array's own bytes, not a copy of them (3.4 GB for a million cells' values)
        digest.update(memoryview(np.ascontiguousarray(part)).cast("B"))
    for values in names:
        digest.update("\n".join(map(str, values)).encode())
    return digest.hexdigest()


def read_small_table(
    path: str | Path, *, columns: tuple[str, ...], what: str, optional: str = ""
) -> pd.DataFrame:
    """A small CSV/TSV the user wrote (markers, answers, a label map), as text.

    The separator follows the suffix (tab for ``.tsv``/``.txt``, else comma); nothing is read
    as missing; column names are stripped and lower-cased. Raises :class:`InputError` naming
    ``what`` when the file is missing, unreadable or lacks one of ``columns`` (``optional``
    names the other columns it may have, for the message).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{what.capitalize()} not found: '{path}'.")
    sep = "\t" if path.suffix.lower() in {".tsv", ".txt"} else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise InputError(f"Could not read the {what} '{path}': {err}.") from err
    table.columns = [str(c).strip().lower() for c in table.columns]
    if not set(columns) <= set(table.columns):
        needed = " and ".join(f"'{c}'" for c in columns)
        extra = f" (optional: {optional})" if optional else ""
        raise InputError(
            f"The {what} '{path}' needs columns {needed}{extra}; it has {list(table.columns)}."
        )
    return table


def file_checksum(path: str | Path) -> str:
    """SHA-256 of a file, or of the dataset's name when ``path`` names one."""
    from . import datasets

    if datasets.is_named(path):
        return hashlib.sha256(f"bundled:{path}".encode()).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def select_matrix(
    adata: ad.AnnData, *, layer: str | None = None, use_raw: bool = False
) -> ad.AnnData:
    """Return a new AnnData whose ``X`` is the chosen matrix as sparse CSR float32.

    ``obs`` is copied; ``var`` comes from ``.raw`` when ``use_raw``. The input is not changed.
    """
    if layer is not None and use_raw:
        raise InputError("Choose either layer= or use_raw=True, not both.")
    if use_raw:
        if adata.raw is None:
            raise InputError("use_raw=True but the data has no .raw; use X or a layer instead.")
        matrix, var = adata.raw.X, adata.raw.var.copy()
    elif layer is not None:
        if layer not in adata.layers:
            raise InputError(
                f"layer={layer!r} not in adata.layers; available: {list(adata.layers)}."
            )
        matrix, var = adata.layers[layer], adata.var.copy()
    else:
        matrix, var = adata.X, adata.var.copy()
    if matrix is None or 0 in matrix.shape:
        raise InputError(
            f"The expression matrix is empty (shape {adata.shape}). Check the file or the layer."
        )
    if sp.issparse(matrix) and matrix.format in ("csr", "csc"):
        axis = 0 if matrix.format == "csr" else 1
        n_major, n_minor = matrix.shape[axis], matrix.shape[1 - axis]
        problem = sparse_problem(
            matrix.indptr, n_major, len(matrix.data), axis=axis,
            indices=matrix.indices, n_minor=n_minor,
        )  # fmt: skip
        if problem or len(matrix.indices) != len(matrix.data):
            raise InputError(
                f"The expression matrix is damaged: {problem or 'its arrays differ in length.'}"
                " Read the file again, or rebuild the matrix from its source."
            )
    matrix = sp.csr_matrix(matrix, dtype=np.float32) if not sp.issparse(matrix) else matrix
    matrix = sp.csr_matrix(matrix.astype(np.float32, copy=False))
    out = ad.AnnData(matrix, obs=adata.obs.copy(), var=var)
    out.obs_names = adata.obs_names.astype(str)
    out.var_names = var.index.astype(str)
    check_matrix(out)
    return out


def check_matrix(adata: ad.AnnData) -> None:
    """Refuse empty matrices, NaN or infinite values, negative values and duplicate names."""
    X = adata.X
    if 0 in X.shape:
        raise InputError(f"The expression matrix is empty (shape {X.shape}).")
    values = X.data if sp.issparse(X) else np.asarray(X)
    if not np.isfinite(values).all():
        n_bad = int((~np.isfinite(values)).sum())
        raise InputError(
            f"The expression matrix holds {n_bad} NaN or infinite values. Remove or impute them "
            "before running scactive (e.g. replace NaN by 0 for unmeasured counts)."
        )
    if values.size and values.min() < 0:
        raise InputError(
            f"The expression matrix holds negative values (minimum {values.min():.3g}); it looks "
            "scaled or batch-corrected. scactive needs counts or log-normalised values: choose "
            "another matrix with --layer or --use-raw (use_raw=True / layer= in Python)."
        )
    duplicated = adata.obs_names[adata.obs_names.duplicated()]
    if len(duplicated):
        raise InputError(
            f"{len(duplicated)} cell names occur more than once (e.g. {duplicated[0]!r}). Make "
            "them unique first, e.g. adata.obs_names_make_unique()."
        )
    if adata.var_names.duplicated().any():
        adata.var_names_make_unique()


def looks_like_counts(X: sp.spmatrix | np.ndarray, n_check: int = 100_000) -> bool:
    """Whether the (non-negative) values are whole numbers, i.e. raw counts."""
    values = X.data if sp.issparse(X) else np.asarray(X).ravel()
    values = values[:n_check]
    return bool(values.size) and bool(np.all(np.mod(values, 1) == 0))


def labels_from(adata: ad.AnnData, label_key: str) -> pd.Series:
    """The label column as strings, with missing markers (see ``MISSING_LABELS``) as NaN."""
    if label_key not in adata.obs:
        raise InputError(
            f"label_key={label_key!r} not in adata.obs; available: {list(adata.obs.columns)}. "
            "Pass the column holding the cell types with --label-key."
        )
    raw = adata.obs[label_key]
    labels = raw.astype("object").where(raw.notna(), None)
    labels = labels.map(lambda v: None if v is None else str(v).strip())
    missing = labels.map(lambda v: v is None or v.lower() in MISSING_LABELS)
    labels = labels.where(~missing, np.nan)
    n_classes = labels.dropna().nunique()
    if n_classes < 2:
        raise InputError(
            f"label_key={label_key!r} holds {n_classes} cell type(s) once missing and "
            f"'Unknown'-like labels are left out; a classifier needs at least two. Choose "
            "another label column."
        )
    return labels
