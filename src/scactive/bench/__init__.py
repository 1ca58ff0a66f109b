"""The simulation grid and the data preparation it runs on."""

from ._data import DataOptions, PreparedData, SeedData, prepare, split_sizes
from ._grid import Grid, GridCell, GridOptions, build_grid, config_dict, run_ceiling, run_cell

__all__ = [
    "DataOptions",
    "Grid",
    "GridCell",
    "GridOptions",
    "PreparedData",
    "SeedData",
    "build_grid",
    "config_dict",
    "prepare",
    "run_ceiling",
    "run_cell",
    "split_sizes",
]
