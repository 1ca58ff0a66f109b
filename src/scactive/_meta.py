"""Shared plumbing of every command: the package version, versions of the stack, progress bars."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

#: The packages whose versions a run records (``config.json``).
STACK = ("scactive", "anndata", "scanpy", "torch", "scikit-learn", "numpy", "pandas")


def package_version(package: str = "scactive") -> str:
    """The installed version of ``package`` ("not installed" when it is not)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def versions(packages: Iterable[str] = STACK) -> dict[str, str]:
    """Installed version of each package."""
    return {package: package_version(package) for package in packages}


def progress_bar(enabled: bool = True):
    """A rich progress bar in scactive's layout: description, bar, done/total, elapsed time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )
