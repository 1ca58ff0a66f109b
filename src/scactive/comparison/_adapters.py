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
import warnings
from collections.abc import Iterator
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputError, ToolUnavailable
from ..models import UNASSIGNED as UNASSIGNED  # the label of declined calls, as before
from ._adapter_base import _RAdapter, _ToolAdapter
from ._r import _r_unavailable, _r_version

logger = logging.getLogger("scactive")


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


# ---- R tools (their shared run: _RAdapter in _adapter_base.py)


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
