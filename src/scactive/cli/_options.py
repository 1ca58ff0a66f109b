"""Options shared by several commands, declared once, and the help texts read from registries."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import sys
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperCommand

from .._errors import InputError

Data = Annotated[
    str,
    typer.Argument(help="h5ad, 10x .h5 or mtx folder, csv/tsv, loom, or a bundled dataset name."),
]
LabelKey = Annotated[
    str | None,
    typer.Option(
        "--label-key", "-l", help="obs column with the cell types (bundled data: preset)."
    ),
]
Layer = Annotated[str | None, typer.Option(help="Read this layer instead of X.")]
UseRaw = Annotated[bool, typer.Option("--use-raw", help="Read .raw instead of X.")]
Transpose = Annotated[bool, typer.Option(help="Text tables with genes in rows.")]
Seeds = Annotated[int, typer.Option(help="Replicates (seeds 0 .. N-1).")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]
Jobs = Annotated[
    int,
    typer.Option(
        "--jobs", "-j", help="Grid cells run at once, one process each (e.g. the core count)."
    ),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")]
InitialStrategy = Annotated[
    str,
    typer.Option(
        help="How the initially labeled cells are chosen: {initial_strategies}. 'random' is "
        "the paper's; 'cold-start' takes the most typical cell of each Leiden cluster of the "
        "pool's PCA; 'markers' the cells scoring highest for each type's markers (--markers)."
    ),
]
MarkersFile = Annotated[
    Path | None,
    typer.Option(
        "--markers",
        help="Marker genes for --initial-strategy markers: CSV/TSV with columns type,gene, or "
        "JSON {type: \\[genes]}.",
        show_default=False,
    ),
]
HierarchyFile = Annotated[
    Path | None,
    typer.Option(
        "--hierarchy",
        help="Cell-type hierarchy over the labels (the finest level): JSON/YAML tree "
        "{type: {subtype: {}}} or CSV/TSV with columns type,parent; each round also records "
        "macro-F1 per level (macro_f1_level1...).",
        show_default=False,
    ),
]
Plugins = Annotated[
    list[str] | None,
    typer.Option(
        "--plugin",
        metavar="MODULE",
        help="Import this Python module first (repeatable; the current folder is searched "
        "too), so the strategies and learners it registers can be named.",
        show_default=False,
    ),
]


def names(registry: Iterable[str]) -> str:
    """The names of a registry, for a help text."""
    return ", ".join(registry)


def strategy_names() -> str:
    """The registered strategies, for a help text."""
    from ..strategies._registry import ALIASES
    from ..strategies._registry import strategy_names as registered

    aliases = "; ".join(f"{a!r} is {n!r}" for a, n in ALIASES.items())
    return names(registered()) + (f"; {aliases} (the paper's name)" if aliases else "")


def learner_names() -> str:
    """The registered learners, for a help text, the baseline annotators apart."""
    from ..models._registry import registered_learners

    presets = registered_learners()
    annotators = [name for name, preset in presets.items() if preset.annotator]
    learners = names(name for name in presets if name not in annotators)
    if not annotators:
        return learners
    return f"{learners}; baselines (may answer 'unassigned'): {names(annotators)}"


def initial_strategy_names() -> str:
    """How the initial cells may be chosen (``--initial-strategy``), for a help text."""
    from ..bench._options import INITIAL_STRATEGIES

    return names(INITIAL_STRATEGIES)


def method_names() -> str:
    """The methods ``compare`` can run (every learner and the real tools), for a help text."""
    from ..comparison._tools import TOOLS

    return f"Learners: {learner_names()}; real tools: {names(TOOLS)}"


#: The lists a help text names by placeholder, filled in when the help is shown.
LISTS: dict[str, Callable[[], str]] = {
    "{strategies}": strategy_names,
    "{learners}": learner_names,
    "{methods}": method_names,
    "{initial_strategies}": initial_strategy_names,
}


class ListingCommand(TyperCommand):
    """A command whose help texts name the registered choices (``{strategies}``,
    ``{learners}``, ``{methods}``; see :data:`LISTS`), read from the registries when the help
    is shown: always current, and ``scactive --help`` does not wait for them."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for param in self.params:
            for placeholder, listing in LISTS.items():
                if isinstance(param.help, str) and placeholder in param.help:
                    param.help = param.help.replace(placeholder, listing())
        super().format_help(ctx, formatter)


