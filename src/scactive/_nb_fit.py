"""Fitting helpers of the count model: per-gene dispersion estimates and the raw-count check.

Used by :meth:`scactive._synthetic.CountModel.fit` (see :mod:`scactive._count_model`).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ._errors import InputError

PHI_RANGE = (0.01, 10.0)  # clip of the dispersion phi in var = mu + phi * mu**2
_LIBRARY_BINS = 16  # library-size quantiles per type when matching zeros


def _moment_dispersion(X: sparse.csr_matrix, code: np.ndarray, library: np.ndarray) -> np.ndarray:
    """Per-gene phi by the method of moments on size-factor normalised counts, pooled in types.

    With y = x / s and x ~ NB(s * mu, phi), var(y) = mu * E[1/s] + phi * mu**2 within a type;
    the excess over the Poisson part is pooled over types as
    sum_t (n_t - 1) (v_t - m_t E_t[1/s]) / sum_t (n_t - 1) m_t**2. Clipped to ``PHI_RANGE``;
    genes never seen get the median.
    """
    n_types = code.max() + 1
    n_t = np.bincount(code, minlength=n_types).astype(np.float64)[:, None]
    size_factor = library / library.mean()
    member = sparse.csr_matrix((np.ones(len(code)), (code, np.arange(len(code)))))
    y = sparse.diags(1.0 / size_factor) @ X
    mean = np.asarray((member @ y).todense()) / n_t
    sq_mean = np.asarray((member @ y.multiply(y)).todense()) / n_t
    dof = n_t - 1.0
    var = (sq_mean - mean**2) * n_t / np.maximum(dof, 1.0)
    poisson = mean * (np.bincount(code, 1.0 / size_factor) / n_t[:, 0])[:, None]
    num = (dof * (var - poisson)).sum(axis=0)
    den = (dof * mean**2).sum(axis=0)
    ok = den > 0
    phi = np.full(X.shape[1], np.nan)
    phi[ok] = np.clip(num[ok] / den[ok], *PHI_RANGE)
    phi[~ok] = np.median(phi[ok]) if ok.any() else 1.0
    return phi


def _zero_matched_dispersion(
    X: sparse.csr_matrix, code: np.ndarray, library: np.ndarray, profiles: np.ndarray
) -> np.ndarray:
    """Per-gene phi such that the NB model has as many zeros as the data, summed over types.

    Expected zeros are sum_t sum_i (1 + phi mu_ti)**(-1 / phi) with mu_ti = library_i *
    profile_t, the cells of a type summarised by ``_LIBRARY_BINS`` library-size quantiles;
    increasing in phi, solved by bisection on log phi within ``PHI_RANGE``.
    """
    n_types = profiles.shape[0]
    n_t = np.bincount(code, minlength=n_types)
    detected = np.bincount(X.indices, minlength=X.shape[1])
    observed_zeros = len(code) - detected
    levels = (np.arange(_LIBRARY_BINS) + 0.5) / _LIBRARY_BINS
    mu = np.concatenate(
        [np.quantile(library[code == t], levels)[:, None] * profiles[t] for t in range(n_types)]
    )  # (types * bins, genes)
    weight = np.repeat(n_t / _LIBRARY_BINS, _LIBRARY_BINS)[:, None]
    lo = np.full(X.shape[1], np.log(PHI_RANGE[0]))
    hi = np.full(X.shape[1], np.log(PHI_RANGE[1]))
    for _ in range(30):
        mid = (lo + hi) / 2
        phi = np.exp(mid)
        zeros = (weight * np.exp(-np.log1p(phi * mu) / phi)).sum(axis=0)
        more = zeros < observed_zeros  # the model needs more zeros: larger phi
        lo, hi = np.where(more, mid, lo), np.where(more, hi, mid)
    return np.clip(np.exp((lo + hi) / 2), *PHI_RANGE)


def _check_counts(values: np.ndarray, where: str) -> None:
    """Raise if the stored values of a count matrix are not non-negative integers."""
    problem = None
    if values.size == 0 or not np.any(values):
        problem = "it has no nonzero value"
    elif not np.all(np.isfinite(values)):
        problem = "it has NaN or infinite values"
    elif values.min() < 0:
        problem = f"it has negative values (min {values.min():g})"
    elif not np.array_equal(values, np.round(values)):
        frac = values[values != np.round(values)][:3]
        problem = f"it has non-integer values (e.g. {', '.join(f'{v:g}' for v in frac)})"
    if problem:
        raise InputError(
            f"{where} does not look like raw counts: {problem}. CountModel.fit needs raw integer "
            "counts (e.g. UMIs); pass layer= to use a layer that holds them."
        )
