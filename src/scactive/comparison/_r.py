"""Running R from Python: finding Rscript and R packages, running a script on files."""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._errors import ToolError, ToolUnavailable

#: Environment variable naming the Rscript executable (default: ``Rscript`` on PATH).
RSCRIPT_ENV = "SCACTIVE_RSCRIPT"

#: Debian packages that provide the R packages the adapters use.
DEBIAN_PACKAGES = {
    "Matrix": "r-cran-matrix",
    "Seurat": "r-cran-seurat",
    "SingleR": "r-bioc-singler",
    "scran": "r-bioc-scran",
    "BiocParallel": "r-bioc-biocparallel",
}


def _rscript() -> str | None:
    """The Rscript executable: ``$SCACTIVE_RSCRIPT`` or ``Rscript`` on PATH, if it exists."""
    return shutil.which(os.environ.get(RSCRIPT_ENV) or "Rscript")


_R_PROBES: dict[tuple, dict[str, str | None] | str] = {}

_PROBE_CODE = (
    "for (p in commandArgs(TRUE)) cat(p, '\\t', "
    "if (nzchar(system.file(package = p))) as.character(packageVersion(p)) else 'NA', "
    "'\\n', sep = '')"
)


def _r_probe(packages: Sequence[str]) -> dict[str, str | None] | str:
    """Installed version of each R package (``None`` if missing), or why R itself cannot run.

    One cheap Rscript call per set of packages, cached per process and per R library setting
    (``R_LIBS``, ``R_LIBS_SITE``, ``R_LIBS_USER``). It looks the packages up without loading
    them: loading Seurat or SingleR takes seconds, and a package that is present but broken
    still fails clearly, as a :class:`ToolError` carrying R's message.
    """
    rscript = _rscript()
    wanted = os.environ.get(RSCRIPT_ENV) or "Rscript"
    if rscript is None:
        return (
            f"R is not installed here: no Rscript executable was found ({wanted!r}). Install "
            "Debian's r-base-core (`apt-get install r-base-core`) or set "
            f"{RSCRIPT_ENV} to the path of Rscript."
        )
    libs = tuple(os.environ.get(k) for k in ("R_LIBS", "R_LIBS_SITE", "R_LIBS_USER"))
    key = (rscript, tuple(packages), libs)
    if key not in _R_PROBES:
        try:
            proc = subprocess.run(
                [rscript, "-e", _PROBE_CODE, *packages],
                capture_output=True,
                text=True,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            _R_PROBES[key] = f"Rscript ({rscript}) could not run: {err}."
            return _R_PROBES[key]
        if proc.returncode != 0:
            _R_PROBES[key] = f"Rscript ({rscript}) failed: {_tail(proc.stderr or proc.stdout)}"
            return _R_PROBES[key]
        versions: dict[str, str | None] = dict.fromkeys(packages)
        for line in proc.stdout.splitlines():
            name, _, version = line.partition("\t")
            if name in versions:
                versions[name] = None if version.strip() in {"", "NA"} else version.strip()
        _R_PROBES[key] = versions
    return _R_PROBES[key]


def _r_unavailable(tool: str, packages: Sequence[str]) -> str | None:
    """Why ``tool`` (needing the R ``packages``) cannot run here, or ``None``."""
    probe = _r_probe(packages)
    debs = " ".join(DEBIAN_PACKAGES.get(p, p) for p in packages)
    if isinstance(probe, str):
        return f"{tool} needs R. {probe} Then install the R packages: `apt-get install {debs}`."
    missing = [p for p, version in probe.items() if version is None]
    if not missing:
        return None
    names = ", ".join(missing)
    debs = " ".join(
        DEBIAN_PACKAGES.get(p, f"r-cran-{p.lower()} or r-bioc-{p.lower()}") for p in missing
    )
    return (
        f"{tool} needs the R package(s) {names}, not installed for {_rscript()}. On Debian or "
        f"Ubuntu install them with `apt-get install {debs}` (or install them from CRAN or "
        "Bioconductor in R)."
    )


def _r_version(tool: str, packages: Sequence[str], package: str) -> str:
    why = _r_unavailable(tool, packages)
    if why is not None:
        raise ToolUnavailable(why)
    probe = _r_probe(packages)
    return str(probe[package]) if isinstance(probe, dict) else "unknown"


def _tail(text: str, lines: int = 30, chars: int = 4000) -> str:
    text = "\n".join(text.strip().splitlines()[-lines:])
    return text[-chars:] if len(text) > chars else text


def run_rscript(script: Path, workdir: Path, *, tool: str, timeout: float | None) -> None:
    """Run ``Rscript script workdir``; raise :class:`ToolError` with R's stderr if it fails."""
    rscript = _rscript()
    if rscript is None:
        raise ToolUnavailable(f"{tool} needs R. {_r_probe(())}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.setdefault("MKL_NUM_THREADS", "1")
    try:
        proc = subprocess.run(
            [rscript, str(script), str(workdir)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as err:
        raise ToolError(f"{tool} did not finish within {timeout:g} s and was stopped.") from err
    except OSError as err:
        raise ToolError(f"{tool}: could not start {rscript}: {err}") from err
    if proc.returncode != 0:
        raise ToolError(
            f"{tool} failed (Rscript exit code {proc.returncode}). R said:\n"
            f"{_tail(proc.stderr or proc.stdout)}"
        )


@contextlib.contextmanager
def _r_script_path(name: str) -> Iterator[Path]:
    with importlib.resources.as_file(importlib.resources.files(__package__) / "r" / name) as p:
        yield p
