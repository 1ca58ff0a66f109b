"""Fast negative-binomial sampling of sparse count matrices (used by :mod:`scactive._synthetic`)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

_CHUNK_CELLS = 1024
_DENSE_Q = 0.3  # genes detected with probability above this in a chunk are drawn for every cell


def _sample_nb(
    library: np.ndarray, profile: np.ndarray, phi: np.ndarray, rng: np.random.Generator
) -> list[sparse.csr_matrix]:
    """Counts ~ NB(mean=library[i] * profile[j], dispersion phi[j]) as CSR chunks of cells.

    Cells should come sorted by library size, so each chunk of cells has similar sizes and the
    thinning of rarely detected genes wastes few candidates.
    """
    n_genes = len(profile)
    shape = 1.0 / phi
    chunks = []
    for start in range(0, len(library), _CHUNK_CELLS):
        lib = library[start : start + _CHUNK_CELLS]
        c = len(lib)
        q_max = _detect_prob(lib.max() * profile, phi)
        dense = np.flatnonzero(q_max > _DENSE_Q)
        rare = np.flatnonzero((q_max <= _DENSE_Q) & (q_max > 0))
        rows, cols, vals = [], [], []
        if len(dense):  # gamma-Poisson for every entry
            rate = rng.standard_gamma(np.broadcast_to(shape[dense], (c, len(dense))))
            rate *= lib[:, None] * (profile[dense] * phi[dense])[None, :]
            counts = rng.poisson(rate)
            r, k = np.nonzero(counts)
            rows.append(r), cols.append(dense[k]), vals.append(counts[r, k])
        if len(rare):  # thinning: each (cell, gene) is a candidate with probability q_max[gene]
            slot, cell = _bernoulli_positions(q_max[rare], c, rng)
            gene = rare[slot]
            u = rng.random(len(gene)) * q_max[gene]
            mu = lib[cell] * profile[gene]
            q = _detect_prob(mu, phi[gene])
            hit = u < q
            gene, cell, u, mu, q = gene[hit], cell[hit], u[hit], mu[hit], q[hit]
            rows.append(cell), cols.append(gene), vals.append(_tail_inverse(u, q, mu, shape[gene]))
        rows.append(np.zeros(0, np.int64)), cols.append(np.zeros(0, np.int64))
        vals.append(np.zeros(0, np.int64))
        chunk = sparse.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
            shape=(c, n_genes),
        )
        chunks.append(chunk)
    return chunks


def _detect_prob(mu: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """P(count > 0) under NB(mu, phi) = 1 - (1 + phi * mu) ** (-1 / phi)."""
    return -np.expm1(-np.log1p(phi * mu) / phi)


def _bernoulli_positions(
    q: np.ndarray, c: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Successes of ``c`` Bernoulli(q[s]) trials for every slot s, as (slot, position) arrays.

    Positions are cumulative sums of geometric gaps, so they come out distinct and sorted within
    each slot without drawing every trial; slots whose gaps did not reach ``c`` draw more.
    """
    slots, positions = [], []
    pending = np.flatnonzero(q > 0)
    last = np.full(len(q), -1, dtype=np.int64)  # position of the latest success per slot
    while len(pending):
        expected = c * q[pending]
        n_gaps = np.ceil(expected + 5.0 * np.sqrt(expected) + 5.0).astype(np.int64)
        n_gaps = np.minimum(n_gaps, c)
        gaps = rng.geometric(np.repeat(q[pending], n_gaps))
        ends = np.cumsum(n_gaps)
        total = np.cumsum(gaps)
        before = np.concatenate([[0], total[ends[:-1] - 1]])  # cumsum before each segment
        seg = np.repeat(np.arange(len(pending)), n_gaps)
        pos = total - before[seg] + last[pending][seg]
        keep = pos < c
        slots.append(pending[seg[keep]]), positions.append(pos[keep])
        last[pending] = pos[ends - 1]
        pending = pending[pos[ends - 1] < c - 1]
    return np.concatenate(slots), np.concatenate(positions)


def _tail_inverse(u: np.ndarray, q: np.ndarray, mu: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Counts given u ~ U(0, q) with q = P(X > 0): X = #{k >= 1 : u < P(X >= k)}, X ~ NB."""
    x = np.ones(len(u), dtype=np.int64)
    odds = mu / (r + mu)
    pmf = (1.0 - q) * r * odds  # P(X = 1)
    tail = q - pmf  # P(X >= 2)
    active = np.flatnonzero(u < tail)
    while len(active):
        x[active] += 1
        k = x[active]
        pmf[active] *= (k - 1 + r[active]) / k * odds[active]
        tail[active] -= pmf[active]
        active = active[u[active] < tail[active]]
    return x


def assemble_rows(blocks: list, rows: np.ndarray, *, n_genes: int) -> sparse.csr_matrix:
    """One CSR matrix whose row ``rows[j]`` is the ``j``-th row of the stacked ``blocks``.

    Written straight into the result, each block freed once copied (``blocks`` is emptied):
    the peak is the blocks and the result, not also a stacked copy and a permuted one (a
    million cells: 14 GB, where stacking then permuting went past 22 GB).
    """
    lengths = np.concatenate([np.diff(b.indptr) for b in blocks])
    per_row = np.zeros(len(rows), dtype=np.int64)
    per_row[rows] = lengths
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(per_row, out=indptr[1:])
    data = np.empty(indptr[-1], dtype=np.float32)
    indices = np.empty(indptr[-1], dtype=np.int32)
    blocks.reverse()
    at = 0
    while blocks:
        block = blocks.pop()
        target = rows[at : at + block.shape[0]]
        at += block.shape[0]
        counts = np.diff(block.indptr)
        where = np.repeat(indptr[target] - block.indptr[:-1], counts) + np.arange(block.nnz)
        data[where] = block.data
        indices[where] = block.indices
        del block
    if indptr[-1] < 2**31:
        indptr = indptr.astype(np.int32)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), n_genes))
