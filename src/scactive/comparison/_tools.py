"""The real annotation tools a comparison can run, by name, without importing them.

Each entry names a tool, describes it in one line (the first line of its adapter's docstring)
and says where its adapter class lives (``"module:Class"``); :func:`adapter_class` imports the
class when it is needed. This module imports only the standard library, so the command line can
list the tools in its help without loading anndata, scipy, scikit-learn or torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Tool:
    """A real tool: its name, a one-line description and its adapter's import path."""

    name: str
    description: str
    adapter: str  # "package.module:ClassName"


#: The real tools by name, in the order comparisons run them.
TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "celltypist",
            "CellTypist: logistic regression trained on the reference (a custom model, no "
            "download).",
            "scactive.comparison._adapters:CellTypistAdapter",
        ),
        Tool(
            "seurat",
            "Seurat v4 label transfer: FindTransferAnchors + TransferData on the reference's PCA.",
            "scactive.comparison._adapters:SeuratAdapter",
        ),
        Tool(
            "singler",
            "SingleR with the single-cell reference, markers from pairwise Wilcoxon tests.",
            "scactive.comparison._adapters:SingleRAdapter",
        ),
    )
}


def adapter_class(name: str) -> type:
    """The adapter class of the real tool ``name`` (imported on first use)."""
    module, _, attribute = TOOLS[name].adapter.partition(":")
    return getattr(importlib.import_module(module), attribute)
