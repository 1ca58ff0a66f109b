"""Adapters to the real annotation tools: CellTypist, Seurat label transfer and SingleR.

Each adapter learns from a labeled reference and annotates a query, both given as AnnData with
log-normalised expression in ``.X`` (log1p of counts per 10,000; cells x genes; gene symbols as
``var_names``; the same genes in the same order). Each tool selects its own genes as published:
CellTypist trains on every gene given, Seurat on the reference's variable genes, SingleR on the
markers it finds between pairs of labels.

The R tools run in a separate ``Rscript`` process on Matrix Market files in a temporary
directory (see ``r/seurat_transfer.R`` and ``r/singler.R``); CellTypist runs in this process on a
model trained here (it never downloads a model).

Every adapter offers ``unavailable()`` (why the tool cannot run here, or ``None``), ``version()``,
``fit(adata, labels)``, ``annotate(adata)`` (a table with a ``label`` and a ``score`` column, the
tool's own confidence) and the thin wrappers ``predict`` and ``predict_score``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import tempfile
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from .._errors import InputError, ToolError, ToolUnavailable
from ..models import UNASSIGNED
from ._r import _r_script_path, _r_unavailable, _r_version, run_rscript

logger = logging.getLogger("scactive")


#: Largest value of log1p(counts per 10,000): log1p(1e4) = 9.2104 (CellTypist's bound, 9.22).
_LOG_CP10K_MAX = 9.22

# --------------------------------------------------------------------------------------------
# Input checks


def _expression(adata: Any, name: str) -> sp.csr_matrix:
    """``adata.X`` as CSR float32, after checking it holds log-normalised expression."""
    if not isinstance(adata, ad.AnnData):
        raise InputError(f"{name} must be an AnnData object; got {type(adata).__name__}.")
    if adata.n_vars == 0:
        raise InputError(f"{name} has no genes; pass the log-normalised expression of all genes.")
    X = adata.X
    if X is None:
        raise InputError(f"{name}.X is empty; it must hold log-normalised expression.")
    X = sp.csr_matrix(X, dtype=np.float32)
    values = X.data
    how = (
        "Expected log-normalised expression (log1p of counts per 10,000, values in "
        f"[0, {_LOG_CP10K_MAX}]); normalise raw counts with "
        "sc.pp.normalize_total(adata, target_sum=1e4) then sc.pp.log1p(adata)."
    )
    if values.size:
        if not np.isfinite(values).all():
            raise InputError(f"{name}.X has NaN or infinite values. {how}")
        low, high = float(values.min()), float(values.max())
        if low < 0:
            raise InputError(f"{name}.X has negative values (min {low:.3g}): scaled data? {how}")
        if high > _LOG_CP10K_MAX:
            raise InputError(f"{name}.X has values up to {high:.3g}: raw counts? {how}")
        if high > 1 and np.array_equal(values, np.round(values)):
            raise InputError(f"{name}.X holds whole numbers only: raw counts? {how}")
    return X


def _check_same_genes(reference: pd.Index, query: pd.Index) -> None:
    if len(reference) == len(query) and (reference == query).all():
        return
    shared = len(reference.intersection(query))
    if len(reference) == len(query) and shared == len(reference):
        detail = "the same genes in a different order"
    else:
        detail = f"{len(reference)} reference genes, {len(query)} query genes, {shared} shared"
    raise InputError(
        f"The query's genes differ from the reference's ({detail}). Give both the same genes "
        "in the same order, e.g. query = query[:, reference.var_names] after keeping the "
        "genes the two share."
    )


def _labels(labels: Any, adata: ad.AnnData) -> np.ndarray:
    if isinstance(labels, str):
        if labels not in adata.obs:
            raise InputError(
                f"labels={labels!r} is not a column of adata.obs; available: "
                f"{list(adata.obs.columns)}."
            )
        labels = adata.obs[labels]
    y = np.asarray(labels, dtype=object).ravel()
    if y.shape[0] != adata.n_obs:
        raise InputError(
            f"labels has {y.shape[0]} values but the reference has {adata.n_obs} cells; give "
            "one label per reference cell."
        )
    missing = int(pd.isna(y).sum())
    if missing:
        raise InputError(
            f"labels has {missing} missing values; pass only the labeled cells as reference."
        )
    return y


# --------------------------------------------------------------------------------------------
# The adapters


class _ToolAdapter:
    """What every adapter shares: input checks, label coding, result caching.

    Subclasses implement ``_fit(X, codes)`` and ``_annotate(X) -> DataFrame`` (columns
    ``code`` (int, or -1 for unassigned) and ``score``, plus any tool-specific columns) and the
    classmethods ``unavailable`` and ``version``. The label codes index ``classes_``.
    """

    name: ClassVar[str]

    def fit(self, adata: ad.AnnData, labels: Any) -> _ToolAdapter:
        """Learn from the reference cells in ``adata`` with their ``labels``.

        Parameters
        ----------
        adata
            Reference cells: log-normalised expression in ``.X`` (cells x genes).
        labels
            One label per reference cell, or the name of an ``adata.obs`` column.
        """
        why = type(self).unavailable()  # type: ignore[attr-defined]
        if why is not None:
            raise ToolUnavailable(why)
        X = _expression(adata, "reference adata")
        if X.shape[0] == 0:
            raise InputError("The reference has no cells; give at least one labeled cell.")
        y = _labels(labels, adata)
        try:
            codes, classes = pd.factorize(y, sort=True)
        except TypeError:  # labels of mixed types cannot be sorted
            codes, classes = pd.factorize(y)
        self.classes_ = np.asarray(classes, dtype=object)
        self.genes_ = pd.Index(adata.var_names)
        self.n_reference_ = X.shape[0]
        self.notes_: list[str] = []
        self._last: tuple[weakref.ref, pd.DataFrame] | None = None
        if len(self.classes_) == 1:
            self.notes_.append(
                f"the reference has a single label ({self.classes_[0]!r}); every query cell "
                "gets it, with score 1, without running the tool"
            )
        else:
            self._fit(X, np.asarray(codes))
        return self

    def annotate(self, adata: ad.AnnData) -> pd.DataFrame:
        """Annotate the query cells in ``adata``.

        Returns
        -------
        A table indexed like ``adata.obs_names`` with columns ``label`` (the reference's
        labels, or ``"unassigned"``) and ``score`` (the tool's confidence, higher is surer),
        plus tool-specific columns. The last result is reused when called again with the same
        object (so ``predict`` then ``predict_score`` run the tool once); do not change
        ``adata.X`` in place between the calls.
        """
        if not hasattr(self, "classes_"):
            raise InputError(f"The {self.name} adapter is not fitted yet; call fit() first.")
        if self._last is not None and self._last[0]() is adata:
            return self._last[1].copy()
        X = _expression(adata, "query adata")
        _check_same_genes(self.genes_, pd.Index(adata.var_names))
        if len(self.classes_) == 1 or X.shape[0] == 0:
            out = pd.DataFrame({"code": np.zeros(X.shape[0], dtype=int), "score": 1.0})
        else:
            out = self._annotate(X)
        codes = out.pop("code").to_numpy()
        label = np.where(codes >= 0, self.classes_[np.maximum(codes, 0)], UNASSIGNED)
        frame = pd.DataFrame(
            {"label": label.astype(object), "score": out.pop("score").to_numpy(float)},
            index=pd.Index(adata.obs_names),
        )
        for column in out.columns:
            frame[column] = out[column].to_numpy()
        self._last = (weakref.ref(adata), frame)
        return frame.copy()

    def predict(self, adata: ad.AnnData) -> np.ndarray:
        """The label of each query cell (``"unassigned"`` where the tool declines)."""
        return self.annotate(adata)["label"].to_numpy(dtype=object)

    def predict_score(self, adata: ad.AnnData) -> np.ndarray:
        """The tool's confidence in each call (see the adapter's ``score`` description)."""
        return self.annotate(adata)["score"].to_numpy(dtype=float)

    def _fit(self, X: sp.csr_matrix, codes: np.ndarray) -> None:
        raise NotImplementedError

    def _annotate(self, X: sp.csr_matrix) -> pd.DataFrame:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(
            f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k[-1] != "_"
        )
        return f"{type(self).__name__}({params})"


# ---- CellTypist


def _import_celltypist() -> Any:
    """Import celltypist, undoing the ``logging.basicConfig`` it runs on import."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import celltypist

    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return celltypist


