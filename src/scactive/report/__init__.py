"""Reports of active-learning simulations: a summary table and a self-contained HTML file."""

from scactive.report._summary import summary_table
from scactive.report._write import write_comparison, write_report

__all__ = ["summary_table", "write_comparison", "write_report"]
