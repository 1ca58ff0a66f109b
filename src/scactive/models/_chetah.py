"""CHETAH (de Kanter et al., Nucleic Acids Research 2019), in Python.

Follows ``CHETAHclassifier`` of the R package with its defaults (Spearman correlation,
average linkage, ``n_genes`` genes by fold change per node, confidence threshold 0.1).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.cluster.hierarchy import linkage, to_tree
from scipy.spatial.distance import pdist

from ._annotator import (
    UNASSIGNED,
    BaselineAnnotator,
    Matrix,
    class_means,
    iter_chunks,
    row_ranks,
    unit_rows,
)


@dataclass
class ChetahNode:
    """A node of CHETAH's classification tree; ``print(node)`` draws the tree below it.

    Inner nodes are named ``Node0`` (the root), ``Node1``, ... top-down, first branch first;
    a leaf is named after its reference type.
    """

    name: str
    types: list[str]
    children: tuple[ChetahNode, ...] = ()
    height: float = 0.0

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def walk(self) -> Iterator[ChetahNode]:
        """This node and every node below it, top-down, first branch first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def _label(self) -> str:
        if self.is_leaf:
            return self.name
        root = f" (stopping here: {UNASSIGNED})" if self.name == "Node0" else ""
        return f"{self.name}{root}: {', '.join(self.types)}"

    def __str__(self) -> str:
        lines = [self._label()]

        def draw(node: ChetahNode, prefix: str) -> None:
            for i, child in enumerate(node.children):
                last = i == len(node.children) - 1
                lines.append(f"{prefix}{'└── ' if last else '├── '}{child._label()}")
                draw(child, prefix + ("    " if last else "│   "))

        draw(self, "")
        return "\n".join(lines)


@dataclass
class _Split:
    """What an inner node needs to score query cells."""

    branches: list[np.ndarray]  # type codes of the two branches
    targets: list[tuple[bool, int]] = field(default_factory=list)  # (is leaf, type or split)
    types: np.ndarray = field(init=False)  # every type code below the node
    branch_of: np.ndarray = field(init=False)  # the branch (0, 1) of each of ``types``
    genes: list[np.ndarray] = field(default_factory=list)  # per type: its genes here
    profiles: list[np.ndarray] = field(default_factory=list)  # per type: centred unit ranks
    cor_type: list[np.ndarray] = field(default_factory=list)  # per type: sorted, own cells
    cor_other: list[np.ndarray] = field(default_factory=list)  # ... the other branch's cells

    def __post_init__(self) -> None:
        self.types = np.concatenate(self.branches)
        self.branch_of = np.repeat([0, 1], [len(b) for b in self.branches])


