"""The paper's multilayer perceptron (section 2.2.1), the network only."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


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
            layers += [nn.ReLU(), nn.Dropout(dropout)]
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

    def from_first(self, h: torch.Tensor) -> torch.Tensor:
        """Logits from the output of :meth:`first_activation` (dropout applied when active)."""
        h = self.blocks[0][-1](h)
        for block in self.blocks[1:]:
            h = block(h)
        return self.head(h)
