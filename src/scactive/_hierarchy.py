"""Cell-type hierarchies: a vocabulary with levels (``T cell > CD4 T > naive CD4 T``).

A :class:`Hierarchy` maps each label to its parent (None for a top-level type). Labels it does
not name are top-level types without subtypes, so a tree may cover part of a vocabulary.

- A person may answer at any level; a learner trains on the labels as given (the finest level
  each labeled cell has), so a parent is a class beside its own subtypes.
- :meth:`Hierarchy.decode` reads a learner's probabilities top-down: at level 1 the top-level
  type with the most probability (its own and its subtypes'), at each deeper level the best
  child of the level above (the parent itself stays when it was a class and wins, or when it
  has no children): the calls of the levels never contradict each other. Each level's
  confidence is the probability summed under its call.
- :meth:`Hierarchy.at_level` gives a label's ancestor at a level; a label shallower than the
  level is itself there (a cell known only as ``T cell`` stays ``T cell`` at level 2).

Read from a JSON or YAML tree (``{"T cell": {"CD4 T": {"naive CD4 T": {}}}}``, a leaf may be
``{}``, null or a list of names) or a CSV/TSV with columns ``type,parent`` (a markers file with a
``parent`` column works as one; an empty parent is a top-level type).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._errors import InputError

#: The column prefix of per-level labels (``<prefix>1`` the top level).
LEVEL_PREFIX = "level"


@dataclass(frozen=True)
class Hierarchy:
    """Labels and their parents (``parent[label]`` is None at the top level)."""

    parent: Mapping[str, str | None]

    def __post_init__(self) -> None:
        parent = dict(self.parent)
        for up in [up for up in parent.values() if up is not None and up not in parent]:
            parent[up] = None  # a parent named only as a parent is a top-level type
        for label in parent:
            seen = [label]
            up = parent[label]
            while up is not None:
                if up in seen:
                    cycle = " > ".join([up, *reversed(seen[seen.index(up) :])])
                    raise InputError(
                        f"The cell-type hierarchy has a cycle: {cycle}. Each type needs one "
                        "parent above it; fix the parent of one of these types."
                    )
                seen.append(up)
                up = parent[up]
        object.__setattr__(self, "parent", parent)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_tree(cls, tree: Mapping | Sequence | None) -> Hierarchy:
        """From a nested mapping ``{type: {subtype: {...}}}`` (a leaf: ``{}``, None, a list of
        names or a name)."""
        parent: dict[str, str | None] = {}

        def walk(node, up: str | None) -> None:
            if node is None:
                return
            if isinstance(node, str):
                node = [node]
            if not isinstance(node, Mapping | list | tuple):
                raise InputError(
                    f"The cell-type hierarchy gives {up!r} the subtypes {_shown(node)} "
                    f"({_kind(node)}); write its subtypes as {{}} or null (none), a list of "
                    'names, or a tree {"subtype": {...}}, e.g. {"' + up + '": {}}.'
                )
            items = node.items() if isinstance(node, Mapping) else ((n, None) for n in node)
            for name, children in items:
                if not isinstance(name, str):
                    under = f"under {up!r}" if up is not None else "at the top level"
                    raise InputError(
                        f"The cell-type hierarchy names a type {_shown(name)} ({_kind(name)}) "
                        f'{under}; a type name is text: write it in quotes ("{_shown(name)}") if '
                        "that is the type's name."
                    )
                name = _name(name)
                if name in parent:
                    raise InputError(
                        f"The cell-type hierarchy names {name!r} twice (under "
                        f"{parent[name]!r} and {up!r}); a type has one parent."
                    )
                parent[name] = up
                walk(children, name)

        if not isinstance(tree, Mapping | list | tuple):
            raise InputError(
                "A cell-type hierarchy must be a tree {type: {subtype: {...}}}; got "
                f"{type(tree).__name__}."
            )
        walk(tree, None)
        return cls(parent)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[object, object]]) -> Hierarchy:
        """From ``(type, parent)`` pairs; an empty or missing parent is a top-level type."""
        parent: dict[str, str | None] = {}
        for child, up in pairs:
            child = _name(child)
            up = None if up is None or pd.isna(up) or not str(up).strip() else _name(up)
            if parent.get(child, up) != up:
                raise InputError(
                    f"The cell-type hierarchy gives {child!r} two parents ({parent[child]!r} "
                    f"and {up!r}); a type has one parent."
                )
            parent[child] = up
        return cls(parent)

    # -- reading ------------------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        """Every label, each parent before its children (top-level types in given order)."""
        children = self._children()
        out: list[str] = []

        def walk(label: str) -> None:
            out.append(label)
            for child in children.get(label, ()):
                walk(child)

        for label, up in self.parent.items():
            if up is None:
                walk(label)
        return tuple(out)

    @property
    def n_levels(self) -> int:
        """The depth of the deepest label (1: a flat vocabulary)."""
        return max((self.depth(label) for label in self.parent), default=1)

    def depth(self, label: str) -> int:
        """1 for a top-level type (or a label the hierarchy does not name), 2 below it..."""
        return len(self.path(label))

    def path(self, label: str) -> list[str]:
        """The label's ancestors from the top level down, ending with the label itself."""
        out = [label]
        up = self.parent.get(label)
        while up is not None:
            out.append(up)
            up = self.parent[up]
        return out[::-1]

    def at_level(self, label: str, level: int) -> str:
        """The label's ancestor at ``level`` (1 = top); a shallower label is itself."""
        path = self.path(label)
        return path[min(level, len(path)) - 1]

    def children(self, label: str | None) -> list[str]:
        """The direct subtypes of ``label`` (None: the top-level types)."""
        return list(self._children().get(label, ()))

    def is_under(self, label: str, ancestor: str) -> bool:
        """Whether ``label`` is ``ancestor`` or one of its subtypes."""
        return ancestor in self.path(label)

    def levels(self, labels: Iterable[object], *, n_levels: int | None = None) -> pd.DataFrame:
        """One column per level (``level1``...) of each label's :meth:`at_level`; missing
        labels (None, NaN) stay missing at every level."""
        labels = list(labels)
        n = n_levels or self.n_levels
        columns = {}
        for level in range(1, n + 1):
            columns[f"{LEVEL_PREFIX}{level}"] = [
                None if _missing(v) else self.at_level(str(v), level) for v in labels
            ]
        return pd.DataFrame(columns)

    def to_dict(self) -> dict[str, str]:
        """``{type: parent}``, ``""`` for a top-level type (plain text, for JSON and ``uns``)."""
        return {label: up or "" for label, up in self.parent.items()}

    @classmethod
    def from_dict(cls, mapping: Mapping[str, str]) -> Hierarchy:
        """The inverse of :meth:`to_dict`."""
        return cls.from_pairs(mapping.items())

    def merged(self, other: Hierarchy, *, mine: str = "one", theirs: str = "other") -> Hierarchy:
        """This hierarchy with ``other``'s labels added: a type top-level in one may gain a
        parent from the other, but two different parents are refused (``mine`` and
        ``theirs`` name the two in the message), and so is a cycle the union makes."""
        parent = dict(self.parent)
        for label, up in other.parent.items():
            known = parent.get(label)
            if known is not None and up is not None and known != up:
                raise InputError(
                    f"The cell-type hierarchies disagree: the {mine} puts {label!r} under "
                    f"{known!r}, the {theirs} under {up!r}. A type has one parent; make the "
                    "two agree."
                )
            if known is None:
                parent[label] = up
        return type(self)(parent)

    # -- predictions --------------------------------------------------------------------
    def decode(
        self, proba: np.ndarray, classes: Sequence[str], *, n_levels: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-level calls from a learner's probabilities (cells x ``classes``), top-down.

        Returns one ``(labels, confidence)`` pair per level (object array, float32 array).
        At each level a cell's call is the child of its call one level up with the most
        probability under it (the call itself competing when it is one of ``classes``), and
        the confidence is the probability summed under the call.
        """
        proba = np.asarray(proba, dtype=np.float64)
        classes = [str(c) for c in classes]
        n = n_levels or max([self.n_levels, *(self.depth(c) for c in classes)])
        # the nodes that matter: every class and its ancestors
        nodes = sorted({a for c in classes for a in self.path(c)}, key=self.labels_order)
        index = {node: i for i, node in enumerate(nodes)}
        # the probability under each node (its own class, if any, and every class below it)
        under = np.zeros((len(proba), len(nodes)))
        own = np.full(len(nodes), -1)
        for j, c in enumerate(classes):
            own[index[c]] = j
            for a in self.path(c):
                under[:, index[a]] += proba[:, j]
        children = {node: [] for node in [None, *nodes]}
        for node in nodes:
            children[self.parent.get(node)].append(index[node])
        out: list[tuple[np.ndarray, np.ndarray]] = []
        call = np.full(len(proba), -1)
        rows = np.arange(len(proba))
        for level in range(1, n + 1):
            new = call.copy()
            if level == 1:
                top = np.asarray(children[None])
                new = top[under[:, top].argmax(axis=1)]
            else:
                for node_i in np.unique(call):
                    kids = children[nodes[node_i]]
                    if not kids:
                        continue  # a leaf stays itself
                    cells = np.flatnonzero(call == node_i)
                    # the parent's own class competes with its children's subtrees
                    candidates = list(kids)
                    scores = under[np.ix_(cells, kids)]
                    if own[node_i] >= 0:
                        candidates.append(node_i)
                        scores = np.column_stack([scores, proba[cells, own[node_i]]])
                    new[cells] = np.asarray(candidates)[scores.argmax(axis=1)]
            call = new
            labels = np.asarray(nodes, dtype=object)[call]
            out.append((labels, under[rows, call].astype(np.float32)))
        return out

    def n_levels_for(self, labels: Iterable[str]) -> int:
        """The depth of the deepest of ``labels`` (the levels a task with these labels has)."""
        return max((self.depth(str(label)) for label in labels), default=1)

    def labels_order(self, label: str) -> int:
        """A label's position in :attr:`labels` (labels it does not name come last)."""
        order = getattr(self, "_order", None)
        if order is None:
            order = {label: i for i, label in enumerate(self.labels)}
            object.__setattr__(self, "_order", order)
        return order.get(label, len(order))

    def _children(self) -> dict[str | None, list[str]]:
        children: dict[str | None, list[str]] = {}
        for label, up in self.parent.items():
            children.setdefault(up, []).append(label)
        return children


def read_hierarchy(path: str | Path) -> Hierarchy:
    """A hierarchy from a JSON or YAML tree, or a CSV/TSV with columns ``type,parent``."""
    from .io import read_small_table

    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix in {".json", ".yaml", ".yml"}:
        if not path.is_file():
            raise InputError(f"Hierarchy file not found: '{path}'.")
        try:
            text = path.read_text()
            if suffix == ".json":
                tree = json.loads(text)
            else:
                import yaml

                tree = yaml.safe_load(text)
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise InputError(f"Could not read the hierarchy file '{path}': {err}.") from err
        except Exception as err:  # yaml.YAMLError
            raise InputError(f"Could not read the hierarchy file '{path}': {err}.") from err
        return _naming(path, Hierarchy.from_tree, tree)
    table = read_small_table(path, columns=("type", "parent"), what="hierarchy file")
    return _naming(path, Hierarchy.from_pairs, zip(table["type"], table["parent"], strict=True))


def _naming(path: Path, build, source) -> Hierarchy:
    """``build(source)``, its refusals naming the file they come from."""
    try:
        return build(source)
    except InputError as err:
        raise InputError(f"'{path}': {err}") from err


def as_hierarchy(value: Hierarchy | str | Path | Mapping) -> Hierarchy:
    """A :class:`Hierarchy` as given, read from a file (:func:`read_hierarchy`), or built from
    a nested tree ``{type: {subtype: {...}}}``."""
    if isinstance(value, Hierarchy):
        return value
    if isinstance(value, str | Path):
        return read_hierarchy(value)
    if isinstance(value, Mapping):
        return Hierarchy.from_tree(value)
    raise InputError(
        f"hierarchy={value!r} is not valid: give a Hierarchy, the path of a JSON/YAML tree or "
        "a type,parent table, or a tree {type: {subtype: {...}}}."
    )


def check_covers(hierarchy: Hierarchy, labels: Iterable[object]) -> None:
    """Refuse a hierarchy that names none of ``labels`` (the data's types); warn, naming
    them, about labels it leaves out (they count as top-level types)."""
    labels = sorted({str(label) for label in labels})
    absent = [label for label in labels if label not in hierarchy.parent]
    if len(absent) == len(labels):
        raise InputError(
            f"The cell-type hierarchy names none of the data's labels ({_listed(labels)}); its "
            f"types are {_listed(hierarchy.labels)}. Write the tree with the label column's "
            "own type names, or choose the label column that holds them (--label-key)."
        )
    if absent:
        warnings.warn(
            f"The cell-type hierarchy does not name {len(absent)} of the data's "
            f"{len(labels)} labels: {_listed(absent)}. They count as top-level types; add them "
            "to the tree under their parent type to roll them up.",
            UserWarning,
            stacklevel=3,
        )


def _listed(names: Sequence[str], most: int = 12) -> str:
    shown = ", ".join(map(repr, names[:most]))
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _name(value: object) -> str:
    text = str(value).strip() if value is not None else ""
    if not text:
        raise InputError("The cell-type hierarchy has an empty type name; name every type.")
    return text


def _shown(value: object) -> str:
    """A value as JSON writes it (``false``, ``5``), for messages about a tree's values."""
    return json.dumps(value, default=str)


def _kind(value: object) -> str:
    """What a JSON/YAML value is, in words (a bool is not called a number)."""
    if isinstance(value, bool):
        return "true/false"
    return "a number" if isinstance(value, int | float) else f"a {type(value).__name__}"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
