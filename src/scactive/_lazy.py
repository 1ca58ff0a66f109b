"""Lazy attributes of a package (PEP 562): a name is imported from its module on first use.

``import scactive`` (and the command line, which imports it) then costs next to nothing; torch,
scanpy and scikit-learn load when a function that needs them is first looked up. A package
declares its public names once, by the module that defines them::

    __getattr__, __dir__, __all__ = lazy_exports(
        __name__,
        submodules=("pp",),
        attributes={"._simulate": ("simulate",), ".io": ("read",)},
    )

``from scactive import simulate``, ``scactive.simulate`` and ``scactive.pp`` keep working; any
other submodule (``scactive.io``) is imported when it is looked up as an attribute, as it would
have been after the package imported it eagerly.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping


def lazy_exports(
    package: str,
    *,
    submodules: Iterable[str] = (),
    attributes: Mapping[str, Iterable[str]] | None = None,
) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """The ``__getattr__``, ``__dir__`` and ``__all__`` of ``package``.

    Parameters
    ----------
    package
        The package's ``__name__``.
    submodules
        Public submodules, by name relative to the package (``"pp"``).
    attributes
        Module path relative to the package (``"._simulate"``) -> the public names it defines.

    Returns
    -------
    The module-level ``__getattr__`` (imports a name's module on first use and keeps the
    value), ``__dir__`` and ``__all__`` (the public names, sorted).
    """
    origin: dict[str, str | None] = dict.fromkeys(submodules)  # None: the submodule itself
    for module, names in (attributes or {}).items():
        for name in names:
            if name in origin:
                raise ValueError(f"{package}: {name!r} is declared twice")
            origin[name] = module

    def __getattr__(name: str) -> object:
        if name in origin:
            module = origin[name]
            if module is None:
                value = importlib.import_module(f".{name}", package)
            else:
                value = getattr(importlib.import_module(module, package), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}"):
            value = importlib.import_module(f".{name}", package)  # an undeclared submodule
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # found once, then a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *origin})

    return __getattr__, __dir__, sorted(origin)