@contextlib.contextmanager
def _quiet_celltypist() -> Iterator[None]:
    ct_logger = logging.getLogger("celltypist.logger")
    level = ct_logger.level
    ct_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        ct_logger.setLevel(level)


class CellTypistAdapter(_ToolAdapter):
    """CellTypist: logistic regression trained on the reference (a custom model, no download).

    Trains with ``celltypist.train`` on every given gene (CellTypist's scaling: centred,
    unit variance, clipped at 10; genes not expressed in the reference are dropped), then
    ``celltypist.annotate(mode="best match", majority_voting=False)``. The score is the
    called label's probability (the sigmoid of its one-vs-rest decision value; CellTypist's
    ``conf_score``).

    Parameters
    ----------
    C
        Inverse regularisation strength (CellTypist's default 1.0).
    use_SGD
        Stochastic gradient descent instead of the full logistic regression (CellTypist's
        default ``False``: lbfgs for fewer than 50,000 cells, sag above). SGD is for very large
        references and is less stable on small ones.
    max_iter
        ``None`` is CellTypist's rule: 1000 below 50,000 cells, 500 below 500,000, else 200.
    feature_selection
        CellTypist's two-pass training on the top genes of a first model (off by default:
        CellTypist's standard training uses all genes).
    """

    name = "celltypist"

    def __init__(
        self,
        *,
        C: float = 1.0,
        use_SGD: bool = False,
        max_iter: int | None = None,
        feature_selection: bool = False,
    ) -> None:
        self.C = C
        self.use_SGD = use_SGD
        self.max_iter = max_iter
        self.feature_selection = feature_selection

    @classmethod
    def unavailable(cls) -> str | None:
        """Why CellTypist cannot run here, or ``None``."""
        if importlib.util.find_spec("celltypist") is None:
            return (
                "CellTypist is not installed in this Python environment. Install it with "
                '`pip install "scactive[compare]"` or `pip install celltypist==1.7.1`.'
            )
        return None

    @classmethod
    def version(cls) -> str:
        why = cls.unavailable()
        if why is not None:
            raise ToolUnavailable(why)
        return importlib.metadata.version("celltypist")

    def _fit(self, X: sp.csr_matrix, codes: np.ndarray) -> None:
        celltypist = _import_celltypist()
        # Unique gene names: CellTypist matches the query's genes to the model's by name.
        self._genes = np.asarray(ad.utils.make_index_unique(self.genes_.astype(str)), dtype=str)
        with _quiet_celltypist():
            # check_expression=False: CellTypist's check (the first cell's expm1 sums to
            # 10,000) rejects a subset of the genes; the log1p-CP10k range is checked above.
            self.model_ = celltypist.train(
                X,
                labels=codes.astype(str),
                genes=self._genes,
                check_expression=False,
                C=self.C,
                use_SGD=self.use_SGD,
                max_iter=self.max_iter,
                feature_selection=self.feature_selection,
                n_jobs=1,
            )

    def _annotate(self, X: sp.csr_matrix) -> pd.DataFrame:
        celltypist = _import_celltypist()
        # Blocks of cells keep CellTypist's dense scaled copy of the query under ~400 MB.
        block = max(1, int(4e8 // (8 * X.shape[1])))
        parts = []
        with _quiet_celltypist():
            for start in range(0, X.shape[0], block):
                query = ad.AnnData(X[start : start + block], var=pd.DataFrame(index=self._genes))
                # = celltypist.annotate(query, model, majority_voting=False), whose gene
                # matching (np.isin on object arrays) is quadratic: 7 s for 30,000 genes. The
                # same steps with the gene names as a numpy string array take 0.1 s.
                classifier = celltypist.classifier.Classifier(filename=query, model=self.model_)
                classifier.indata_genes = np.asarray(classifier.indata_genes, dtype=str)
                result = classifier.celltype(mode="best match")
                probs = result.probability_matrix
                labels = result.predicted_labels["predicted_labels"].astype(str).to_numpy()
                parts.append(
                    pd.DataFrame(
                        {
                            "code": labels.astype(int),
                            "score": probs.to_numpy().max(axis=1),
                        }
                    )
                )
        return pd.concat(parts, ignore_index=True)


# ---- R tools


class _RAdapter(_ToolAdapter):
    """An R tool run by ``Rscript`` on Matrix Market files in a temporary directory.

    ``fit`` only checks and keeps the reference; the tool runs reference and query together
    in ``annotate`` (one R process per query).
    """

    script: ClassVar[str]
    r_packages: ClassVar[tuple[str, ...]]
    timeout: float | None

    def _fit(self, X: sp.csr_matrix, codes: np.ndarray) -> None:
        self._reference = (X, codes)

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _annotate(self, X: sp.csr_matrix) -> pd.DataFrame:
        ref, codes = self._reference
        with tempfile.TemporaryDirectory(prefix=f"scactive-{self.name}-") as tmp:
            work = Path(tmp)
            # genes x cells, as R's single-cell tools expect; 7 significant digits.
            scipy.io.mmwrite(work / "ref.mtx", ref.T.tocoo(), precision=7)
            scipy.io.mmwrite(work / "query.mtx", X.T.tocoo(), precision=7)
            (work / "ref_labels.txt").write_text("".join(f"c{c}\n" for c in codes))
            (work / "params.tsv").write_text(
                "".join(f"{k}\t{'NA' if v is None else v}\n" for k, v in self._params().items())
            )
            with _r_script_path(self.script) as script:
                run_rscript(script, work, tool=self.name, timeout=self.timeout)
            out = pd.read_csv(work / "predictions.csv", keep_default_na=False, na_values=["NA"])
            notes = (work / "notes.txt").read_text().splitlines()
        for line in notes:
            logger.info("%s: %s", self.name, line)
        self.notes_.extend(notes)
        out["code"] = out["code"].astype(str).str.removeprefix("c").astype(int)
        if "assigned" in out:
            assigned = out.pop("assigned").astype(str).str.upper() == "TRUE"
            out["raw_label"] = self.classes_[out["code"].to_numpy()]
            out.loc[~assigned.to_numpy(), "code"] = -1
        if out.shape[0] != X.shape[0]:
            raise ToolError(
                f"{self.name} returned {out.shape[0]} predictions for {X.shape[0]} query cells."
            )
        return out


class SeuratAdapter(_RAdapter):
    """Seurat v4 label transfer: FindTransferAnchors + TransferData on the reference's PCA.

    The reference's variable genes (``mean.var.plot`` on the log-normalised data, at most
    ``nfeatures``) are scaled, reduced by PCA (``npcs`` components), the query is projected
    onto them and anchors transfer the labels. The score is ``prediction.score.max``. The
    neighbour counts are Seurat's defaults, capped by the number of cells (and ``k.weight``
    by the number of anchors); anchor filtering is skipped when there are no more than
    ``k_filter`` cells. If Seurat still fails (a tiny reference or query), the labels come
    from a vote of the 5 nearest reference cells in the reference's PCA space, with column
    ``method`` = ``"fallback_knn"`` and a warning.
    """

    name = "seurat"
    script = "seurat_transfer.R"
    r_packages = ("Matrix", "Seurat")

    def __init__(
        self,
        *,
        nfeatures: int = 2000,
        npcs: int = 30,
        k_anchor: int = 5,
        k_filter: int = 200,
        k_score: int = 30,
        k_weight: int = 50,
        timeout: float | None = 3600.0,
    ) -> None:
        self.nfeatures = nfeatures
        self.npcs = npcs
        self.k_anchor = k_anchor
        self.k_filter = k_filter
        self.k_score = k_score
        self.k_weight = k_weight
        self.timeout = timeout

    @classmethod
    def unavailable(cls) -> str | None:
        """Why Seurat cannot run here, or ``None``."""
        return _r_unavailable("Seurat label transfer", cls.r_packages)

    @classmethod
    def version(cls) -> str:
        return _r_version("Seurat label transfer", cls.r_packages, "Seurat")

    def _params(self) -> dict[str, Any]:
        keys = ("nfeatures", "npcs", "k_anchor", "k_filter", "k_score", "k_weight")
        return {k: int(getattr(self, k)) for k in keys}

    def _annotate(self, X: sp.csr_matrix) -> pd.DataFrame:
        out = super()._annotate(X)
        fallback = int((out["method"] != "transfer").sum())
        if fallback:
            logger.warning(
                "seurat: label transfer failed for this reference/query; %d cells were "
                "labeled by the nearest-neighbour fallback (see the adapter's notes_).",
                fallback,
            )
        return out


class SingleRAdapter(_RAdapter):
    """SingleR with the single-cell reference, markers from pairwise Wilcoxon tests.

    ``SingleR(test, ref, labels, de.method="wilcox")`` (recommended for single-cell
    references) with fine-tuning and pruning on (SingleR's defaults), serial. Cells whose
    label is pruned come back as ``"unassigned"`` (the unpruned call is in ``raw_label``).
    The score is ``delta.next`` (the fine-tuned margin of the call over the next label);
    ``max_score`` holds the call's correlation before fine-tuning.

    Parameters
    ----------
    de_method
        ``"wilcox"`` (default), ``"t"`` or ``"classic"`` (for bulk references).
    de_n
        Markers per pair of labels; ``None`` is SingleR's default (10 for wilcox and t).
    aggregate
        Aggregate the reference into pseudo-bulk profiles per label (``aggr.ref``): faster for
        large references. Off by default: the single cells were fast enough (pbmc3k: 2,100
        reference cells) and keep the most information.
    """

    name = "singler"
    script = "singler.R"
    r_packages = ("Matrix", "SingleR", "scran", "BiocParallel")

    def __init__(
        self,
        *,
        de_method: str = "wilcox",
        de_n: int | None = None,
        aggregate: bool = False,
        timeout: float | None = 3600.0,
    ) -> None:
        if de_method not in {"wilcox", "t", "classic"}:
            raise InputError(
                f"de_method={de_method!r} is not one of SingleR's 'wilcox', 't', 'classic'."
            )
        self.de_method = de_method
        self.de_n = de_n
        self.aggregate = aggregate
        self.timeout = timeout

    @classmethod
    def unavailable(cls) -> str | None:
        """Why SingleR cannot run here, or ``None``."""
        return _r_unavailable("SingleR", cls.r_packages)

    @classmethod
    def version(cls) -> str:
        return _r_version("SingleR", cls.r_packages, "SingleR")

    def _params(self) -> dict[str, Any]:
        return {"de_method": self.de_method, "de_n": self.de_n, "aggregate": int(self.aggregate)}