@dataclass(frozen=True)
class DataChoices:
    """How the data is read and prepared: the options ``simulate`` and ``compare`` share.

    A command takes them as one parameter annotated ``DataChoices`` and decorated with
    :func:`with_data_choices`; each field below becomes an option of its own.
    """

    layer: Layer = None
    use_raw: UseRaw = False
    transpose: Transpose = False
    remove_mito: Annotated[bool, typer.Option(help="Drop mitochondrial genes.")] = True
    remove_ribo: Annotated[bool, typer.Option(help="Drop ribosomal genes.")] = True
    remove_hemoglobin: Annotated[bool, typer.Option(help="Drop hemoglobin genes.")] = True
    min_genes: Annotated[
        int | None,
        typer.Option(
            help="Drop cells with fewer detected genes \\[default: 500, the paper's; refused when "
            "it would remove a whole cell type or most cells, unless given]",
            show_default=False,
        ),
    ] = None
    min_cells: Annotated[int, typer.Option(help="Drop genes seen in fewer pool cells.")] = 10
    n_top_genes: Annotated[int, typer.Option(help="Highly variable genes kept.")] = 2000
    n_pcs: Annotated[int, typer.Option(help="PCA components.")] = 50
    val_fraction: Annotated[float, typer.Option(help="Held-out validation fraction.")] = 0.2

    def preparation(self) -> dict:
        """The options of the data preparation (all but ``transpose``, which is for reading)."""
        choices = dataclasses.asdict(self)
        del choices["transpose"]
        if choices["min_genes"] is None:  # not given: the paper's, checked (DataOptions)
            del choices["min_genes"]
        return choices


def with_data_choices(command: Callable) -> Callable:
    """Let ``command`` take the :class:`DataChoices` as options, in place of its parameter
    annotated ``DataChoices``, and receive them as one :class:`DataChoices`."""
    signature = inspect.signature(command, eval_str=True)
    (target,) = (p for p in signature.parameters.values() if p.annotation is DataChoices)
    hints = typing.get_type_hints(DataChoices, include_extras=True)
    fields = [
        inspect.Parameter(f.name, target.kind, default=f.default, annotation=hints[f.name])
        for f in dataclasses.fields(DataChoices)
    ]
    parameters = []
    for parameter in signature.parameters.values():
        parameters.extend(fields if parameter is target else [parameter])

    @functools.wraps(command)
    def wrapper(**kwargs):
        choices = DataChoices(**{f.name: kwargs.pop(f.name) for f in fields})
        return command(**kwargs, **{target.name: choices})

    wrapper.__signature__ = signature.replace(parameters=parameters)
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def load_plugins(modules: Sequence[str] | None) -> None:
    """Import each ``--plugin`` module, so the strategies and learners it registers can be named.

    Raises :class:`InputError` naming the module when one cannot be imported.
    """
    if not modules:
        return
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # a module of one's own, beside the data
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name is not None and not (module + ".").startswith(err.name + "."):
                raise _plugin_error(module, err) from None  # the plugin needs another module
            raise InputError(
                f"--plugin {module!r}: no module named {err.name or module!r} (searched the "
                "current folder and the Python path). Give an import path such as "
                "my_package.strategies, run from the folder holding the module, or install it."
            ) from None
        except Exception as err:  # the plugin's own error: say which module, no traceback
            raise _plugin_error(module, err) from None


def _plugin_error(module: str, err: Exception) -> InputError:
    reason = f"{type(err).__name__}: {err}".rstrip(".")
    return InputError(f"--plugin {module!r} could not be imported: {reason}.")


def label_key_or_default(adata, label_key: str | None) -> str:
    """The given label column, or the bundled dataset's preset one."""
    if label_key is None:
        label_key = adata.uns.get("scactive_default_label_key")
        if label_key is None:
            raise InputError(
                f"Give the label column with --label-key; obs columns: {list(adata.obs.columns)}."
            )
    return label_key
