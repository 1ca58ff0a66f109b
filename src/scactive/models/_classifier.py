"""A scikit-learn style classifier around the MLP, with MC-dropout sampling."""

from __future__ import annotations

import logging
import math
import threading

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .._random import derive_seed
from .._threads import hold as hold_threads
from ._network import MLP

logger = logging.getLogger("scactive")

_PREDICT_CHUNK = 8192

# Tiny gradients late in training turn into denormal floats, which the CPU handles up to 10x
# slower; flushing them to zero changes nothing measurable and keeps every step fast.
torch.set_flush_denormal(True)


#: Held while torch's global generator is seeded and drawn from (initial weights, training
#: dropout): it is shared by every thread of the process, so two networks training in two
#: threads (a comparison's units, a session's training beside a query) would each draw the
#: other's numbers, and their results would depend on timing. MC-dropout draws use a
#: generator of their own.
GLOBAL_RNG = threading.RLock()


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """The paper's MLP with the scikit-learn API.

    Training runs ``max(epochs * ceil(n / batch_size), min_steps)`` mini-batch steps: a fixed
    number of epochs gives only a few dozen steps on a small labeled set, too few to fit; the
    floor of steps makes the learner strong from 20 labels on. When that exceeds ``max_steps``
    (large labeled sets), the mini-batches grow instead so that the epochs stay the same and the
    steps stay near ``max_steps``, up to ``max_batch_size`` cells per batch; past that the
    epochs drop, so that a fit's work is bounded (the presets: 300 steps of at most 128 cells,
    well under a second on one core however many cells are labeled).

    Parameters
    ----------
    hidden
        Units per hidden layer: ``(256, 256)`` is the paper's two-layer net, ``(256, 256, 64)``
        the three-layer variant.
    dropout
        Dropout rate after every hidden layer (also the MC-dropout rate of :meth:`sample_proba`).
    layer_norm
        LayerNorm after every hidden linear layer.
    optimizer
        ``"adam"`` or ``"sgd"`` (plain mini-batch SGD, as in the paper).
    lr
        Learning rate.
    weight_decay
        L2 penalty (decoupled for Adam: AdamW).
    epochs
        Passes over the labeled cells.
    batch_size
        Cells per mini-batch.
    min_steps, max_steps
        Floor on the number of optimiser steps, and the number above which mini-batches grow
        instead (``None``: never).
    max_batch_size
        Largest mini-batch the growth may reach; beyond it, training stops at ``max_steps``
        steps of this size (fewer epochs): a fit never passes more than
        ``max_steps * max_batch_size`` cells through the network (``None``: no bound).
    class_weight
        ``None``, ``"balanced"`` (weights inverse to class frequency in the labeled set) or a
        dict mapping each class to its weight in the loss (a class left out weighs 1).
    warm_start
        Continue training the previous network on the next :meth:`fit` instead of starting
        from new random weights (when the classes are unchanged). The active-learning loop
        retrains from scratch each round unless this is set.
    projection, projection_offset
        A frozen linear input map, genes x components, applied as
        ``(X - projection_offset) @ projection`` before the first hidden layer (see
        :func:`scactive.models.make_learner`, which passes the pool's PCA).
    random_state
        Seed or generator for initial weights, mini-batch order and dropout.

    Attributes
    ----------
    classes_
        Class labels, in the column order of :meth:`predict_proba`.
    n_features_in_
        Genes (columns) of the training features.
    network_
        The trained :class:`~scactive.models.MLP`.
    n_steps_
        Optimiser steps of the last :meth:`fit`.
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (256, 256),
        dropout: float = 0.3,
        layer_norm: bool = False,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        epochs: int = 20,
        batch_size: int = 64,
        min_steps: int = 300,
        max_steps: int | None = None,
        max_batch_size: int | None = None,
        class_weight: str | None = "balanced",
        warm_start: bool = False,
        projection: np.ndarray | None = None,
        projection_offset: np.ndarray | None = None,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.layer_norm = layer_norm
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.min_steps = min_steps
        self.max_steps = max_steps
        self.max_batch_size = max_batch_size
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.projection = projection
        self.projection_offset = projection_offset
        self.random_state = random_state

    # -- training -------------------------------------------------------------------------
    def fit(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> MLPClassifier:
        """Train on features ``X`` (cells x genes) and labels ``y``; ``sample_weight``
        scales each cell's loss (on top of the class weights)."""
        hold_threads()
        with GLOBAL_RNG:
            return self._fit(X, y, sample_weight)

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight=None) -> MLPClassifier:
        X, y = validate_data(self, X, y, dtype=np.float32)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float32)
        check_classification_targets(y)
        classes, y_index = np.unique(y, return_inverse=True)
        rng = np.random.default_rng(self.random_state)
        generator = torch.Generator().manual_seed(derive_seed(rng))
        reuse = (
            self.warm_start and hasattr(self, "network_") and np.array_equal(classes, self.classes_)
        )
        self.classes_ = classes
        if not reuse:
            torch.manual_seed(derive_seed(rng))
            self.network_ = MLP(
                X.shape[1],
                len(classes),
                tuple(self.hidden),
                self.dropout,
                self.layer_norm,
                self.projection,
                self.projection_offset,
            )
        net = self.network_
        trainable = [p for p in net.parameters() if p.requires_grad]
        if self.optimizer == "adam":
            # fused: one kernel for all parameters (a 600-step fit 1.15 s instead of 1.38)
            opt = torch.optim.AdamW(
                trainable, lr=self.lr, weight_decay=self.weight_decay, fused=True
            )
        elif self.optimizer == "sgd":
            opt = torch.optim.SGD(trainable, lr=self.lr, weight_decay=self.weight_decay)
        else:
            raise ValueError(f"optimizer={self.optimizer!r}; expected 'adam' or 'sgd'")
        weight = None
        if isinstance(self.class_weight, dict):
            weight = torch.as_tensor(
                compute_class_weight(self.class_weight, classes=classes, y=y), dtype=torch.float32
            )
        elif self.class_weight == "balanced" and len(classes) > 1:
            weight = torch.as_tensor(
                compute_class_weight("balanced", classes=np.arange(len(classes)), y=y_index),
                dtype=torch.float32,
            )
        elif self.class_weight not in (None, "balanced"):
            raise ValueError(
                f"class_weight={self.class_weight!r}; expected None, 'balanced' or a dict "
                "{class: weight}."
            )
        loss_fn = _loss(weight, sample_weight, y_index)
        n = len(y_index)
        batch, n_steps = self._schedule(n)
        with torch.no_grad():  # the frozen projection, once, not at every step
            X_t = net.project(torch.from_numpy(X))
        y_t = torch.from_numpy(y_index.astype(np.int64))
        net.train()
        step = 0
        while step < n_steps:
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, batch):
                idx = order[start : start + batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net.from_projected(X_t[idx]), y_t[idx], idx)
                loss.backward()
                opt.step()
                step += 1
                if step >= n_steps:
                    break
        net.eval()
        self.n_steps_ = n_steps
        return self

    def _schedule(self, n: int) -> tuple[int, int]:
        """Mini-batch size and number of optimiser steps for ``n`` labeled cells."""
        batch = min(self.batch_size, n)
        n_steps = max(self.epochs * math.ceil(n / batch), self.min_steps)
        if self.max_steps is not None and n_steps > self.max_steps:
            # keep the epochs, take larger mini-batches: each step costs little more
            batch = min(n, math.ceil(n * self.epochs / self.max_steps))
            if self.max_batch_size is not None and batch > self.max_batch_size:
                return self.max_batch_size, self.max_steps  # fewer epochs, bounded work
            n_steps = max(self.epochs * math.ceil(n / batch), self.min_steps)
        return batch, n_steps

    # -- prediction -----------------------------------------------------------------------
    @torch.no_grad()
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (cells x classes, columns in ``classes_``), dropout off."""
        hold_threads()
        X = self._check_query(X)
        self.network_.eval()
        out = [
            torch.softmax(self.network_(torch.from_numpy(chunk)), dim=1).numpy()
            for chunk in _chunks(X)
        ]
        return np.concatenate(out) if out else np.empty((0, len(self.classes_)), np.float32)

    @torch.no_grad()
    def sample_proba(
        self, X: np.ndarray, n_draws: int = 10, *, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """MC-dropout probabilities, shape ``(n_draws, n_cells, n_classes)``.

        Each draw drops one set of hidden units for every cell: a sub-network, as a member of
        a committee, and its mask is drawn once rather than once per cell (drawing the masks
        of 22,000 cells cost more than the network itself). LayerNorm and everything else
        behave as at inference; the first hidden layer, which has no dropout before it, is
        computed once. The draws depend on ``rng`` only (a generator of their own).
        """
        hold_threads()
        X = self._check_query(X)
        net = self.network_
        net.eval()
        seed = derive_seed(rng if rng is not None else self.random_state)
        generator = torch.Generator().manual_seed(seed)
        masks = [net.draw_masks(generator) for _ in range(n_draws)]
        out = np.empty((n_draws, len(X), len(self.classes_)), dtype=np.float32)
        start = 0
        for chunk in _chunks(X):
            h = net.first_activation(torch.from_numpy(chunk))
            for draw, mask in enumerate(masks):
                logits = net.from_first(h, mask)
                out[draw, start : start + len(chunk)] = torch.softmax(logits, dim=1).numpy()
            start += len(chunk)
        return out

    @torch.no_grad()
    def hidden_activations(self, X: np.ndarray) -> np.ndarray:
        """The last hidden layer of every cell (cells x units), dropout off: the cells as
        the output layer sees them (BADGE's gradient embedding reads them)."""
        hold_threads()
        X = self._check_query(X)
        self.network_.eval()
        out = [self.network_.last_hidden(torch.from_numpy(chunk)).numpy() for chunk in _chunks(X)]
        width = self.network_.head.in_features
        return np.concatenate(out) if out else np.empty((0, width), np.float32)

    def _check_query(self, X: np.ndarray) -> np.ndarray:
        """``X`` as float32 cells x genes, the genes of :meth:`fit`; refuses NaN and sparse."""
        check_is_fitted(self, "network_")
        return validate_data(self, X, reset=False, dtype=np.float32, ensure_min_samples=0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class of each cell."""
        proba = self.predict_proba(X)  # checks first: unfitted, no classes_ yet
        return self.classes_[np.argmax(proba, axis=1)]


def _loss(class_weight, sample_weight, y_index: np.ndarray):
    """``loss(logits, targets, idx)``: cross-entropy over a mini-batch ``idx``, weighted by
    class and, when given, by cell (each cell's share is its class weight x its weight)."""
    if sample_weight is None:
        cross_entropy = torch.nn.CrossEntropyLoss(weight=class_weight)
        return lambda logits, targets, idx: cross_entropy(logits, targets)
    cross_entropy = torch.nn.CrossEntropyLoss(reduction="none")
    per_cell = torch.from_numpy(sample_weight)
    if class_weight is not None:
        per_cell = per_cell * class_weight[torch.from_numpy(y_index.astype(np.int64))]

    def loss(logits, targets, idx):
        w = per_cell[idx]
        return (cross_entropy(logits, targets) * w).sum() / w.sum().clamp_min(1e-12)

    return loss


def _chunks(X: np.ndarray):
    X = np.asarray(X, dtype=np.float32)
    for start in range(0, len(X), _PREDICT_CHUNK):
        yield np.ascontiguousarray(X[start : start + _PREDICT_CHUNK])
