"""The negative-binomial count model per cell type: fitting, saving, loading and sampling.

:class:`CountModel` is described in :mod:`scactive._synthetic`, which re-exports it with the
model bundled with the package.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from ._errors import InputError
from ._files import atomic_write
from ._nb import _sample_nb, assemble_rows
from ._nb_fit import _check_counts, _moment_dispersion, _zero_matched_dispersion

logger = logging.getLogger("scactive")

FORMAT_VERSION = 1
PRIOR_CELLS = 1.0  # per-type profiles are shrunk towards the global one with this weight (cells)
_MIN_ZEROS = 10  # genes with fewer zero counts get the moment estimate of dispersion
FLOOR_COUNTS = 0.5  # every gene gets this many pseudo-counts spread over the whole dataset
_ARRAYS = (
    "cell_types frequencies profiles dispersion gene_names log_library_mean log_library_sd"
).split()


@dataclass
class CountModel:
    """Negative-binomial count model of a labeled single-cell dataset, per cell type.

    Attributes
    ----------
    cell_types
        ``(n_types,)`` cell-type names.
    frequencies
        ``(n_types,)`` fraction of cells of each type (sums to 1).
    profiles
        ``(n_types, n_genes)`` float32; expected fraction of a cell's library taken by each gene
        (each row sums to 1).
    dispersion
        ``(n_genes,)`` float32; phi in var = mu + phi * mu**2, shared by all types.
    gene_names
        ``(n_genes,)`` gene names.
    log_library_mean, log_library_sd
        ``(n_types,)`` float32; mean and sd of the natural log of total counts per cell.
    n_source_genes
        Genes in the data the model was fitted on, kept or not (``>= n_genes``).
    dropped_profile
        Mean profile value of the source genes that were not kept (0 if none were dropped);
        stands in for them when more genes than fitted are sampled.
    source
        Free-text description of where the model comes from.
    """

    cell_types: np.ndarray
    frequencies: np.ndarray
    profiles: np.ndarray
    dispersion: np.ndarray
    gene_names: np.ndarray
    log_library_mean: np.ndarray
    log_library_sd: np.ndarray
    n_source_genes: int
    dropped_profile: float = 0.0
    source: str = ""

    @property
    def n_genes(self) -> int:
        return self.profiles.shape[1]

    @property
    def n_types(self) -> int:
        return self.profiles.shape[0]

    # ------------------------------------------------------------------------------------ fit
    @classmethod
    def fit(
        cls,
        adata: ad.AnnData,
        label_key: str,
        *,
        layer: str | None = None,
        min_cells_per_type: int = 10,
        min_cells_per_gene: int = 0,
        dispersion: Literal["zeros", "moments"] = "zeros",
    ) -> CountModel:
        """Fit the model on raw integer counts (cells x genes, dense or sparse).

        Parameters
        ----------
        adata
            Labeled data with raw counts in ``X`` or ``layers[layer]``.
        label_key
            Column of ``adata.obs`` holding the cell types. Cells with a missing label are left
            out.
        layer
            Layer holding the counts; ``None`` uses ``X``.
        min_cells_per_type
            Types with fewer labeled cells are left out (logged).
        min_cells_per_gene
            Keep only genes with a nonzero count in at least this many of the fitted cells. The
            number of genes left out and their mean expression are remembered, so sampling more
            genes than fitted still gives a realistic share of undetected genes.
        dispersion
            How the per-gene dispersion phi (var = mu + phi * mu**2) is estimated, pooled over
            types and clipped to ``PHI_RANGE``. ``"moments"``: method of moments on size-factor
            normalised counts. ``"zeros"`` (default): the phi at which the model predicts as
            many zero counts as observed, or the moment estimate for genes with fewer than
            ``_MIN_ZEROS`` zeros (nearly always detected). Both recover phi from NB data; on
            real UMI counts a few cells with large counts inflate the moment estimate, and
            samples then have 10-25% fewer detected genes per cell than the data (pbmc3k),
            whereas ``"zeros"`` reproduces sparsity and keeps the second moments within ~25%.

        Returns
        -------
        The fitted model. Profiles are per-type means of counts / library size, shrunk towards
        the all-cell profile with the weight of one cell (a gene never seen in a type keeps a
        small nonzero level); every gene also gets ``FLOOR_COUNTS`` pseudo-counts spread over
        the whole dataset, so no profile is exactly 0.
        """
        if label_key not in adata.obs:
            raise InputError(
                f"label_key={label_key!r} not in adata.obs; available: {list(adata.obs.columns)}"
            )
        if layer is not None and layer not in adata.layers:
            raise InputError(
                f"layer={layer!r} not in adata.layers; available: {list(adata.layers.keys())}. "
                "Use layer=None for adata.X."
            )
        if dispersion not in ("zeros", "moments"):
            raise InputError(f"dispersion={dispersion!r}; expected 'zeros' or 'moments'.")
        for name, value in [
            ("min_cells_per_type", min_cells_per_type),
            ("min_cells_per_gene", min_cells_per_gene),
        ]:
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise InputError(f"{name}={value!r}; expected a non-negative integer.")
        X = adata.X if layer is None else adata.layers[layer]
        where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
        X = sparse.csr_matrix(X, dtype=np.float64, copy=True)
        _check_counts(X.data, where)
        X.eliminate_zeros()

        labels = pd.Series(adata.obs[label_key].to_numpy(), dtype="object")
        counts = labels.value_counts()
        small = counts[counts < min_cells_per_type]
        if len(small):
            logger.warning(
                "Leaving out cell types with fewer than %d cells: %s",
                min_cells_per_type,
                dict(small),
            )
        types = np.array(sorted(str(t) for t in counts.index[counts >= min_cells_per_type]))
        library = np.asarray(X.sum(axis=1)).ravel()
        label_str = labels.astype(str).to_numpy()
        keep_cells = labels.notna().to_numpy() & np.isin(label_str, types) & (library > 0)
        if len(types) == 0 or not keep_cells.any():
            raise InputError(
                f"No cell type in adata.obs[{label_key!r}] has at least "
                f"min_cells_per_type={min_cells_per_type} cells with nonzero counts; "
                f"type sizes: {dict(counts)}. Lower min_cells_per_type."
            )
        X, library = X[keep_cells], library[keep_cells]
        code = np.searchsorted(types, label_str[keep_cells])
        n_cells, n_source = X.shape
        n_per_type = np.bincount(code, minlength=len(types)).astype(np.float64)

        detected = np.bincount(X.indices, minlength=n_source)
        genes = np.flatnonzero(detected >= min_cells_per_gene)
        if len(genes) == 0:
            raise InputError(
                f"No gene is detected in min_cells_per_gene={min_cells_per_gene} "
                "cells; lower min_cells_per_gene."
            )
        ratio = sparse.diags(1.0 / library) @ X  # counts / library size
        global_mean = np.asarray(ratio.mean(axis=0)).ravel()
        floor = FLOOR_COUNTS / library.sum()
        global_profile = (global_mean + floor) / (1.0 + n_source * floor)
        dropped = np.setdiff1d(np.arange(n_source), genes)
        dropped_profile = float(global_profile[dropped].mean()) if len(dropped) else 0.0

        member = sparse.csr_matrix(
            (np.ones(n_cells), (code, np.arange(n_cells))), shape=(len(types), n_cells)
        )
        type_mean = np.asarray((member @ ratio).todense())[:, genes] / n_per_type[:, None]
        profiles = (n_per_type[:, None] * type_mean + PRIOR_CELLS * global_profile[genes]) / (
            n_per_type[:, None] + PRIOR_CELLS
        )
        profiles /= profiles.sum(axis=1, keepdims=True)

        kept = X[:, genes]
        phi = _moment_dispersion(kept, code, library)
        if dispersion == "zeros":  # where there are enough zeros to match
            zeros = n_cells - np.bincount(kept.indices, minlength=len(genes))
            matched = _zero_matched_dispersion(kept, code, library, profiles)
            phi = np.where(zeros >= _MIN_ZEROS, matched, phi)

        log_lib = np.log(library)
        log_mean = np.bincount(code, log_lib) / n_per_type
        log_sd = np.sqrt(
            np.bincount(code, (log_lib - log_mean[code]) ** 2) / np.maximum(n_per_type - 1, 1)
        )
        return cls(
            cell_types=types,
            frequencies=(n_per_type / n_cells).astype(np.float32),
            profiles=profiles.astype(np.float32),
            dispersion=phi.astype(np.float32),
            gene_names=np.asarray(adata.var_names[genes], dtype=str),
            log_library_mean=log_mean.astype(np.float32),
            log_library_sd=log_sd.astype(np.float32),
            n_source_genes=int(n_source),
            dropped_profile=dropped_profile,
            source=f"fit on {n_cells} cells x {n_source} genes, labels {label_key!r}",
        )

    # ---------------------------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to ``path`` as a compressed ``.npz`` (no pickle); returns the path.

        The file is written to a temporary name and renamed, so an existing file is never left
        half written.
        """
        path = Path(path)
        arrays = {name: np.asarray(getattr(self, name)) for name in _ARRAYS}
        arrays["cell_types"] = arrays["cell_types"].astype(str)
        arrays["gene_names"] = arrays["gene_names"].astype(str)
        arrays["meta"] = np.array(
            [FORMAT_VERSION, self.n_source_genes, self.dropped_profile], dtype=np.float64
        )
        arrays["source"] = np.array(self.source)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return atomic_write(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> CountModel:
        """Read a model written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in (*_ARRAYS, "meta", "source") if k not in npz]
            if missing:
                raise InputError(
                    f"{os.fspath(path)!r} is not a CountModel file: it lacks "
                    f"{missing}. Write one with CountModel.save()."
                )
            arrays = {k: npz[k] for k in _ARRAYS}
            version, n_source, dropped = npz["meta"]
            source = str(npz["source"])
        if int(version) != FORMAT_VERSION:
            raise InputError(
                f"{os.fspath(path)!r} has CountModel format {int(version)}; this "
                f"version of scactive reads format {FORMAT_VERSION}."
            )
        arrays["profiles"] = arrays["profiles"].astype(np.float32)
        return cls(
            **arrays, n_source_genes=int(n_source), dropped_profile=float(dropped), source=source
        )

    # --------------------------------------------------------------------------------- sample
    def sample(
        self,
        n_cells: int,
        *,
        n_genes: int | None = None,
        proportions: dict[str, float] | np.ndarray | list[float] | None = None,
        rng: np.random.Generator | int | None = None,
    ) -> ad.AnnData:
        """Draw a synthetic dataset of ``n_cells`` cells.

        Parameters
        ----------
        n_cells
            Number of cells.
        n_genes
            Number of genes; ``None`` keeps the fitted genes. Fewer keeps the most expressed
            fitted genes (by mean profile over the fitted frequencies), in their order; profiles
            are not renormalised: like subsetting the genes of real cells, totals drop. More
            adds genes named ``SYNTH<k>``: first stand-ins for the source genes left out at fit
            time (up to ``n_source_genes``), then genes whose per-type profiles and dispersion
            are resampled from the source genes (fitted or left out, in their original
            proportion); profiles are then renormalised to sum to 1.
        proportions
            Cell-type proportions (a mapping from type name, missing types get 0, or one value
            per type in ``cell_types`` order); normalised to sum to 1. ``None`` uses the
            fitted frequencies.
        rng
            Seed or generator; the same seed gives the same data.

        Returns
        -------
        AnnData with ``X`` a CSR matrix of integer counts stored as float32,
        ``obs['cell_type']`` (categorical over all ``cell_types``), obs names ``cell0..`` and
        the gene names as var names.
        """
        if isinstance(n_cells, bool) or not isinstance(n_cells, int | np.integer) or n_cells < 1:
            raise InputError(f"n_cells={n_cells!r}; expected a positive integer.")
        if n_genes is not None and (
            isinstance(n_genes, bool) or not isinstance(n_genes, int | np.integer) or n_genes < 1
        ):
            raise InputError(f"n_genes={n_genes!r}; expected a positive integer or None.")
        probs = self._proportions(proportions)
        rng = np.random.default_rng(rng)
        profiles, phi, names = self._genes(int(n_genes or self.n_genes), rng)

        labels = rng.choice(self.n_types, size=int(n_cells), p=probs)
        blocks, order = [], []
        for t in range(self.n_types):
            cells = np.flatnonzero(labels == t)
            if len(cells) == 0:
                continue
            library = np.exp(
                rng.normal(self.log_library_mean[t], self.log_library_sd[t], len(cells))
            )
            by_size = np.argsort(library)
            blocks.extend(_sample_nb(library[by_size], profiles[t], phi, rng))
            order.append(cells[by_size])
        X = assemble_rows(blocks, np.concatenate(order), n_genes=len(names))
        obs = pd.DataFrame(
            {"cell_type": pd.Categorical.from_codes(labels, categories=list(self.cell_types))},
            index=[f"cell{i}" for i in range(n_cells)],
        )
        adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=names))
        adata.uns["scactive_default_label_key"] = "cell_type"
        adata.uns["synthetic"] = {"source": self.source}
        return adata

    def _proportions(self, proportions) -> np.ndarray:
        if proportions is None:
            probs = np.asarray(self.frequencies, dtype=np.float64)
        elif isinstance(proportions, dict):
            unknown = sorted(set(proportions) - set(self.cell_types))
            if unknown:
                raise InputError(
                    f"proportions has unknown cell types {unknown}; valid: {list(self.cell_types)}."
                )
            probs = np.array([float(proportions.get(t, 0.0)) for t in self.cell_types])
        else:
            probs = np.asarray(proportions, dtype=np.float64).ravel()
            if len(probs) != self.n_types:
                raise InputError(
                    f"proportions has {len(probs)} values; expected one per cell "
                    f"type ({self.n_types}: {list(self.cell_types)})."
                )
        if not np.all(np.isfinite(probs)) or np.any(probs < 0) or probs.sum() <= 0:
            raise InputError(
                f"proportions={proportions!r}; expected non-negative numbers with a positive sum."
            )
        return probs / probs.sum()

    def _genes(self, n_genes: int, rng: np.random.Generator):
        """Profiles (float64), dispersions and names of ``n_genes`` genes."""
        profiles = self.profiles.astype(np.float64)
        phi = self.dispersion.astype(np.float64)
        names = np.asarray(self.gene_names, dtype=object)
        if n_genes <= self.n_genes:
            overall = np.asarray(self.frequencies, dtype=np.float64) @ profiles
            keep = np.sort(np.argsort(-overall, kind="stable")[:n_genes])
            return profiles[:, keep], phi[keep], names[keep]
        n_dropped = max(self.n_source_genes - self.n_genes, 0)
        extra = n_genes - self.n_genes
        # Stand-ins for source genes left out at fit time, then resampled source genes.
        silent = np.zeros(extra, dtype=bool)
        silent[: min(extra, n_dropped)] = True
        beyond = extra - min(extra, n_dropped)
        silent[extra - beyond :] = rng.random(beyond) < n_dropped / (n_dropped + self.n_genes)
        source = rng.integers(0, self.n_genes, extra)
        extra_profiles = profiles[:, source]
        extra_profiles[:, silent] = self.dropped_profile
        extra_phi = np.where(silent, np.median(phi), phi[source])
        profiles = np.concatenate([profiles, extra_profiles], axis=1)
        profiles /= profiles.sum(axis=1, keepdims=True)
        names = np.concatenate([names, [f"SYNTH{k}" for k in range(extra)]])
        return profiles, np.concatenate([phi, extra_phi]), names
