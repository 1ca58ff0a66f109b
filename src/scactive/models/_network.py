"""The paper's multilayer perceptron (section 2.2.1), the network only."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Dropout(nn.Module):
    """Inverted dropout with its mask drawn by ``torch.rand``: the distribution of
    :class:`torch.nn.Dropout`, at half its cost on CPU, where ``bernoulli_`` is slow (0.37 vs
    0.18 ms for 147 x 256 values on one thread; ``docs/benchmarks.md``)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout rate {p}; expected 0 <= p < 1")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MLP(nn.Module):
    """Fully connected network: ``Linear -> [LayerNorm] -> ReLU -> Dropout`` per hidden layer.

    An optional frozen ``projection`` (genes x components, e.g. PCA loadings fitted on the
    unlabeled pool) maps the genes to a few components before the first hidden layer; it
    regularises the network strongly when few cells are labeled. The last hidden layer feeds
    a linear output layer giving one logit per class; softmax is applied by the loss and by
    the classifier, not here.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        hidden: tuple[int, ...] = (256, 256),
        dropout: float = 0.3,
        layer_norm: bool = False,
        projection: np.ndarray | None = None,
        projection_offset: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.project: nn.Module = nn.Identity()
        if projection is not None:
            # A frozen linear map (e.g. the pool's PCA): z = (x - offset) @ projection.
            weight = torch.as_tensor(np.asarray(projection, dtype=np.float32).T)
            offset = (
                np.zeros(weight.shape[1], np.float32)
                if projection_offset is None
                else projection_offset
            )
            bias = -(weight @ torch.as_tensor(np.asarray(offset, dtype=np.float32)))
            self.project = nn.Linear(weight.shape[1], weight.shape[0])
            self.project.weight.data.copy_(weight)
            self.project.bias.data.copy_(bias)
            self.project.requires_grad_(False)
            n_features = weight.shape[0]
        dims = [n_features, *hidden]
        blocks = []
        for n_in, n_out in zip(dims[:-1], dims[1:], strict=True):
            layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
            if layer_norm:
                layers.append(nn.LayerNorm(n_out))
            layers += [nn.ReLU(), Dropout(dropout)]
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(dims[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_projected(self.project(x))

    def from_projected(self, z: torch.Tensor) -> torch.Tensor:
        """Logits from projected inputs (the frozen projection is computed once per fit)."""
        return self.from_first(self.blocks[0][:-1](z))

    def first_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The first hidden layer before its dropout: the same in every MC-dropout draw."""
        return self.blocks[0][:-1](self.project(x))

    def last_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations, what the output layer reads (dropout as the
        mode says: none in evaluation)."""
        return self._hidden(self.first_activation(x))

    def from_first(self, h: torch.Tensor, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits from the output of :meth:`first_activation`.

        ``masks`` (one per hidden layer, from :meth:`draw_masks`) is one MC-dropout draw: the
        same units dropped for every cell. Without it, the dropout layers act as their mode
        says (a new mask per cell in training, none in evaluation).
        """
        return self.head(self._hidden(h, masks))

    def _hidden(self, h: torch.Tensor, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The hidden layers after the first's linear part and activation, each dropout's."""
        for i, block in enumerate(self.blocks):
            if i:
                h = block[:-1](h)
            h = block[-1](h) if masks is None else h * masks[i]
        return h

    def draw_masks(self, generator: torch.Generator) -> list[torch.Tensor]:
        """One dropout mask per hidden layer, scaled by ``1 / (1 - p)``: a sub-network."""
        masks = []
        for block in self.blocks:
            p, width = block[-1].p, block[0].out_features
            keep = torch.rand(width, generator=generator) >= p
            masks.append(keep.to(torch.float32) / (1.0 - p))
        return masks
