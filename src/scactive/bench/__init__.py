"""The simulation grid and the data preparation it runs on."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    attributes={
        "._options": ("PREPARATION", "DataOptions"),
        "._data": (
            "PreparedData",
            "SeedData",
            "prepare",
            "split_sizes",
        ),
        "._grid": (
            "Grid",
            "GridCell",
            "GridOptions",
            "build_grid",
            "config_dict",
            "run_ceiling",
            "run_cell",
        ),
    },
)
