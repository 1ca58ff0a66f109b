"""The options of the data preparation: which matrix, the paper's QC and feature selection,
the validation share and how the initially labeled cells are chosen, checked when made.

Light on purpose: the command line reads :data:`INITIAL_STRATEGIES` for its help without
loading the preparation itself (:mod:`._data`).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._checks import is_whole
from .._errors import InputError
from ..strategies._cold import ColdStart, marker_pairs

#: The keywords of the data preparation that ``simulate`` and ``compare`` take alike.
PREPARATION = (
    "layer", "use_raw", "remove_mito", "remove_ribo", "remove_hemoglobin", "min_genes",
    "min_cells", "n_top_genes", "n_pcs", "val_fraction",
)  # fmt: skip
#: The keywords of how the initially labeled cells are chosen (``simulate`` takes them).
INITIAL = ("initial", "initial_strategy", "markers")
#: How the initially labeled cells may be chosen (``initial_strategy``): at random (the
#: paper's), the typical cells of the pool's clusters, or by the types' marker genes.
INITIAL_STRATEGIES = ("random", ColdStart.name, "markers")


@dataclass(frozen=True)
class DataOptions:
    """Which matrix to read and the paper's QC and feature selection, each switchable."""

    layer: str | None = None
    use_raw: bool = False
    remove_mito: bool = True
    remove_ribo: bool = True
    remove_hemoglobin: bool = True
    min_genes: int = 500
    min_cells: int = 10
    n_top_genes: int = 2000
    n_pcs: int = 50
    scale: bool = True
    val_fraction: float = 0.2
    initial: float = 0.2
    #: How the initial cells are chosen, one of :data:`INITIAL_STRATEGIES`.
    initial_strategy: str = "random"
    #: Cell type -> marker genes, for ``initial_strategy="markers"`` (kept as pairs
    #: ``(type, genes)``, so the options stay hashable and their JSON records the genes).
    markers: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    #: Refuse a ``min_genes`` filter that removes a whole cell type or most cells: set when
    #: ``min_genes`` was left at the paper's 500, which suits whole transcriptomes, not data
    #: cut to a gene subset (see :func:`._data.check_min_genes`).
    check_min_genes: bool = False

    def __post_init__(self) -> None:
        for name, value, least, what in (
            ("n_top_genes", self.n_top_genes, 1, "highly variable genes kept"),
            ("n_pcs", self.n_pcs, 1, "PCA components"),
            ("min_genes", self.min_genes, 0, "genes a cell needs to be kept"),
            ("min_cells", self.min_cells, 0, "pool cells a gene needs to be kept"),
        ):
            if not is_whole(value) or value < least:
                raise InputError(
                    f"{name}={value} (--{name.replace('_', '-')}) is not valid: it counts the "
                    f"{what}, a whole number >= {least}."
                )
        if not (isinstance(self.val_fraction, int | float) and 0 < self.val_fraction < 1):
            raise InputError(
                f"val_fraction={self.val_fraction}; expected a fraction between 0 and 1."
            )
        check_initial(self.initial)
        check_initial_strategy(self)

    @classmethod
    def from_keywords(cls, *, caller: Callable | None = None, **keywords) -> DataOptions:
        """The options given as keywords of a public function (:data:`PREPARATION`, and
        :data:`INITIAL` where the function takes them). An unknown keyword is refused by name,
        with the closest name among these and the parameters of ``caller``."""
        unknown = sorted(set(keywords) - {*PREPARATION, *INITIAL})
        if not unknown:
            return cls(**keywords, check_min_genes="min_genes" not in keywords)
        names = list(PREPARATION)
        if caller is not None:
            names += [p for p in inspect.signature(caller).parameters if p != "preparation"]
        hints = [
            f"{name!r}: did you mean {close[0]!r}?"
            for name in unknown
            if (close := difflib.get_close_matches(name, names, n=1))
        ]
        of = f" of {caller.__name__}()" if caller is not None else ""
        raise InputError(
            f"Unknown option(s){of}: {', '.join(map(repr, unknown))}"
            f"{' (' + '; '.join(hints) + ')' if hints else ''}. The data preparation takes "
            f"{', '.join(PREPARATION)}."
        )


def check_initial(initial: float) -> None:
    """Refuse an ``initial`` that is neither a fraction below 1 nor a whole count >= 1."""
    ok = isinstance(initial, int | float | np.number) and not isinstance(initial, bool)
    if ok and np.isfinite(initial) and 0 < initial and (initial < 1 or float(initial).is_integer()):
        return
    raise InputError(
        f"initial={initial} (--initial) is not valid: give a fraction of the pool above 0 and "
        "below 1 (e.g. 0.2), or a whole number of cells from 1 up (e.g. 20)."
    )


def check_initial_strategy(options: DataOptions) -> None:
    """Refuse an unknown ``initial_strategy``, and markers without the strategy that reads
    them or the other way round; the markers are kept as pairs (type, genes)."""
    name, markers = options.initial_strategy, options.markers
    if name not in INITIAL_STRATEGIES:
        raise InputError(
            f"initial_strategy={name!r} (--initial-strategy) is not valid; expected one of "
            f"{', '.join(map(repr, INITIAL_STRATEGIES))}."
        )
    if markers is not None:
        object.__setattr__(options, "markers", marker_pairs(markers) or None)
    if name == "markers" and options.markers is None:
        raise InputError(
            "initial_strategy='markers' (--initial-strategy markers) needs marker genes: "
            "give markers= (a mapping type -> genes) or --markers FILE."
        )
    if name != "markers" and options.markers is not None:
        raise InputError(
            f"Marker genes are read by initial_strategy='markers' only; got "
            f"initial_strategy={name!r}. Add --initial-strategy markers, or leave out --markers."
        )
