"""The shape of the public API, in the spirit of scanpy's ``tests/test_package_structure.py``.

Every name a public module exports exists and is documented; functions that take an AnnData
take it first, as ``adata``, with at most a few positional parameters and the rest
keyword-only. Below the API: no module imports the package root, and no module is longer
than :data:`MAX_LINES`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "scactive"

PUBLIC_MODULES = [
    "scactive",
    "scactive.pp",
    "scactive.pl",
    "scactive.models",
    "scactive.strategies",
    "scactive.loop",
    "scactive.bench",
    "scactive.metrics",
    "scactive.io",
    "scactive.datasets",
    "scactive.comparison",
    "scactive.report",
    "scactive.app",
]

#: Positional parameters a public function may take; the rest are keyword-only.
MAX_POSITIONAL = 3

#: Lines a module under src/ may have (CONVENTIONS.md: "keep modules under ~400 lines").
MAX_LINES = 400

ANNDATA_ANNOTATIONS = {"AnnData", "ad.AnnData", "anndata.AnnData"}


def _public_objects():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            yield pytest.param(module_name, name, id=f"{module_name}.{name}")


def _public_functions():
    for param in _public_objects():
        module_name, name = param.values
        obj = getattr(importlib.import_module(module_name), name, None)
        if inspect.isfunction(obj):
            yield param


def _object(module_name: str, name: str):
    return getattr(importlib.import_module(module_name), name)


# -- the API -------------------------------------------------------------------------------
@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_modules_are_documented_and_declare_all(module_name):
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"{module_name} has no docstring"
    assert isinstance(getattr(module, "__all__", None), list | tuple), (
        f"{module_name} declares no __all__"
    )
    assert len(set(module.__all__)) == len(module.__all__), f"{module_name}.__all__ repeats"


@pytest.mark.parametrize(("module_name", "name"), _public_objects())
def test_exported_names_exist_and_are_documented(module_name, name):
    module = importlib.import_module(module_name)
    assert hasattr(module, name), f"{module_name}.__all__ lists {name!r}, which is not there"
    obj = getattr(module, name)
    if inspect.isfunction(obj) or inspect.isclass(obj):
        # a module-level constant's ``#:`` comment is not introspectable; classes and
        # functions carry their own docstring (a class neither inherits one nor shows the
        # signature a dataclass makes up)
        doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
        generated = inspect.isclass(obj) and (doc or "").startswith(f"{obj.__name__}(")
        assert doc and doc.strip() and not generated, f"{module_name}.{name} has no docstring"


def _is_anndata(parameter: inspect.Parameter) -> bool:
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return False
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__qualname__", str(annotation))
    return any(part.strip() in ANNDATA_ANNOTATIONS for part in annotation.split("|"))


@pytest.mark.parametrize(("module_name", "name"), _public_functions())
def test_anndata_comes_first_as_adata(module_name, name):
    """The AnnData a function works on is its first parameter, ``adata``; another one (a
    query data set, say) is keyword-only."""
    parameters = list(inspect.signature(_object(module_name, name)).parameters.values())
    anndata = [i for i, p in enumerate(parameters) if _is_anndata(p) or p.name == "adata"]
    if not anndata:
        return
    first = parameters[anndata[0]]
    assert anndata[0] == 0 and first.name == "adata", (
        f"{module_name}.{name}: the AnnData parameter {first.name!r} is at position "
        f"{anndata[0]}; it comes first and is called 'adata'"
    )
    assert first.kind is not first.KEYWORD_ONLY, f"{module_name}.{name}: adata is keyword-only"
    for i in anndata[1:]:
        assert parameters[i].kind is parameters[i].KEYWORD_ONLY, (
            f"{module_name}.{name}: the second AnnData parameter {parameters[i].name!r} is "
            "positional; make it keyword-only"
        )


@pytest.mark.parametrize(("module_name", "name"), _public_functions())
def test_options_are_keyword_only(module_name, name):
    positional = [
        p.name
        for p in inspect.signature(_object(module_name, name)).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert len(positional) <= MAX_POSITIONAL, (
        f"{module_name}.{name} takes {len(positional)} positional parameters {positional}; "
        f"at most {MAX_POSITIONAL}, the rest keyword-only (put '*' after them)"
    )


# -- below the API ---------------------------------------------------------------------------
SOURCES = sorted(PACKAGE.rglob("*.py"))
SUBMODULES = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"} | {
    p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()
}


def _root_imports(path: Path, src: Path = SRC) -> list[str]:
    """The statements of ``path`` (a module below ``src``) importing names of the root itself.

    ``import scactive``, ``from scactive import X`` and, relatively, ``from .. import X``
    where ``X`` is not a submodule; importing a submodule (``from scactive import pp``,
    ``import scactive.pp``) is fine.
    """
    parts = list(path.relative_to(src).with_suffix("").parts)
    package = parts[:-1]  # of an __init__.py, the package itself
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            if any(a.name == "scactive" for a in node.names):
                found.append((node.lineno, "import scactive"))
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            names = [a.name for a in node.names if a.name not in SUBMODULES]
            if module == ["scactive"] and names:
                source = "." * node.level + (node.module or "")
                found.append((node.lineno, f"from {source} import {', '.join(names)}"))
    return [f"line {line}: {statement}" for line, statement in sorted(found)]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_the_package_root(path):
    found = _root_imports(path)
    assert not found, (
        f"{path.relative_to(SRC)} imports the package root ({'; '.join(found)}); import "
        "from the module that defines the name (the version: scactive._meta)"
    )


def test_the_root_import_finder_finds_them(tmp_path):
    probe = tmp_path / "scactive" / "models" / "_probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "import scactive\n"
        "from scactive import InputError, pp\n"
        "from .. import io, __version__\n"
        "from . import _network\n"
        "from .._errors import InputError\n"
        "import scactive.pp\n"
        "def f():\n"
        "    from scactive import simulate\n"
    )
    assert _root_imports(probe, tmp_path) == [
        "line 1: import scactive",
        "line 2: from scactive import InputError",
        "line 3: from .. import __version__",
        "line 8: from scactive import simulate",
    ]
    init = tmp_path / "scactive" / "__init__.py"
    init.write_text("from . import pp\nfrom ._errors import InputError\nfrom . import read\n")
    assert _root_imports(init, tmp_path) == ["line 3: from . import read"]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_short(path):
    n_lines = len(path.read_text(encoding="utf-8").splitlines())
    assert n_lines <= MAX_LINES, (
        f"{path.relative_to(SRC)} has {n_lines} lines; split it below {MAX_LINES}"
    )
