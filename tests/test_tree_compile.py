"""The generated per-layout walks (``_tree_compile``) agree with the checking walks of ``_tree``.

The builder must give exactly what ``Node.build`` gives (types, keys, order); the getter must
give what ``leaves_of`` gives whenever it returns, and otherwise raise one of the exceptions
that send the caller to ``leaves_of`` (which then matches or names the path).
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict, namedtuple
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dict_minimize._structure.layout import _mapping_factory, values_by_key
from dict_minimize._structure.tree import leaves_of, make_tree
from dict_minimize._structure.tree_compile import (
    MAX_DEPTH,
    Mismatch,
    compile_builder,
    compile_getter,
)
from tests.conftest import derandomized

Pair = namedtuple("Pair", "left right")
SETTINGS = derandomized("DICT_MINIMIZE_TREE_COMPILE_EXAMPLES", 60)
# keys that are awkward in generated source: quotes, escapes, non-literal types
KEYS = st.one_of(
    st.text(alphabet="ab'\"\\\n_{}", min_size=1, max_size=3),
    st.integers(-3, 3),
    st.booleans(),
    st.sampled_from([1.5, (1, "a"), None, frozenset({2})]),
)
FALLBACK = (Mismatch, LookupError, TypeError)


def trees() -> st.SearchStrategy[Any]:
    leaf = st.integers(0, 10**6).map(lambda i: np.full(2, float(i)))

    def node(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.dictionaries(KEYS, children, min_size=1, max_size=3),
            st.dictionaries(KEYS, children, min_size=1, max_size=3).map(OrderedDict),
            st.dictionaries(KEYS, children, min_size=1, max_size=3).map(
                lambda d: defaultdict(list, d)
            ),
            st.lists(children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3).map(tuple),
            st.tuples(children, children).map(lambda t: Pair(*t)),
        )

    return st.dictionaries(KEYS, st.recursive(leaf, node, max_leaves=8), min_size=1, max_size=3)


def _same(a: Any, b: Any) -> bool:
    """Equal structure, container types, key order and leaf identity."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a is b


def _replace(tree: Any, fn: Any) -> Any:
    """``tree`` with every leaf mapped by ``fn``, containers rebuilt as plain ones of their kind."""
    if isinstance(tree, dict):
        return {k: _replace(v, fn) for k, v in tree.items()}
    if isinstance(tree, Pair):
        return Pair(*(_replace(v, fn) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(_replace(v, fn) for v in tree)
    return fn(tree)


@SETTINGS
@given(trees())
def test_builder_equals_node_build(x0: Any) -> None:
    tree, _, leaves = make_tree(x0, _mapping_factory)
    build = compile_builder(tree)
    assert build is not None
    values = [object() for _ in leaves]
    assert _same(build(values), tree.build(iter(values)))
    assert _same(build(list(leaves)), x0)


@SETTINGS
@given(trees(), st.data())
def test_getter_agrees_with_leaves_of(x0: Any, data: st.DataObject) -> None:
    tree, _, _ = make_tree(x0, _mapping_factory)
    get = compile_getter(tree)
    assert get is not None
    grad = _replace(x0, lambda leaf: leaf * 2)
    assert all(g is r for g, r in zip(get(grad), leaves_of(grad, tree, "gradient"), strict=True))
    # a damaged gradient: the getter never returns something leaves_of would not
    damage = data.draw(st.sampled_from(["drop", "extra", "wrap"]))
    bad = dict(grad)
    key = next(iter(bad))
    if damage == "drop":
        del bad[key]
    elif damage == "extra":
        bad[("not", "a", "key")] = 0.0
    else:
        bad[key] = [bad[key]]
    try:
        expected = leaves_of(bad, tree, "gradient")
    except (TypeError, ValueError):
        with pytest.raises(FALLBACK):
            get(bad)
    else:  # a leaf wrapped in a list where x0 has a leaf: both take it as the leaf
        assert len(get(bad)) == len(expected)


def test_getter_falls_back_for_other_mappings_and_namedtuples() -> None:
    x0 = {"a": {"w": np.zeros(2), "b": np.zeros(1)}, "p": Pair(np.zeros(1), np.zeros(1))}
    tree, _, _ = make_tree(x0, _mapping_factory)
    get = compile_getter(tree)
    assert get is not None
    as_ordered = {"a": OrderedDict(b=np.ones(1), w=np.ones(2)), "p": Pair(np.ones(1), np.ones(1))}
    with pytest.raises(Mismatch):
        get(as_ordered)  # not a dict there: the checking walk takes it (by key)
    assert len(leaves_of(as_ordered, tree, "gradient")) == 4
    as_tuple = {"a": {"b": 1, "w": 2}, "p": (3, 4)}  # any order of keys; a tuple for a Pair
    assert get(as_tuple) == [2, 1, 3, 4]


def test_layout_uses_the_generated_walks_and_names_the_path() -> None:
    from dict_minimize._structure.layout import make_layout
    from dict_minimize.backends import get_backend

    x0 = {"layer": {"w": np.zeros(2), "b": np.zeros(1)}}
    layout = make_layout(x0, get_backend("numpy"))
    assert layout.fast_build is not None and layout.fast_leaves is not None
    with pytest.raises(ValueError, match=r"gradient\['layer'\] is missing key\(s\) \['b'\]"):
        values_by_key({"layer": {"w": 1, "c": 2}}, layout)
    assert values_by_key({"layer": OrderedDict(b=1, w=2)}, layout) == [2, 1]


def test_deep_trees_keep_the_walks() -> None:
    x0: Any = {"leaf": np.zeros(1)}
    for _ in range(MAX_DEPTH + 5):
        x0 = {"down": x0}
    tree, _, _ = make_tree(x0, _mapping_factory)
    assert compile_builder(tree) is None and compile_getter(tree) is None
    from dict_minimize import minimize

    def fun(d: Any) -> Any:
        inner = d
        while "down" in inner:
            inner = inner["down"]
        v = inner["leaf"]
        grad: Any = {"leaf": 2 * (v - 1)}
        for _ in range(MAX_DEPTH + 5):
            grad = {"down": grad}
        return float(((v - 1) ** 2).sum()), grad

    res = minimize(fun, x0, method="L-BFGS-B")
    assert res.success
