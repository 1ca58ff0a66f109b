"""Reports of active-learning simulations: a summary table and a self-contained HTML file."""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    attributes={
        "._summary": ("summary_table",),
        "._write": ("write_comparison", "write_report"),
    },
)
