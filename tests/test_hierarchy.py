"""Cell-type hierarchies: reading trees, levels, and top-down decoding of probabilities."""

import json

import numpy as np
import pytest

from scactive._errors import InputError
from scactive._hierarchy import Hierarchy, read_hierarchy

TREE = {"T cell": {"CD4 T": {"naive CD4 T": {}, "memory CD4 T": None}, "CD8 T": {}}, "B": []}


def test_tree_levels_and_paths():
    h = Hierarchy.from_tree(TREE)
    assert h.labels == ("T cell", "CD4 T", "naive CD4 T", "memory CD4 T", "CD8 T", "B")
    assert h.n_levels == 3
    assert h.path("naive CD4 T") == ["T cell", "CD4 T", "naive CD4 T"]
    assert h.at_level("naive CD4 T", 2) == "CD4 T"
    assert h.at_level("CD8 T", 3) == "CD8 T"  # shallower: itself
    assert h.at_level("NK", 2) == "NK"  # not named: a top-level type
    assert h.is_under("memory CD4 T", "T cell") and not h.is_under("B", "T cell")
    table = h.levels(["naive CD4 T", None, "B"])
    assert list(table.columns) == ["level1", "level2", "level3"]
    assert table.iloc[0].tolist() == ["T cell", "CD4 T", "naive CD4 T"]
    assert table.iloc[1].isna().all()
    assert table.iloc[2].tolist() == ["B", "B", "B"]
    assert Hierarchy.from_dict(h.to_dict()).parent == h.parent


def test_pairs_and_files(tmp_path):
    csv = tmp_path / "tree.csv"
    csv.write_text("type,parent,gene\nCD4 T,T cell,CD4\nnaive CD4 T,CD4 T,CCR7\nB,,MS4A1\n")
    h = read_hierarchy(csv)
    assert h.path("naive CD4 T") == ["T cell", "CD4 T", "naive CD4 T"]
    assert h.parent["T cell"] is None and h.parent["B"] is None
    (tmp_path / "tree.json").write_text(json.dumps(TREE))
    assert read_hierarchy(tmp_path / "tree.json").parent == Hierarchy.from_tree(TREE).parent
    (tmp_path / "tree.yaml").write_text("T cell:\n  CD4 T:\n    - naive CD4 T\n  CD8 T:\nB:\n")
    assert read_hierarchy(tmp_path / "tree.yaml").path("naive CD4 T")[0] == "T cell"


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("a", "b"), ("b", "a")], "cycle"),
        ([("a", "b"), ("a", "c")], "two parents"),
        ([("", "b")], "empty type name"),
    ],
)
def test_bad_trees_are_refused(pairs, message):
    with pytest.raises(InputError, match=message):
        Hierarchy.from_pairs(pairs)


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_hierarchy(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="Could not read"):
        read_hierarchy(tmp_path / "bad.json")
    (tmp_path / "flat.csv").write_text("type,gene\nB,MS4A1\n")
    with pytest.raises(InputError, match="parent"):
        read_hierarchy(tmp_path / "flat.csv")
    with pytest.raises(InputError, match="twice"):
        Hierarchy.from_tree({"a": {"x": {}}, "b": {"x": {}}})


def test_decode_is_top_down_and_consistent():
    h = Hierarchy.from_tree(TREE)
    classes = ["B", "T cell", "naive CD4 T", "memory CD4 T", "CD8 T"]
    proba = np.array(
        [
            # argmax over classes is B (0.4), but T cell holds 0.6: level 1 is T cell, and
            # below it the best subtree: CD4 T (0.35 = 0.2 + 0.15) beats CD8 T (0.25)
            [0.40, 0.00, 0.20, 0.15, 0.25],
            # answered at the parent level: the parent's own class beats its children
            [0.05, 0.70, 0.10, 0.05, 0.10],
            [0.90, 0.02, 0.03, 0.03, 0.02],
        ]
    )
    (l1, c1), (l2, c2), (l3, c3) = h.decode(proba, classes)
    assert l1.tolist() == ["T cell", "T cell", "B"]
    np.testing.assert_allclose(c1, [0.60, 0.95, 0.90], rtol=1e-6)
    assert l2.tolist() == ["CD4 T", "T cell", "B"]
    np.testing.assert_allclose(c2, [0.35, 0.95, 0.90], rtol=1e-6)
    assert l3.tolist() == ["naive CD4 T", "T cell", "B"]
    np.testing.assert_allclose(c3, [0.20, 0.95, 0.90], rtol=1e-6)
    # every level's call is under the level above
    for upper, lower in ((l1, l2), (l2, l3)):
        assert all(h.is_under(b, a) for a, b in zip(upper, lower, strict=True))
