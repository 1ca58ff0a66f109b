"""What the real-tool adapters share: input checks, the adapter base class, the R run.

:class:`_ToolAdapter` checks the input, codes the labels and caches the last result;
:class:`_RAdapter` runs an R tool by ``Rscript`` on Matrix Market files in a temporary directory.
The adapters themselves are in :mod:`scactive.comparison._adapters`.
"""

from __future__ import annotations

import logging
import tempfile
import weakref
from pathlib import Path
from typing import Any, ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from .._errors import InputError, ToolError, ToolUnavailable
from ..models import UNASSIGNED
from ._r import _r_script_path, run_rscript

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