class Chetah(BaselineAnnotator):
    """CHETAH: classify cells top-down through a tree of the reference types.

    Fitting (``CHETAHclassifier``):

    1. The profile of a type is the mean log expression of its reference cells. The tree is
       the average-linkage hierarchical clustering of the profiles by Spearman correlation
       distance (``1 - rho``, CHETAH's ``spearman.dist``; scipy's ``"correlation"`` distance
       of the ranked profiles).
    2. At every inner node, for every type ``t`` below it: the ``n_genes`` genes with the
       largest absolute difference between ``t``'s profile and the mean profile of the other
       branch's types (``FindDiscrGenes``); the Spearman correlation on those genes of every
       reference cell of ``t`` and of the other branch with ``t``'s profile.

    Classifying a query cell, at each node it reaches (``ScoreNode``, ``Classify``):

    - ``rho_t``: its Spearman correlation with the profile of each type ``t`` below the node,
      on ``t``'s genes;
    - profile score ``P_t = F_t(rho_t) - (1 - G_t(rho_t))``, with ``F_t`` the empirical
      distribution function of the reference cells of ``t`` and ``G_t`` that of the other
      branch's cells (both correlated with ``t``'s profile): in [-1, 1], high when the cell
      resembles ``t`` at least as much as ``t``'s own cells do;
    - confidence ``C_t = P_t - mean(P_u for u in the other branch)``, in [-2, 2];
    - the cell goes towards the type with the highest ``P_t``: into its branch when
      ``C_t >= threshold`` (to the next node, or that type at a leaf); otherwise it stops
      and is called after the node: :data:`UNASSIGNED` at the root ``Node0``, the node's
      name (``"Node1"``, ...) at an inner node.

    Parameters
    ----------
    threshold
        Confidence needed to go down a branch (CHETAH's default 0.1; 0 classifies almost
        every cell to a leaf).
    n_genes
        Genes per type and node (capped at the number of genes).

    Attributes
    ----------
    classes_
        The reference types, sorted.
    tree_
        The classification tree (:class:`ChetahNode`); ``print(model.tree_)`` draws it.
    nodes_
        Inner node name -> sorted reference types below it (``"Node0"`` is the root).
    genes_
        Inner node name -> type -> positions of the genes used for that type there.
    profiles_
        Mean log expression of each type, types x genes.

    Notes
    -----
    ``predict_score`` is the confidence ``C_t`` of the last decision (the one that stopped
    the cell, or the one that reached its leaf). ``predict_proba`` ignores the threshold: at
    each node the two branches get probabilities proportional to ``1 + max P_t`` over their
    types; each type gets the smallest branch probability on its path from the root (its
    weakest decision), and these are normalised to sum to 1. The type CHETAH's walk reaches
    with no threshold takes every branch with probability >= 0.5 and every other type leaves
    that path through a branch with probability <= 0.5, so the most probable type is always
    the one CHETAH would call. (A product of branch probabilities would not have this
    property: it favours types near the root over types deep in the tree.)
    """

    def __init__(self, threshold: float = 0.1, n_genes: int = 200) -> None:
        self.threshold = threshold
        self.n_genes = n_genes

    def _fit(self, X: Matrix, codes: np.ndarray) -> None:
        if self.n_genes < 2:
            raise ValueError(f"n_genes={self.n_genes}; expected at least 2 (a correlation).")
        named_like_nodes = [c for c in self.classes_ if re.fullmatch(r"Node\d+", str(c))]
        if named_like_nodes:
            raise ValueError(
                f"CHETAH calls cells it stops at an inner node 'Node<k>', so no reference type "
                f"may be named so; rename {named_like_nodes}."
            )
        profiles = class_means(X, codes, len(self.classes_))
        distance = np.nan_to_num(pdist(row_ranks(profiles), "correlation"), nan=1.0)
        root = to_tree(linkage(np.clip(distance, 0, None), method="average"))
        self.profiles_ = profiles
        self._splits_: list[_Split] = []
        self.tree_ = self._grow(root, X, codes)
        self.nodes_ = {n.name: list(n.types) for n in self.tree_.walk() if not n.is_leaf}
        self.genes_ = {
            f"Node{s}": {
                str(self.classes_[t]): g for t, g in zip(split.types, split.genes, strict=True)
            }
            for s, split in enumerate(self._splits_)
        }

    def _grow(self, cluster, X: Matrix, codes: np.ndarray) -> ChetahNode:
        """The subtree of scipy ``cluster``, registering its splits top-down."""
        if cluster.is_leaf():
            name = str(self.classes_[cluster.id])
            return ChetahNode(name, [name])
        kids = sorted([cluster.left, cluster.right], key=lambda c: min(c.pre_order()))
        split = _Split([np.sort(k.pre_order()) for k in kids])
        index = len(self._splits_)
        self._splits_.append(split)
        self._select_and_correlate(split, X, codes)
        children = []
        for kid in kids:
            split.targets.append((True, kid.id) if kid.is_leaf() else (False, len(self._splits_)))
            children.append(self._grow(kid, X, codes))
        types = sorted(map(str, self.classes_[split.types]))
        return ChetahNode(f"Node{index}", types, tuple(children), float(cluster.dist))

    def _select_and_correlate(self, split: _Split, X: Matrix, codes: np.ndarray) -> None:
        n_genes = min(self.n_genes, X.shape[1])
        for t, b in zip(split.types, split.branch_of, strict=True):
            diff = self.profiles_[t] - self.profiles_[split.branches[1 - b]].mean(axis=0)
            genes = np.argsort(-np.abs(diff), kind="stable")[:n_genes]
            split.genes.append(genes)
            split.profiles.append(
                unit_rows(row_ranks(self.profiles_[t, genes][None]), center=True)[0][0]
            )
        cells = np.flatnonzero(np.isin(codes, split.types))
        cors = np.empty((len(cells), len(split.types)))
        for where, block in iter_chunks(X, cells):
            cors[where] = _correlate(block, split)
        cell_types = codes[cells]
        for j, (t, b) in enumerate(zip(split.types, split.branch_of, strict=True)):
            split.cor_type.append(np.sort(cors[cell_types == t, j]))
            split.cor_other.append(np.sort(cors[np.isin(cell_types, split.branches[1 - b]), j]))

    def _scores(self, split: _Split, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Profile and confidence scores of cells ``block`` for each type below ``split``."""
        cors = _correlate(block, split)
        profile = np.empty_like(cors)
        for j in range(cors.shape[1]):
            good = np.searchsorted(split.cor_type[j], cors[:, j], side="right")
            false = np.searchsorted(split.cor_other[j], cors[:, j], side="right")
            profile[:, j] = good / len(split.cor_type[j]) - (1 - false / len(split.cor_other[j]))
        branch_mean = np.stack(
            [profile[:, split.branch_of == b].mean(axis=1) for b in (0, 1)], axis=1
        )
        return profile, profile - branch_mean[:, 1 - split.branch_of]

    def _predict_with_score(self, X: Matrix) -> tuple[np.ndarray, np.ndarray]:
        labels = np.empty(X.shape[0], dtype=object)
        scores = np.empty(X.shape[0])
        for where, block in iter_chunks(X):
            at = np.zeros(len(block), dtype=int)  # the split each cell is at
            done = np.zeros(len(block), dtype=bool)
            chunk_labels, chunk_scores = labels[where], scores[where]
            for s, split in enumerate(self._splits_):
                here = np.flatnonzero(~done & (at == s))
                if not here.size:
                    continue
                profile, confidence = self._scores(split, block[here])
                best = profile.argmax(axis=1)
                conf = confidence[np.arange(len(here)), best]
                chunk_scores[here] = conf
                stop = conf < self.threshold
                chunk_labels[here[stop]] = UNASSIGNED if s == 0 else f"Node{s}"
                done[here[stop]] = True
                go, branch = here[~stop], split.branch_of[best[~stop]]
                for b, (is_leaf, target) in enumerate(split.targets):
                    cells = go[branch == b]
                    if is_leaf:
                        chunk_labels[cells] = self.classes_[target]
                        done[cells] = True
                    else:
                        at[cells] = target
        return labels, scores

    def predict_proba(self, X: Matrix) -> np.ndarray:
        """Weakest branch probability on each type's path, normalised (columns ``classes_``)."""
        X = self._check_query(X)
        out = np.zeros((X.shape[0], len(self.classes_)))
        for where, block in iter_chunks(X):
            weakest = {0: np.ones(len(block))}
            chunk = out[where]
            for s, split in enumerate(self._splits_):
                profile, _ = self._scores(split, block)
                weight = 1 + np.stack(
                    [profile[:, split.branch_of == b].max(axis=1) for b in (0, 1)], axis=1
                )
                total = weight.sum(axis=1, keepdims=True)
                p = np.divide(weight, total, out=np.full_like(weight, 0.5), where=total > 0)
                for b, (is_leaf, target) in enumerate(split.targets):
                    reach = np.minimum(weakest[s], p[:, b])
                    if is_leaf:
                        chunk[:, target] = reach
                    else:
                        weakest[target] = reach
            chunk /= chunk.sum(axis=1, keepdims=True)
        return out


def _correlate(block: np.ndarray, split: _Split) -> np.ndarray:
    """Spearman correlation of each cell with each type's profile, on that type's genes.

    A cell constant on the genes (correlation undefined) gets 0, as in CHETAH.
    """
    out = np.empty((len(block), len(split.types)))
    for j, (genes, profile) in enumerate(zip(split.genes, split.profiles, strict=True)):
        out[:, j] = unit_rows(row_ranks(block[:, genes]), center=True)[0] @ profile
    return out
