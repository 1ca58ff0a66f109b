"""The ``scactive`` command line: a Typer app, one module per command group.

It starts fast: torch, scanpy, anndata and scikit-learn are imported inside the commands that
need them, and the help texts read only the light registries of strategies and learners.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Annotated

import typer
from rich.console import Console

from .._errors import InputError
from .._meta import package_version

app = typer.Typer(
    name="scactive",
    help="Active learning for cell type annotation of single-cell RNA-seq data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"scactive {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            min=1,
            help="Threads of torch, BLAS and numba in each process, held for the whole run "
            "(one is fastest on a few cores, and with --jobs every worker takes one core).",
        ),
    ] = 1,
) -> None:
    """Active learning for cell type annotation of single-cell RNA-seq data."""
    from .._threads import set_threads

    set_threads(threads)


def setup_logging(verbose: bool) -> None:
    """Route the library's log and warnings to the terminal (the library never does this)."""
    from rich.logging import RichHandler

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


from . import _annotate, _compare, _predict, _serve, _simulate  # noqa: E402,F401 - registers the commands


def main() -> None:
    """Entry point of the ``scactive`` script."""
    try:
        app()
    except InputError as err:  # raised outside a command body
        console.print(f"[bold red]Error:[/] {err}", highlight=False)
        sys.exit(2)
