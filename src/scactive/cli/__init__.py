"""The ``scactive`` command line: a Typer app, one module per command group."""

from __future__ import annotations

import logging
import sys
import warnings

import typer
from rich.console import Console
from rich.logging import RichHandler

from .._errors import InputError

app = typer.Typer(
    name="scactive",
    help="Active learning for cell type annotation of single-cell RNA-seq data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Active learning for cell type annotation of single-cell RNA-seq data."""


def setup_logging(verbose: bool) -> None:
    """Route the library's log and warnings to the terminal (the library never does this)."""
    handler = RichHandler(console=console, show_path=False, show_time=False)
    logger = logging.getLogger("scactive")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)

    def show(message, category, filename, lineno, file=None, line=None):
        console.print(f"[yellow]Warning:[/] {message}")

    warnings.showwarning = show
    # the libraries' notices to developers are not the user's business
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def fail(err: Exception) -> None:
    """Print a user error as one paragraph (no traceback) and exit with code 2."""
    console.print(f"[bold red]Error:[/] {err}", highlight=False)
    raise typer.Exit(code=2)


def split_list(value: str, kind: type = str) -> list:
    """Parse a comma-separated option value."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return [kind(v) for v in items]
    except ValueError as err:
        raise InputError(
            f"Could not read {value!r} as a comma-separated list of {kind.__name__} values."
        ) from err


from . import _annotate, _compare, _serve, _simulate  # noqa: E402,F401 - registers the commands


def main() -> None:
    """Entry point of the ``scactive`` script."""
    try:
        app()
    except InputError as err:  # raised outside a command body
        console.print(f"[bold red]Error:[/] {err}", highlight=False)
        sys.exit(2)
